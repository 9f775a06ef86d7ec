"""Session directories: trace events, images, inputs, result and the self-contained HTML report."""

import json
import re
import threading
from dataclasses import dataclass
from enum import Enum

import numpy as np
import pytest

from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.imaging import encode_png
from spatialclaw_ros.session_log import SessionLog, read_trace, write_report
from spatialclaw_ros.session_log.log import jsonable


class Colour(Enum):
    RED = "red"


@dataclass
class Sample:
    colour: Colour
    data: bytes
    values: np.ndarray


def test_jsonable_converts_what_the_trace_holds(tmp_path):
    expected = {"colour": "red", "data": "<3 bytes>", "values": [0, 1, 2]}
    assert jsonable(Sample(Colour.RED, b"abc", np.arange(3))) == expected
    assert jsonable({"p": tmp_path, "x": np.float32(1.5), "t": (1, 2)}) == {"p": str(tmp_path), "x": 1.5, "t": [1, 2]}


def test_create_names_directory_and_logs_events(tmp_path):
    log = SessionLog.create(tmp_path)
    assert re.fullmatch(r"\d{8}T\d{6}Z_[0-9a-f]{6}", log.directory.name)
    threads = [threading.Thread(target=lambda i=i: log.event("vlm", step=1, n=i)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.event("cell", step=2, status=Colour.RED)
    log.close()
    events = read_trace(log.directory)
    assert len(events) == 21
    assert sorted(e["n"] for e in events if e["kind"] == "vlm") == list(range(20))
    assert events[-1]["status"] == "red" and events[-1]["t"] >= 0


def test_images_inputs_and_result(tmp_path):
    log = SessionLog(tmp_path / "s")
    png = encode_png(np.zeros((4, 4, 3), np.uint8))
    assert log.save_image("step1_1", png) == "images/step1_1.png"
    frames = FrameSet([Frame(index=7, rgb=np.ones((4, 5, 3), np.uint8))])
    log.save_inputs(frames)
    assert log.flush()  # written by the writer thread
    assert (tmp_path / "s/images/step1_1.png").read_bytes() == png
    assert FrameSet.load(tmp_path / "s/inputs").frames[0].index == 7
    log.write_result({"status": "answered", "session_dir": tmp_path})
    assert json.loads((tmp_path / "s/result.json").read_text()) == {"status": "answered", "session_dir": str(tmp_path)}
    log.close()


def test_read_trace_of_a_non_session(tmp_path):
    with pytest.raises(FileNotFoundError, match="trace.jsonl is missing"):
        read_trace(tmp_path)


def test_report_is_self_contained_and_escaped(tmp_path):
    log = SessionLog(tmp_path)
    small = log.save_image("key_0", encode_png(np.full((8, 8, 3), 200, np.uint8)))
    noisy = np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8)
    large = log.save_image("step1_1", encode_png(noisy))
    log.event("question", question="Is <b>x</b> & y far?", choices=["A. <near>", "B. far"], metadata={},
              key_frames=[{"label": "frame 0", "file": small}])
    log.event("plan", text="1. measure")
    log.event("answer_check", step=1, value=2.5, unit=None, accepted=False, reason="give the unit")
    log.event("cell", step=1, reasoning="Look at it", code="print('<script>')", status="ok", stdout="<script>\n",
              stderr="", error="", variables={"new": [{"name": "d", "type": "float", "summary": "= 2.5"}],
                                             "changed": [], "deleted": []},
              images=[{"label": "mask", "file": large}], restart=None, duration_s=0.1)
    log.event("answer_check", step=2, value=2.5, unit="m", accepted=True, reason="")
    log.event("result", status="answered", answer="2.50 m", steps=2, low_confidence=False)
    log.close()
    path = write_report(tmp_path)
    page = path.read_text()
    assert path.name == "report.html"
    assert "Is &lt;b&gt;x&lt;/b&gt; &amp; y far?" in page and "<b>x</b>" not in page
    assert "print(&#x27;&lt;script&gt;&#x27;)" in page and "<script>" not in page
    assert "d: float = 2.5" in page and "2.50 m" in page and "1. measure" in page
    assert "Step 1" in page and "Step 2" in page
    assert "<strong>Answer: 2.50 m after 2 steps</strong>" in page  # the summary under the title
    # A cell is logged after the host calls it made; the report shows the code first.
    refusal = "ReturnAnswer(2.5, unit=None) refused: give the unit"
    assert page.index("print(&#x27;&lt;script&gt;&#x27;)") < page.index(refusal)
    assert page.index("Step 2") < page.index("ReturnAnswer(2.5, unit=&#x27;m&#x27;) accepted")
    assert page.count("data:image/png;base64,") == 1  # the small key frame as PNG
    assert page.count("data:image/jpeg;base64,") == 1  # the large image downscaled
    assert 'src="images/' not in page  # no external file references


def test_read_trace_leaves_out_a_torn_last_line_only(tmp_path):
    (tmp_path / "trace.jsonl").write_bytes(b'{"kind":"question","t":0}\n{"kind":"cell","t":1,"std')
    assert read_trace(tmp_path) == [{"kind": "question", "t": 0}]
    (tmp_path / "trace.jsonl").write_bytes(b'{"kind":"question","t":0}\n{"kind":"ce\n{"kind":"result","t":2}\n')
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        read_trace(tmp_path)


def test_report_over_its_budget_shows_the_outcome_only(tmp_path):
    log = SessionLog(tmp_path)
    noisy = np.random.default_rng(1).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    shown = log.save_image("step1_1", encode_png(noisy))
    log.event("question", question="How far?", choices=[], metadata={}, key_frames=[])
    log.event("cell", step=1, reasoning="", code="print('a' * 50000)", status="ok", stdout="a" * 50000, stderr="",
              error="", variables={}, images=[{"label": "noise", "file": shown}], restart=None, duration_s=0.1)
    log.event("result", status="answered", answer="2.50 m", steps=1, low_confidence=False)
    log.close()
    full = write_report(tmp_path).read_text()
    assert "data:image/" in full and "a" * 50000 in full
    no_images = write_report(tmp_path, max_bytes=len(full) - 1000).read_text()
    assert "data:image/" not in no_images and "left out: the report's size budget is spent" in no_images
    short = write_report(tmp_path, max_bytes=20_000).read_text()
    assert len(short) <= 20_000 and "<strong>Answer: 2.50 m after 1 steps</strong>" in short
    assert "shows only the outcome" in short
    with pytest.raises(ValueError, match="no room for report.html"):
        write_report(tmp_path, max_bytes=500)
