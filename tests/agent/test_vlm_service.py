"""vlm host services answered by the "vlm" role of a real scripted HTTP server: answer forms and the call bounds."""

import numpy as np
import pytest

from spatialclaw_ros.agent.vlm_service import LOCATE_SYSTEM, NOT_VISIBLE, POINT_REQUEST, VlmService, parse_point
from spatialclaw_ros.cancel import CancelToken
from spatialclaw_ros.config import ModelConfig, VlmLimits
from spatialclaw_ros.imaging import decode_png
from spatialclaw_ros.kernel.host import HostError, HostRequest
from spatialclaw_ros.llm.client import ChatModel
from spatialclaw_ros.llm.scripted_server import ScriptedModelServer, Turn
from spatialclaw_ros.session_log import SessionLog, read_trace


@pytest.mark.parametrize("text, expected", [
    ("512,300", [512.0, 300.0]),
    ("834 357", [834.0, 357.0]),
    ("The mug is at (120, 880).", [120.0, 880.0]),
    ("<think>maybe 1,2</think>[0, 1000]", [0.0, 1000.0]),
    ("x: 40 y: 60", [40.0, 60.0]),
    ("x=12.5, y=7", [12.5, 7.0]),
    ("381 248 668 582", [524.5, 415.0]),  # a box: its centre
    ('```json\n{"bbox_2d": [100, 200, 300, 400], "label": "mug"}\n```', [200.0, 300.0]),
    ("Not visible", NOT_VISIBLE),
    ("It is not visible in this image.", NOT_VISIBLE),
    ("Not visible\nThere are 2 mugs; which one?", NOT_VISIBLE),
])
def test_parse_point(text, expected):
    assert parse_point(text) == expected


@pytest.mark.parametrize("text, message", [
    ("somewhere left", "neither a point, a box nor 'Not visible'"),
    ("1 2 3", "neither a point, a box nor 'Not visible'"),
    ("1200, 40", "outside 0-1000"),
])
def test_parse_point_refuses(text, message):
    with pytest.raises(HostError, match=message):
        parse_point(text)


def request(service, question="Where is the mug?", count=2, form=None, size=(40, 60)):
    arrays = {f"image_{i}": np.full((*size, 3), 50 * i, np.uint8) for i in range(count)}
    payload = {"question": question} if form is None else {"question": question, "form": form}
    return HostRequest(service, payload, arrays)


def make_service(server, tmp_path, replies, limits=VlmLimits()):
    model = ChatModel(ModelConfig(base_url=server.url, max_retries=0))
    log = SessionLog(tmp_path)
    service = VlmService(model, log, CancelToken(), image_max_side=32, on_reply=replies.append, limits=limits)
    service.step = 3
    return model, log, service


def test_locate_and_ask_round_trip(tmp_path):
    script = {"vlm": ["<think>the mug is left</think>381 248 668 582", "<think>x</think>250, 500",
                      "Reasoning.\nAnswer: it is red", "no idea"]}
    replies = []
    with ScriptedModelServer(script) as server:
        model, log, service = make_service(server, tmp_path, replies)
        handlers = service.handlers()
        text = handlers["vlm.locate"](request("vlm.locate", "Box of the mug: x1 y1 x2 y2", form="text"))
        assert text.payload == {"result": "381 248 668 582"}  # the model's words, thinking removed, unparsed
        assert handlers["vlm.locate"](request("vlm.locate")).payload == {"result": [250.0, 500.0]}  # "point" form
        assert handlers["vlm.ask_with_thinking"](request("vlm.ask_with_thinking", "What colour?", 1)).payload == {
            "result": "Reasoning.\nAnswer: it is red"}
        with pytest.raises(HostError, match="neither a point"):
            handlers["vlm.locate"](request("vlm.locate"))
        sent = server.requests_for("vlm")
        assert sent[0].image_count() == 2
        assert sent[0].text().endswith("Box of the mug: x1 y1 x2 y2") and POINT_REQUEST not in sent[0].text()
        assert sent[1].text().endswith(f"Where is the mug?\n{POINT_REQUEST}")
        assert LOCATE_SYSTEM.splitlines()[0] in sent[0].text()
        assert max(decode_png(sent[0].images()[0]).shape[:2]) == 32  # fitted to image_max_side
        model.close()
    log.close()
    assert len(replies) == 4
    events = [e for e in read_trace(tmp_path) if e["kind"] == "vlm"]
    assert [e["step"] for e in events] == [3, 3, 3, 3]
    assert events[0]["result"] == "381 248 668 582" and len(events[0]["images"]) == 2
    assert events[1]["result"] == [250.0, 500.0]
    assert (tmp_path / events[0]["images"][0]["file"]).is_file()
    assert "neither a point" in events[3]["error"]


