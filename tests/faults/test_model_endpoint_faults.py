"""An endpoint that misbehaves for real: streams cut off mid-reply, 429 with Retry-After, non-finite numbers and
huge replies. The client retries what is worth retrying and otherwise fails with a ModelError that says why; the
CLI ends with exit 3 and one line, or with the answer."""

from __future__ import annotations

import email.utils
import json
import time
from pathlib import Path

import pytest
from fault_support import COUNT_QUESTION, cell, run_cli, strict_json, write_config
from faulty_server import CutStream, FaultyModelServer, Raw, Reply, Status

from spatialclaw_ros.config import ModelConfig, RoleConfig
from spatialclaw_ros.llm import ChatModel, ModelError
from spatialclaw_ros.session_log import read_trace

MESSAGES = [{"role": "user", "content": "how far is the mug?"}]
CODE = "print('first half')\nprint('second half')\nReturnAnswer(len(InputImages))"
REPLY = cell(CODE, "Count them.")


def make_model(url: str, **overrides) -> ChatModel:
    return ChatModel(ModelConfig(base_url=url, model="faulty-model", **overrides), backoff_s=0.01)


def completion_body(text: str, usage: str) -> bytes:
    """A chat completion whose usage object is the raw JSON text ``usage`` (non-finite literals allowed)."""
    head = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "faulty-model",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text}}]})
    return (head[:-1] + f', "usage": {usage}}}').encode()


# -- a streamed reply cut off -----------------------------------------------------------------------------------

@pytest.mark.parametrize("chunked", [False, True], ids=["connection-closed", "chunked-unterminated"])
def test_a_cut_stream_is_retried(chunked):
    cut = CutStream(REPLY, after_chars=REPLY.index("print('second"), chunked=chunked)
    with FaultyModelServer({"main": [cut, Reply(REPLY)]}) as server, make_model(server.url, stream=True,
                                                                               max_retries=2) as model:
        reply = model.chat("main", MESSAGES)
    assert reply.text == REPLY and reply.attempts == 2 and reply.finish_reason == "stop"


@pytest.mark.parametrize("chunked", [False, True], ids=["connection-closed", "chunked-unterminated"])
def test_a_stream_cut_every_time_is_an_incomplete_reply(chunked):
    cuts = [CutStream(REPLY, after_chars=40, chunked=chunked)] * 2
    with FaultyModelServer({"main": cuts}) as server, make_model(server.url, stream=True, max_retries=1) as model:
        with pytest.raises(ModelError) as caught:
            model.chat("main", MESSAGES)
    assert caught.value.kind == "incomplete"
    assert str(caught.value).startswith(
        f"model endpoint {server.url} cut its streamed reply off after 32 characters, before a finish_reason "
        "after 1 retries: ")
    assert len(server.for_role("main")) == 2


def test_cli_never_runs_the_cut_off_code(tmp_path, images):
    config = write_config(tmp_path / "config.yaml", tmp_path / "sessions", model={"stream": True, "max_retries": 2})
    cut = CutStream(REPLY, after_chars=REPLY.index("print('second"))
    with FaultyModelServer({"main": [cut, Reply(REPLY)]}) as server:
        done = run_cli(["ask", COUNT_QUESTION, "--images", *images, "--json", "--config", str(config)], server.url)
    assert done.returncode == 0, done.stderr
    result = strict_json(done.stdout)
    assert (result["value"], result["steps"]) == (2, 1)
    events = read_trace(Path(result["session_dir"]))
    cells = [event for event in events if event["kind"] == "cell"]
    assert [(c["code"], c["stdout"]) for c in cells] == [(CODE, "first half\nsecond half\n")]
    assert [event["attempts"] for event in events if event["kind"] == "model_response"] == [2]


# -- 429 with Retry-After ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [{"Retry-After": "1"}, {"retry-after-ms": "1000"}, {"Retry-After": "1.0"}])
def test_retry_after_in_seconds_is_honoured(header):
    script = {"main": [Status(429, header, "slow down"), Reply("fine")]}
    with FaultyModelServer(script) as server, make_model(server.url, max_retries=2) as model:
        reply = model.chat("main", MESSAGES)
    first, second = server.for_role("main")
    assert reply.text == "fine" and reply.attempts == 2
    assert 0.95 <= second.at - first.at < 3.0  # the backoff alone would have been 0.01 s


