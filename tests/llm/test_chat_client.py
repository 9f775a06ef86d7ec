"""ChatModel against a real ScriptedModelServer on 127.0.0.1: replies, retries, errors, cancellation, roles."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from spatialclaw_ros.cancel import Cancelled, CancelToken
from spatialclaw_ros.config import ModelConfig, RoleConfig
from spatialclaw_ros.imaging import decode_png
from spatialclaw_ros.llm import ChatModel, ModelError
from spatialclaw_ros.llm.messages import encoded_image_part, system_message, text_part, user_message
from spatialclaw_ros.llm.scripted_server import IMAGE_TOKENS, ScriptedModelServer, Turn

QUESTION = [system_message("you answer briefly"), user_message("how far is the mug")]  # 3 + 5 words


def make_model(url: str, **overrides) -> ChatModel:
    """A ChatModel for ``url`` with fast backoff so retry tests stay short."""
    return ChatModel(ModelConfig(base_url=url, model="test-model", **overrides), backoff_s=0.01)


def closed_port_url() -> str:
    """The URL of a port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_plain_call_returns_text_usage_and_metadata():
    with ScriptedModelServer({"main": ["the mug is 2.3 m away"]}) as server, make_model(server.url) as model:
        reply = model.chat("main", QUESTION)
    assert reply.text == "the mug is 2.3 m away"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (8, 6, 14)
    assert reply.model == "test-model"
    assert reply.finish_reason == "stop"
    assert reply.attempts == 1
    assert reply.latency_s > 0
    body = server.requests[0].body
    assert body["model"] == "test-model"
    assert body["temperature"] == 0.2 and body["max_tokens"] == 2048
    assert not body.get("stream")


def test_streaming_call_accumulates_deltas_and_takes_usage_from_last_chunk():
    text = "a reply long enough to be split into several streamed pieces"
    with ScriptedModelServer({"main": [text]}) as server, make_model(server.url, stream=True) as model:
        reply = model.chat("main", QUESTION)
    assert reply.text == text
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (8, 11, 19)
    assert reply.finish_reason == "stop"
    assert server.requests[0].body["stream"] is True
    assert server.requests[0].body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("status, failures", [(500, 1), (503, 2), (429, 1), (429, 3)])
def test_retryable_status_is_retried_until_success(status, failures):
    script = {"main": [Turn(status=status)] * failures + ["fine"]}
    with ScriptedModelServer(script) as server, make_model(server.url, max_retries=3) as model:
        reply = model.chat("main", QUESTION)
    assert reply.text == "fine"
    assert reply.attempts == failures + 1
    assert len(server.requests) == failures + 1


def test_persistent_http_500_gives_http_error_after_retries():
    script = {"main": [Turn(status=500, text="backend exploded")] * 3}
    with ScriptedModelServer(script) as server, make_model(server.url, max_retries=2) as model:
        with pytest.raises(ModelError) as caught:
            model.chat("main", QUESTION)
    error = caught.value
    assert error.kind == "http" and error.status == 500 and error.endpoint == server.url
    assert str(error).startswith(f"model endpoint {server.url} answered HTTP 500 after 2 retries: ")
    assert "backend exploded" in str(error)
    assert len(server.requests) == 3


def test_client_error_is_not_retried():
    with ScriptedModelServer({"main": [Turn(status=400, text="bad max_tokens"), "unused"]}) as server, \
            make_model(server.url) as model:
        with pytest.raises(ModelError) as caught:
            model.chat("main", QUESTION)
    assert caught.value.kind == "http" and caught.value.status == 400
    assert str(caught.value) == f"model endpoint {server.url} answered HTTP 400: " + \
        '{"error": {"message": "bad max_tokens", "type": "scripted_error", "code": 400}}'
    assert len(server.requests) == 1


def test_endpoint_down_is_unreachable_and_names_endpoint():
    url = closed_port_url()
    with make_model(url, max_retries=3) as model:
        with pytest.raises(ModelError) as caught:
            model.chat("main", QUESTION)
    assert caught.value.kind == "unreachable" and caught.value.endpoint == url
    assert str(caught.value) == f"model endpoint {url} is unreachable (connection refused) after 3 retries"


def test_slow_endpoint_times_out_without_retry():
    script = {"main": [Turn(text="too late", delay_s=30.0)] * 2}
    config = dict(main=RoleConfig(timeout_s=0.5), max_retries=3)
    with ScriptedModelServer(script) as server, make_model(server.url, **config) as model:
        with pytest.raises(ModelError) as caught:
            model.chat("main", QUESTION)
        assert len(server.requests) == 1
    assert caught.value.kind == "timeout"
    assert str(caught.value) == f"model endpoint {server.url} timed out after 0.5 s"


@pytest.mark.parametrize("body", [b"<html><body>502 Bad Gateway</body></html>", b'{"not": "a completion"}'])
def test_garbage_body_is_reported_with_its_start(body):
    with ScriptedModelServer({"main": [Turn(body=body)]}) as server, make_model(server.url) as model:
        with pytest.raises(ModelError) as caught:
            model.chat("main", QUESTION)
    assert caught.value.kind == "garbage"
    assert str(caught.value) == (f"model endpoint {server.url} answered something that is not a chat completion: "
                                 + body.decode())


