"""Cells in a real sandboxed worker: persistence, summaries, errors, show(), host calls, answers."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from kernel_support import HostLog
from PIL import Image

from spatialclaw_ros.config import KernelConfig
from spatialclaw_ros.kernel.pool import KernelPool
from spatialclaw_ros.kernel.results import CellStatus


@pytest.fixture(scope="module")
def host_log() -> HostLog:
    return HostLog()


@pytest.fixture(scope="module")
def session(pool, frames, host_log):
    with pool.session(frames, host_log.handlers(), image_max_side=40) as kernel_session:
        yield kernel_session


def run(session, code: str, timeout_s: float = 20.0):
    return session.execute(code, timeout_s=timeout_s)


def test_namespace_persists_across_cells(session):
    assert run(session, "counter = 41\ndef bump(n):\n    return n + 1").status is CellStatus.OK
    result = run(session, "counter = bump(counter)\nprint('counter is', counter)")
    assert result.status is CellStatus.OK
    assert result.stdout == "counter is 42\n"
    assert run(session, "counter").stdout == "42\n"


def test_variable_summaries_report_new_changed_and_deleted(session):
    run(session, "depth_map = np.zeros((48, 64), np.float32)\nlabel = 'cup'\nscratch_list = [1, 2]")
    result = run(session, "depth_map = depth_map[:10]\nsmall = np.array([1.5, 2.5])\ndel scratch_list\nlabel")
    new = {v.name: (v.type, v.summary) for v in result.variables.new}
    changed = {v.name: (v.type, v.summary) for v in result.variables.changed}
    assert new == {"small": ("ndarray", "float64 (2,) = [1.5, 2.5]")}
    assert changed == {"depth_map": ("ndarray", "float32 (10, 64)")}
    assert result.variables.deleted == ["scratch_list"]
    assert result.stdout == "'cup'\n"  # a final bare expression is echoed, like a notebook
    assert "label" not in new and "label" not in changed  # echoing does not change it


def test_preloaded_names_and_modules_are_not_user_variables(session):
    result = run(session, "import json\nimport numpy as np2\nmeta = dict(Metadata)")
    assert [v.name for v in result.variables.new] == ["meta"]


def test_stdout_and_stderr_are_captured_separately(session):
    result = run(session, "print('out')\nnp.float64(1.0) / np.float64(0.0)")
    assert result.stdout == "out\nnp.float64(inf)\n"
    assert "RuntimeWarning: divide by zero" in result.stderr


def test_compact_traceback_names_cell_line_and_library_frame(session):
    result = run(session, "a = 1\nimport json\nparsed = json.loads('{broken')")
    assert result.status is CellStatus.ERROR
    lines = result.error.splitlines()
    assert lines[0].startswith("JSONDecodeError: Expecting property name")
    assert lines[1] == "  cell line 3: parsed = json.loads('{broken')"
    assert lines[2].startswith("  raised in json/decoder.py:raw_decode:")
    assert len(lines) == 3


def test_error_inside_a_cell_function_points_at_its_line(session):
    result = run(session, "def ratio(a, b):\n    return a / b\n\nratio(1, 0)")
    assert result.error.splitlines() == ["ZeroDivisionError: division by zero", "  cell line 2: return a / b"]


def test_syntax_error_names_the_line(session):
    result = run(session, "x = 1\ny = (2 +\n")
    assert result.status is CellStatus.ERROR
    assert result.error.startswith("SyntaxError:")
    assert "cell line 2: y = (2 +" in result.error


def test_input_images_and_metadata(session):
    result = run(session, "\n".join([
        "print(len(InputImages), InputImages.frame_indices, InputImages[1:].frame_indices)",
        "print(InputImages[1].frame_index, InputImages[2].stamp, isinstance(InputImages[1:], list))",
        "print(InputImages.frame(20).getpixel((0, 0)), InputImages[0].camera, InputImages[0].size)",
        "print(Metadata.fps, Metadata['num_images'], Metadata.frame_indices)",
    ]))
    assert result.stdout.splitlines() == [
        "3 [10, 20, 30] [20, 30]",
        "20 1.0 True",
        "(100, 100, 100) front (64, 48)",
        "2.0 3 [10, 20, 30]",
    ]
    missing = run(session, "InputImages.frame(99)")
    assert "KeyError" in missing.error and "valid indices: [10, 20, 30]" in missing.error


def _decoded(image):
    return np.asarray(Image.open(io.BytesIO(image.png)).convert("RGB"))


def test_show_sends_png_images_fitted_to_the_long_side(session):
    result = run(session, "\n".join([
        "show(np.ones((100, 50, 3)), label='float')",  # float in [0, 1], fitted to 40 px long side
        "show(np.eye(30, dtype=bool), InputImages[0])",  # mask and PIL image (64x48 -> 40x30)
        "fig, ax = plt.subplots(figsize=(2, 1), dpi=50)",
        "ax.plot([0, 1], [1, 0])",
        "plt.show()",
    ]))
    assert result.status is CellStatus.OK, result.error
    sizes = [(image.width, image.height) for image in result.images]
    assert sizes == [(20, 40), (30, 30), (40, 30), (40, 20)]
    assert [image.label for image in result.images] == ["float", "", "", ""]
    for image in result.images:
        assert _decoded(image).shape == (image.height, image.width, 3)
    assert _decoded(result.images[0]).min() == 255  # ones as float -> white
    mask = _decoded(result.images[1])[:, :, 0]
    assert mask[0, 0] == 255 and mask[0, -1] == 0  # identity mask: diagonal white
    assert _decoded(result.images[2])[5, 5].tolist() == [50, 50, 50]
    assert run(session, "plt.get_fignums()").stdout == "[]\n"  # plt.show() closed the figures


def test_vlm_calls_reach_the_host_with_images(session, host_log):
    before = len(host_log.requests)
    result = run(session, "\n".join([
        "xy = vlm.locate(InputImages[1], 'the red cup')",
        "gone = vlm.locate([InputImages[0]], 'a ghost')",
        "text = vlm.ask_with_thinking(InputImages[:2], 'same room?')",
        "print(xy, gone)",
        "print(text)",
    ]))
    assert result.status is CellStatus.OK, result.error
    assert result.stdout.splitlines() == ["[250, 750] Not visible", "2 image(s) [[48, 64, 3], [48, 64, 3]]: same room?"]
    located = host_log.requests[before]
    assert located.service == "vlm.locate" and located.payload == {"question": "the red cup", "form": "text"}
    assert list(located.arrays) == ["image_0"]
    assert located.arrays["image_0"].dtype == np.uint8 and int(located.arrays["image_0"][0, 0, 0]) == 100


def test_host_errors_become_runtime_errors_in_the_cell(session):
    result = run(session, "try:\n    vlm.locate(InputImages[0], 'offline?')\nexcept RuntimeError as exc:\n    print(exc)")
    assert result.status is CellStatus.OK
    assert result.stdout == "the grounding model is offline\n"
    result = run(session, "vlm.locate(InputImages[0], '')")
    assert result.error.startswith("ValueError: the question must be a non-empty string")


def test_answer_refused_then_accepted_stops_the_cell(session, host_log):
    refused = run(session, "try:\n    ReturnAnswer('blue')\nexcept AnswerRefused as exc:\n    print('refused:', exc)")
    assert refused.status is CellStatus.OK
    assert refused.stdout == "refused: the question asks for a number, got 'blue'\n"
    assert refused.answer is None
    accepted = run(session, "ReturnAnswer(np.float32(2.5), unit='m')\nprint('not reached')")
    assert accepted.status is CellStatus.ANSWERED
    assert accepted.answer == {"value": 2.5, "unit": "m"}
    assert accepted.stdout == ""


def test_static_check_rejects_before_running(session):
    result = run(session, "ok = 1\nimport os\nvalue = ().__class__")
    assert result.status is CellStatus.REJECTED
    lines = result.error.splitlines()
    assert lines[1].startswith("line 2: import of 'os' is not allowed here; the namespace already has np")
    assert lines[2].startswith("line 3: access to '.__class__' is not allowed")
    assert run(session, "ok").status is CellStatus.ERROR  # nothing of the rejected cell ran


def test_output_is_capped(session):
    result = run(session, "print('x' * 1_500_000)")
    assert result.stdout.startswith("x" * 1000)
    assert result.stdout.endswith("[... 500001 more characters of output dropped]")


def test_each_session_gets_a_fresh_worker(pool, frames, session):
    run(session, "secret_of_first = 7")
    with pool.session(frames, {}) as other:
        assert other.pid != session.pid
        result = other.execute("secret_of_first", timeout_s=20)
        assert result.status is CellStatus.ERROR
        assert result.error.startswith("NameError: name 'secret_of_first' is not defined")
        unknown = other.execute("vlm.ask_with_thinking(InputImages[0], 'room?')", timeout_s=20)
        assert unknown.error.startswith("RuntimeError: unknown host service 'vlm.ask_with_thinking'; available: ")


def test_errors_and_output_show_no_host_paths(frames):
    """An ImportError names the library file relative to its import root; the scratch dir becomes relative."""
    import spatialclaw_ros

    package = str(Path(spatialclaw_ros.__file__).resolve().parents[1])
    config = KernelConfig(pool_size=1, memory_limit_mb=2048, static_check=False)  # os.getcwd() is not allowed
    with KernelPool(config) as unchecked, unchecked.session(frames, {}) as session:
        missing = session.execute("from numpy import no_such_name", timeout_s=20)
        printed = session.execute("import os\nprint(np, os.getcwd(), os.path.abspath('notes.txt'))", timeout_s=20)
    assert missing.status is CellStatus.ERROR
    assert missing.error.startswith("ImportError: cannot import name 'no_such_name' from 'numpy' (numpy/__init__.py)")
    for text in (missing.error, printed.stdout):
        assert sys.prefix not in text and sys.base_prefix not in text and package not in text and "/tmp/" not in text
    assert printed.stdout == "<module 'numpy' from 'numpy/__init__.py'> . notes.txt\n"


def test_line_numbers_ignore_unicode_line_separators(pool, frames):
    with pool.session(frames, {}) as session:
        result = session.execute("label = 'a\u2028b\u0085c'\nprint(repr(label))\nraise ValueError(label)", timeout_s=20)
    assert result.stdout == repr('a\u2028b\u0085c') + "\n"
    assert result.error.endswith("cell line 3: raise ValueError(label)")