def test_retry_after_as_an_http_date_is_honoured():
    until = int(time.time()) + 3  # HTTP dates have whole seconds
    script = {"main": [Status(429, {"Retry-After": email.utils.formatdate(until, usegmt=True)}), Reply("fine")]}
    with FaultyModelServer(script) as server, make_model(server.url, max_retries=2) as model:
        reply = model.chat("main", MESSAGES)
    first, second = server.for_role("main")
    assert reply.text == "fine" and reply.attempts == 2
    assert until - first.wall > 1.0
    assert until - 0.1 <= second.wall < until + 2.0


def test_an_unreadable_retry_after_falls_back_to_the_backoff():
    script = {"main": [Status(503, {"Retry-After": "soon"}), Reply("fine")]}
    with FaultyModelServer(script) as server, make_model(server.url, max_retries=2) as model:
        reply = model.chat("main", MESSAGES)
    first, second = server.for_role("main")
    assert reply.text == "fine" and second.at - first.at < 0.9


def test_retry_after_past_the_timeout_fails_at_once():
    script = {"main": [Status(429, {"Retry-After": "30"}, "slow down")]}
    main = RoleConfig(timeout_s=3.0)
    with FaultyModelServer(script) as server, make_model(server.url, max_retries=3, main=main) as model:
        started = time.monotonic()
        with pytest.raises(ModelError) as caught:
            model.chat("main", MESSAGES)
        elapsed = time.monotonic() - started
    assert elapsed < 2.0 and len(server.for_role("main")) == 1
    assert caught.value.kind == "http" and caught.value.status == 429
    assert str(caught.value) == (f"model endpoint {server.url} answered HTTP 429 asking to retry after 30.0 s "
                                 "(Retry-After), past the call's timeout of 3.0 s: "
                                 '{"error": {"message": "slow down", "type": "faulty", "code": 429}}')


def test_cli_exit_3_names_the_retry_after(tmp_path, images):
    config = write_config(tmp_path / "config.yaml", tmp_path / "sessions",
                          model={"max_retries": 2, "main": {"timeout_s": 5.0}})
    with FaultyModelServer({"main": [Status(429, {"Retry-After": "60"})]}) as server:
        done = run_cli(["ask", COUNT_QUESTION, "--images", *images, "--config", str(config)], server.url)
    assert done.returncode == 3
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"spatialclaw: failed (model_error): model endpoint {server.url} answered HTTP 429 "
                           "asking to retry after 60.0 s (Retry-After), past the call's timeout of 5.0 s")
    assert "Traceback" not in done.stderr


# -- non-finite numbers and huge replies ------------------------------------------------------------------------

def test_non_finite_usage_counts_as_zero():
    body = completion_body("fine", '{"prompt_tokens": NaN, "completion_tokens": Infinity, "total_tokens": -Infinity}')
    with FaultyModelServer({"main": [Raw(body)]}) as server, make_model(server.url) as model:
        reply = model.chat("main", MESSAGES)
    assert reply.text == "fine"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (0, 0, 0)


@pytest.mark.parametrize("stream", [False, True])
def test_a_huge_reply_is_refused(stream):
    huge = "x" * (1_000_000 if stream else 5_000_000)
    main = RoleConfig(max_tokens=1024)
    with FaultyModelServer({"main": [Reply(huge)]}) as server, make_model(server.url, stream=stream, main=main) as model:
        with pytest.raises(ModelError) as caught:
            model.chat("main", MESSAGES)
    assert caught.value.kind == "garbage"
    assert str(caught.value) == (f"model endpoint {server.url} sent a reply longer than 65536 characters, far "
                                 "beyond max_tokens=1024")


def test_cli_with_non_finite_usage_answers(tmp_path, images):
    config = write_config(tmp_path / "config.yaml", tmp_path / "sessions")
    body = completion_body(cell("ReturnAnswer(len(InputImages))"), '{"prompt_tokens": NaN, "completion_tokens": 1}')
    with FaultyModelServer({"main": [Raw(body)]}) as server:
        done = run_cli(["ask", COUNT_QUESTION, "--images", *images, "--json", "--config", str(config)], server.url)
    assert done.returncode == 0, done.stderr
    session = Path(strict_json(done.stdout)["session_dir"])
    response = [event for event in read_trace(session) if event["kind"] == "model_response"][0]
    assert response["usage"] == {"prompt_tokens": 0, "completion_tokens": 1, "total_tokens": 0}
