"""vlm host services answered by the "vlm" role of a real scripted HTTP server."""

import numpy as np
import pytest

from spatialclaw_ros.agent.vlm_service import NOT_VISIBLE, VlmService, parse_point
from spatialclaw_ros.cancel import CancelToken
from spatialclaw_ros.config import ModelConfig
from spatialclaw_ros.imaging import decode_png
from spatialclaw_ros.kernel.host import HostError, HostRequest
from spatialclaw_ros.llm.client import ChatModel
from spatialclaw_ros.llm.scripted_server import ScriptedModelServer, Turn
from spatialclaw_ros.session_log import SessionLog, read_trace


@pytest.mark.parametrize("text, expected", [
    ("512,300", [512.0, 300.0]),
    ("The mug is at (120, 880).", [120.0, 880.0]),
    ("<think>maybe 1,2</think>[0, 1000]", [0.0, 1000.0]),
    ("x: 40 y: 60", [40.0, 60.0]),
    ("x=12.5, y=7", [12.5, 7.0]),
    ("Not visible", NOT_VISIBLE),
    ("It is not visible in this image.", NOT_VISIBLE),
])
def test_parse_point(text, expected):
    assert parse_point(text) == expected


@pytest.mark.parametrize("text, message", [
    ("somewhere left", "neither x,y nor 'Not visible'"),
    ("1200, 40", "outside 0-1000"),
])
def test_parse_point_refuses(text, message):
    with pytest.raises(HostError, match=message):
        parse_point(text)


def request(service, question="Where is the mug?", count=2):
    arrays = {f"image_{i}": np.full((40, 60, 3), 50 * i, np.uint8) for i in range(count)}
    return HostRequest(service, {"question": question}, arrays)


def make_service(server, tmp_path, replies):
    model = ChatModel(ModelConfig(base_url=server.url, max_retries=0))
    log = SessionLog(tmp_path)
    service = VlmService(model, log, CancelToken(), image_max_side=32, on_reply=replies.append)
    service.step = 3
    return model, log, service


def test_locate_and_ask_round_trip(tmp_path):
    script = {"vlm": ["<think>the mug is left</think>250, 500", "Reasoning.\nAnswer: it is red", "no idea"]}
    replies = []
    with ScriptedModelServer(script) as server:
        model, log, service = make_service(server, tmp_path, replies)
        handlers = service.handlers()
        assert handlers["vlm.locate"](request("vlm.locate")).payload == {"result": [250.0, 500.0]}
        assert handlers["vlm.ask_with_thinking"](request("vlm.ask_with_thinking", "What colour?", 1)).payload == {
            "result": "Reasoning.\nAnswer: it is red"}
        with pytest.raises(HostError, match="neither x,y"):
            handlers["vlm.locate"](request("vlm.locate"))
        sent = server.requests_for("vlm")[0]
        assert sent.image_count() == 2
        assert "Where is the mug?" in sent.text()
        assert max(decode_png(sent.images()[0]).shape[:2]) == 32  # fitted to image_max_side
        model.close()
    log.close()
    assert len(replies) == 3
    events = [e for e in read_trace(tmp_path) if e["kind"] == "vlm"]
    assert [e["step"] for e in events] == [3, 3, 3]
    assert events[0]["result"] == [250.0, 500.0] and len(events[0]["images"]) == 2
    assert (tmp_path / events[0]["images"][0]["file"]).is_file()
    assert "neither x,y" in events[2]["error"]


def test_model_failure_becomes_host_error(tmp_path):
    with ScriptedModelServer({"vlm": [Turn(status=500, text="boom")]}) as server:
        model, log, service = make_service(server, tmp_path, [])
        with pytest.raises(HostError, match="vlm.locate failed: model endpoint .* answered HTTP 500"):
            service.locate(request("vlm.locate"))
        with pytest.raises(HostError, match="the question is empty"):
            service.locate(request("vlm.locate", question=" "))
        with pytest.raises(HostError, match="no images"):
            service.locate(request("vlm.locate", count=0))
        model.close()
    log.close()