@pytest.mark.parametrize("stream", [False, True])
def test_empty_reply_is_an_error(stream):
    with ScriptedModelServer({"main": ["   "]}) as server, make_model(server.url, stream=stream) as model:
        with pytest.raises(ModelError) as caught:
            model.chat("main", QUESTION)
    assert caught.value.kind == "empty"
    assert str(caught.value) == f"model endpoint {server.url} answered with an empty message: finish_reason=stop"


@pytest.mark.parametrize("stream", [False, True])
def test_cancel_aborts_request_in_flight(stream):
    script = {"main": [Turn(text="never seen", delay_s=60.0), "next question"]}
    with ScriptedModelServer(script) as server, make_model(server.url, stream=stream) as model:
        token = CancelToken()
        timer = threading.Timer(0.3, token.cancel, args=("operator stop",))
        timer.start()
        started = time.monotonic()
        with pytest.raises(Cancelled, match="operator stop"):
            model.chat("main", QUESTION, cancel=token)
        waited = time.monotonic() - started
        # Generous bound: the point is that chat() did not wait out the 60 s turn.
        assert waited < 5.0
        assert model.chat("main", QUESTION).text == "next question"


def test_cancel_interrupts_backoff():
    script = {"main": [Turn(status=503)] * 2}
    with ScriptedModelServer(script) as server, \
            ChatModel(ModelConfig(base_url=server.url, model="m"), backoff_s=60.0) as model:
        token = CancelToken()
        threading.Timer(0.3, token.cancel).start()
        started = time.monotonic()
        with pytest.raises(Cancelled):
            model.chat("main", QUESTION, cancel=token)
        assert time.monotonic() - started < 5.0  # not the 60 s backoff
    assert len(server.requests) == 1


def test_already_cancelled_token_sends_nothing():
    token = CancelToken()
    token.cancel("gone")
    with ScriptedModelServer({"main": ["x"]}) as server, make_model(server.url) as model:
        with pytest.raises(Cancelled, match="gone"):
            model.chat("main", QUESTION, cancel=token)
    assert server.requests == []


def test_role_header_routes_to_role_script_with_role_settings():
    script = {"main": ["from main"], "planner": ["from planner"], "vlm": ["from vlm"]}
    config = dict(planner=RoleConfig(model="planner-model", temperature=0.7, max_tokens=64),
                  vlm=RoleConfig(temperature=0.0, max_tokens=32))
    with ScriptedModelServer(script) as server, make_model(server.url, **config) as model:
        replies = {role: model.chat(role, QUESTION).text for role in ("vlm", "planner", "main")}
    assert replies == {"main": "from main", "planner": "from planner", "vlm": "from vlm"}
    seen = {request.role: request for request in server.requests}
    assert seen["planner"].headers["x-spatialclaw-role"] == "planner"
    assert (seen["planner"].body["model"], seen["planner"].body["temperature"],
            seen["planner"].body["max_tokens"]) == ("planner-model", 0.7, 64)
    assert (seen["vlm"].body["model"], seen["vlm"].body["temperature"], seen["vlm"].body["max_tokens"]) == (
        "test-model", 0.0, 32)


def test_unknown_role_is_refused():
    with ScriptedModelServer({}) as server, make_model(server.url) as model:
        with pytest.raises(ValueError, match="unknown model role 'critic'.*main, planner, vlm"):
            model.chat("critic", QUESTION)
    assert server.requests == []


def test_images_arrive_as_image_parts():
    rng = np.random.default_rng(0)
    first = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    second = rng.integers(0, 256, size=(30, 20, 3), dtype=np.uint8)
    message = user_message([text_part("which is closer"), encoded_image_part(first), encoded_image_part(second)])
    with ScriptedModelServer({"vlm": ["the left one"]}) as server, make_model(server.url) as model:
        reply = model.chat("vlm", [message])
    request = server.requests[0]
    assert request.image_count() == 2
    assert request.text() == "which is closer"
    decoded = [decode_png(png) for png in request.images()]
    assert np.array_equal(decoded[0], first) and np.array_equal(decoded[1], second)
    assert reply.usage.prompt_tokens == 3 + 2 * IMAGE_TOKENS


def test_endpoint_default_model_used_when_none_configured():
    with ScriptedModelServer({"main": ["a", "b"]}) as server, \
            ChatModel(ModelConfig(base_url=server.url)) as model:
        model.chat("main", QUESTION)
        model.chat("main", QUESTION)
    assert [request.body["model"] for request in server.requests] == ["scripted-model", "scripted-model"]


def test_ping_lists_models_and_reports_a_dead_endpoint():
    with ScriptedModelServer({}) as server, make_model(server.url) as model:
        assert model.ping() == ["scripted-model"]
    url = closed_port_url()
    with make_model(url) as model:
        with pytest.raises(ModelError) as caught:
            model.ping()
    assert caught.value.kind == "unreachable"
    assert str(caught.value) == f"model endpoint {url} is unreachable (connection refused)"


def test_closed_model_refuses_calls():
    with ScriptedModelServer({"main": ["x"]}) as server:
        model = make_model(server.url)
        model.close()
        model.close()
        with pytest.raises(RuntimeError, match="closed"):
            model.chat("main", QUESTION)