def test_model_failure_becomes_host_error(tmp_path):
    with ScriptedModelServer({"vlm": [Turn(status=500, text="boom")]}) as server:
        model, log, service = make_service(server, tmp_path, [])
        with pytest.raises(HostError, match="vlm.locate failed: model endpoint .* answered HTTP 500"):
            service.locate(request("vlm.locate"))
        with pytest.raises(HostError, match="the question is empty"):
            service.locate(request("vlm.locate", question=" "))
        with pytest.raises(HostError, match="no images"):
            service.locate(request("vlm.locate", count=0))
        with pytest.raises(HostError, match="form must be one of"):
            service.locate(request("vlm.locate", form="json"))
        model.close()
    log.close()


def test_calls_are_bounded_per_cell_and_per_question(tmp_path):
    limits = VlmLimits(calls_per_question=5, calls_per_cell=3)
    with ScriptedModelServer(lambda req: "Answer: yes") as server:
        model, log, service = make_service(server, tmp_path, [], limits)
        ask = service.ask_with_thinking
        for _ in range(3):
            ask(request("vlm.ask_with_thinking", "Is it red?", 1))
        with pytest.raises(HostError, match=r"this cell has made 3 vlm calls \(setting agent.vlm.calls_per_cell\)"):
            ask(request("vlm.ask_with_thinking", "Is it red?", 1))
        service.step = 4  # the next cell
        for _ in range(2):
            ask(request("vlm.ask_with_thinking", "Is it red?", 1))
        with pytest.raises(HostError, match=r"has made its 5 vlm calls \(setting agent.vlm.calls_per_question\)"):
            ask(request("vlm.ask_with_thinking", "Is it red?", 1))
        assert len(server.requests_for("vlm")) == 5  # refused calls never reach the model
        model.close()
    log.close()


def test_question_length_image_count_and_image_size_are_bounded(tmp_path):
    limits = VlmLimits(question_chars=100, images_per_call=4, image_side_px=500)
    with ScriptedModelServer(lambda req: "Answer: yes") as server:
        model, log, service = make_service(server, tmp_path, [], limits)
        with pytest.raises(HostError, match=r"the question has 20000 characters, at most 100 \(setting "
                                            r"agent.vlm.question_chars\)"):
            service.ask_with_thinking(request("vlm.ask_with_thinking", "x" * 20000, 1))
        with pytest.raises(HostError, match=r"5 images, at most 4 per call \(setting agent.vlm.images_per_call\)"):
            service.ask_with_thinking(request("vlm.ask_with_thinking", "Same room?", 5))
        with pytest.raises(HostError, match=r"image 0 has shape \(900, 900, 3\), at most 500 px on a side"):
            service.locate(request("vlm.locate", count=1, form="text", size=(900, 900)))
        assert server.requests_for("vlm") == []
        assert service.ask_with_thinking(request("vlm.ask_with_thinking", "Same room?", 4)).payload["result"]
        model.close()
    log.close()


def test_a_refusal_reaches_the_cell_as_an_error_it_can_act_on(tmp_path, pool, frames):
    limits = VlmLimits(calls_per_cell=2)
    cell = ("answers = []\nfor n in range(3):\n    try:\n        answers.append(vlm.ask_with_thinking(InputImages[0], 'Is it red?'))\n"
            "    except RuntimeError as err:\n        print(err)\nprint(len(answers))")
    with ScriptedModelServer(lambda req: "Answer: yes") as server:
        model, log, service = make_service(server, tmp_path, [], limits)
        with pool.session(frames, service.handlers()) as session:
            result = session.execute(cell, timeout_s=60)
        model.close()
    log.close()
    assert result.stdout.splitlines() == [
        "vlm.ask_with_thinking refused: this cell has made 2 vlm calls (setting agent.vlm.calls_per_cell); use the "
        "answers you have, or go on in the next cell", "2"]
