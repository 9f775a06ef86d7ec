"""ScriptedModelServer over raw HTTP (urllib), and its command-line entry point as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from spatialclaw_ros.config import ModelConfig
from spatialclaw_ros.llm import ChatModel, ModelError
from spatialclaw_ros.llm.scripted_server import ScriptedModelServer, ScriptedRequest, Turn, load_script


def post(url: str, body: dict, role: str | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    """POST ``body`` to ``url``/chat/completions; (status, raw body), HTTP errors included."""
    headers = {"Content-Type": "application/json"}
    if role:
        headers["X-SpatialClaw-Role"] = role
    request = urllib.request.Request(url + "/chat/completions", data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def chat_body(text: str = "hello", **extra) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


def test_turns_are_replayed_per_role_and_default_role_is_main():
    script = {"main": ["m1", "m2"], "vlm": ["v1"]}
    with ScriptedModelServer(script) as server:
        answers = [json.loads(post(server.url, chat_body(), role)[1])["choices"][0]["message"]["content"]
                   for role in (None, "vlm", "main")]
    assert answers == ["m1", "v1", "m2"]
    assert [request.role for request in server.requests] == ["main", "vlm", "main"]
    assert [request.role for request in server.requests_for("main")] == ["main", "main"]


def test_exhausted_script_answers_500_naming_role_and_count():
    with ScriptedModelServer({"main": ["only one"]}) as server:
        post(server.url, chat_body())
        status, body = post(server.url, chat_body())
        status_planner, body_planner = post(server.url, chat_body(), role="planner")
    assert status == 500
    assert json.loads(body)["error"]["message"] == "script for role 'main' exhausted after 1 turns"
    assert status_planner == 500
    assert json.loads(body_planner)["error"]["message"] == "script for role 'planner' exhausted after 0 turns"


def test_callable_script_sees_the_request():
    def answer(request: ScriptedRequest) -> Turn | str:
        if "fail" in request.text():
            return Turn(status=503, text="overloaded")
        return f"{request.role} said {request.text()}"

    with ScriptedModelServer(answer) as server:
        ok = post(server.url, chat_body("hi there"), role="planner")
        failed = post(server.url, chat_body("please fail"))
    assert json.loads(ok[1])["choices"][0]["message"]["content"] == "planner said hi there"
    assert failed[0] == 503 and json.loads(failed[1])["error"]["message"] == "overloaded"


def test_callable_that_raises_answers_500_with_the_error():
    def broken(request: ScriptedRequest) -> str:
        raise KeyError("no answer for this")

    with ScriptedModelServer(broken) as server:
        status, body = post(server.url, chat_body())
    assert status == 500
    assert json.loads(body)["error"]["message"] == "script callable raised KeyError: 'no answer for this'"


def test_models_endpoint_and_unknown_paths():
    with ScriptedModelServer({}) as server:
        with urllib.request.urlopen(server.url + "/models") as response:
            models = json.loads(response.read())
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(server.url + "/embeddings")
    assert [model["id"] for model in models["data"]] == ["scripted-model"]
    assert caught.value.code == 404


def test_streaming_sends_sse_chunks_and_usage_only_when_asked():
    text = "twenty characters!!! and more"
    with ScriptedModelServer({"main": [text, text]}) as server:
        _, with_usage = post(server.url, chat_body(stream=True, stream_options={"include_usage": True}))
        _, without_usage = post(server.url, chat_body(stream=True))
    events = [line[len("data: "):] for line in with_usage.decode().split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == text
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
        "prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5}
    assert b'"usage"' not in without_usage


def test_delayed_turn_does_not_block_other_requests_and_ends_on_close():
    server = ScriptedModelServer({"main": [Turn(text="late", delay_s=60.0)], "vlm": ["quick"]})
    outcome = {}

    def slow_request():
        try:
            outcome["reply"] = post(server.url, chat_body(), timeout=120.0)
        except OSError as error:  # the server dropped the connection at close
            outcome["error"] = error

    worker = threading.Thread(target=slow_request)
    worker.start()
    while not server.requests:
        worker.join(0.01)
    status, body = post(server.url, chat_body(), role="vlm")
    assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == "quick"
    server.close()
    worker.join(30.0)
    assert not worker.is_alive()
    assert "reply" not in outcome and "error" in outcome


def test_load_script_reads_strings_and_turn_mappings(tmp_path):
    path = tmp_path / "turns.yaml"
    path.write_text("main:\n  - plain text\n  - {status: 429}\n  - {text: slow, delay_s: 0.5}\n"
                    "vlm:\n  - {body: '<html>'}\n")
    assert load_script(path) == {
        "main": [Turn(text="plain text"), Turn(status=429), Turn(text="slow", delay_s=0.5)],
        "vlm": [Turn(body=b"<html>")],
    }
    path.write_text("main:\n  - {txt: typo}\n")
    with pytest.raises(ValueError, match=r"unknown turn keys \['txt'\]"):
        load_script(path)
    path.write_text("main: just a string\n")
    with pytest.raises(ValueError, match="turns of role 'main' must be a list"):
        load_script(path)


def test_command_line_server_prints_ready_and_serves_the_yaml_script(tmp_path):
    path = tmp_path / "turns.yaml"
    path.write_text("main:\n  - first answer\n  - {status: 400, text: refused}\n")
    process = subprocess.Popen([sys.executable, "-m", "spatialclaw_ros.llm.scripted_server", "--script", str(path)],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:") and line.endswith("/v1")
        url = line.split(" ", 1)[1]
        with ChatModel(ModelConfig(base_url=url, model="m")) as model:
            assert model.chat("main", [{"role": "user", "content": "q"}]).text == "first answer"
            with pytest.raises(ModelError, match="answered HTTP 400: .*refused"):
                model.chat("main", [{"role": "user", "content": "q"}])
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
