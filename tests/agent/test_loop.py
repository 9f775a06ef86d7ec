"""The agent loop end to end: a real scripted HTTP model server and real kernel processes."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from spatialclaw_ros.agent import AgentEvent, ErrorCode
from spatialclaw_ros.answers import AnswerKind
from spatialclaw_ros.cancel import CancelToken
from spatialclaw_ros.config import ContextBudget, ModelConfig, RoleConfig
from spatialclaw_ros.llm.messages import message_text
from spatialclaw_ros.llm.scripted_server import ScriptedModelServer, Turn
from spatialclaw_ros.session_log import read_trace

from agent_support import cell

COUNT_QUESTION = "How many images are there?"


def last_user_text(request):
    return message_text(request.messages[-1])


def kinds(session_dir):
    return [event["kind"] for event in read_trace(session_dir)]


def test_multi_step_answer_with_plan(make_agent, frames):
    script = {
        "planner": ["1. Count InputImages.\n2. Return the count."],
        "main": [cell("n = len(InputImages)\nprint('count', n, InputImages.frame_indices)", "Count them."),
                 cell("ReturnAnswer(n)", "There are three.")],
    }
    events: list[AgentEvent] = []
    with ScriptedModelServer(script) as server:
        agent = make_agent(server.url, plan=True)
        result = agent.ask(COUNT_QUESTION, frames, on_event=events.append)
        planner, first, second = server.requests
    assert result.status == "answered", result.error_message
    assert result.answer.kind == AnswerKind.COUNT and result.answer.value == 3
    assert (result.steps, result.low_confidence, result.error_code) == (2, False, "")
    assert result.usage.total_tokens > 0 and result.context.calls == 2
    # The planner sees text only: the question, frame metadata and the tool summary.
    assert planner.role == "planner" and planner.image_count() == 0
    assert COUNT_QUESTION in planner.text() and "tools.Geometry" in planner.text() and "frame 20" in planner.text()
    # The main conversation: generated tool docs, the plan, key frames labelled with index, camera and stamp.
    system = message_text(first.messages[0])
    assert "ReturnAnswer(answer, unit=None, evidence=None)" in system and "tools.Geometry." in system and "OpenCV" in system
    assert first.image_count() == 3
    assert "Count InputImages" in first.text() and "[image 'frame 20 (camera front, t=1.00 s)']" in first.text()
    assert "a non-negative whole number" in first.text()
    assert "count 3 [0, 10, 20]" in last_user_text(second)
    assert "n: int = 3" in last_user_text(second)
    assert [event.stage for event in events] == ["planning", "step", "step", "done"]
    assert events[1].code.startswith("n = len(InputImages)") and events[1].output_summary == "ok: count 3 [0, 10, 20]"
    assert events[2].output_summary.startswith("answered")
    session = result.session_dir
    assert kinds(session)[:3] == ["question", "model_request", "model_response"]
    assert {"plan", "cell", "answer_check", "result"} <= set(kinds(session))
    assert json.loads((session / "result.json").read_text())["answer"] == result.answer.text
    report = (session / "report.html").read_text()
    assert "n = len(InputImages)" in report and result.answer.text in report
    assert (session / "inputs" / "frames.json").is_file() and (session / "images" / "key_20.png").is_file()


def test_revises_after_an_exception(make_agent, frames):
    script = {"main": [cell("ratio = 1 / 0"), cell("ReturnAnswer(len(InputImages))")]}
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url).ask(COUNT_QUESTION, frames)
        second = server.requests[1]
    assert result.status == "answered" and result.steps == 2
    assert "ZeroDivisionError" in last_user_text(second)
    assert "raised an error" in last_user_text(second)


def test_malformed_reply_gets_a_reminder_and_counts_as_a_step(make_agent, frames):
    script = {"main": ["I think the answer is 3.", cell("a = 1") + "\n" + cell("b = 2"), cell("ReturnAnswer(3)")]}
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url).ask(COUNT_QUESTION, frames)
        reminders = [last_user_text(request) for request in server.requests[1:]]
    assert result.status == "answered" and result.steps == 3
    assert "could not be run: the reply contains no ```python code cell" in reminders[0]
    assert "the reply contains 2 code cells" in reminders[1]
    assert kinds(result.session_dir).count("malformed") == 2


def test_refused_answer_then_a_correct_one(make_agent, frames):
    script = {"main": [cell("ReturnAnswer('blue')"), cell("ReturnAnswer(3)")]}
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url).ask(COUNT_QUESTION, frames)
        feedback = last_user_text(server.requests[1])
    assert result.status == "answered" and result.answer.value == 3
    assert "ReturnAnswer was refused:" in feedback and "AnswerRefused" in feedback
    checks = [event for event in read_trace(result.session_dir) if event["kind"] == "answer_check"]
    assert [check["accepted"] for check in checks] == [False, True]


def test_step_exhaustion_asks_for_a_final_answer(make_agent, frames):
    script = {"main": [cell("print(1)"), cell("print(2)"), "Three images.\nANSWER: 3"]}
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url).ask(COUNT_QUESTION, frames, max_steps=2)
        warned, final = server.requests[1], server.requests[2]
    assert result.status == "answered" and result.low_confidence and result.steps == 2
    assert result.answer.value == 3
    assert "this is your last step: call ReturnAnswer now" in last_user_text(warned)
    assert "ANSWER: <value>" in last_user_text(final) and "[stderr]" not in last_user_text(final)
    assert [m["role"] for m in final.messages][-2:] == ["assistant", "user"]


def test_step_exhaustion_with_an_invalid_final_answer_fails(make_agent, frames):
    script = {"main": [cell("print(1)"), "ANSWER: many"]}
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url).ask(COUNT_QUESTION, frames, max_steps=1)
    assert result.status == "failed" and result.error_code == ErrorCode.NO_ANSWER
    assert "the final answer 'many' was refused" in result.error_message
    assert (result.session_dir / "report.html").is_file()


@pytest.mark.parametrize("turn, code, message", [
    (Turn(status=500, text="overloaded"), ErrorCode.MODEL_ERROR, "answered HTTP 500"),
    (Turn(body=b"<html>not json</html>"), ErrorCode.MODEL_ERROR, "not a chat completion"),
    (Turn(text="late", delay_s=5.0), ErrorCode.MODEL_UNREACHABLE, "timed out after 0.5 s"),
])
def test_model_failures(make_agent, frames, turn, code, message):
    with ScriptedModelServer({"main": [turn]}) as server:
        model = ModelConfig(base_url=server.url, max_retries=0, main=RoleConfig(timeout_s=0.5))
        result = make_agent(server.url, model_config=model).ask(COUNT_QUESTION, frames)
    assert (result.status, result.error_code) == ("failed", code)
    assert server.url in result.error_message and message in result.error_message
    assert json.loads((result.session_dir / "result.json").read_text())["error_code"] == code
    assert (result.session_dir / "report.html").is_file()
    assert kinds(result.session_dir)[-2:] == ["error", "result"]


def test_endpoint_down(make_agent, frames):
    url = "http://127.0.0.1:9/v1"
    result = make_agent(url, plan=True).ask(COUNT_QUESTION, frames)
    assert (result.status, result.error_code) == ("failed", ErrorCode.MODEL_UNREACHABLE)
    assert url in result.error_message and "unreachable" in result.error_message
    assert (result.session_dir / "trace.jsonl").is_file() and (result.session_dir / "result.json").is_file()


def test_infinite_loop_times_out_and_the_loop_continues(make_agent, frames):
    script = {"main": [cell("kept = 5\nwhile True:\n    pass"), cell("ReturnAnswer(kept - 2)")]}
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url, cell_timeout_s=1.0).ask(COUNT_QUESTION, frames)
        feedback = last_user_text(server.requests[1])
    assert result.status == "answered" and result.answer.value == 3
    assert "the cell timed out" in feedback and "ran past its 1 s limit" in feedback


def test_memory_exhaustion_is_reported(make_agent, frames):
    script = {"main": [cell("big = bytearray(16 * 1024 ** 3)"), cell("ReturnAnswer(3)")]}
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url).ask(COUNT_QUESTION, frames)
        feedback = last_user_text(server.requests[1])
    assert result.status == "answered"
    assert "MemoryError" in feedback


def cancel_after(token, seconds):
    timer = threading.Timer(seconds, token.cancel, args=("test cancels",))
    timer.start()
    return timer


def test_cancel_mid_cell(make_agent, frames):
    token = CancelToken()

    def reply_then_cancel(request):  # the cell starts right after this reply; cancel 1 s into it
        cancel_after(token, 1.0)
        return cell("while True:\n    pass")

    with ScriptedModelServer(reply_then_cancel) as server:
        agent = make_agent(server.url, cell_timeout_s=60.0)
        started = time.monotonic()
        result = agent.ask(COUNT_QUESTION, frames, cancel=token)
        elapsed = time.monotonic() - started
    assert (result.status, result.error_code) == ("cancelled", ErrorCode.CANCELLED)
    assert "test cancels" in result.error_message
    assert elapsed < 10.0  # the cell would have run for 60 s
    cells = [event for event in read_trace(result.session_dir) if event["kind"] == "cell"]
    assert cells[0]["status"] == "cancelled"


def test_cancel_mid_model_call(make_agent, frames):
    token = CancelToken()
    with ScriptedModelServer({"main": [Turn(text=cell("x = 1"), delay_s=60.0)]}) as server:
        agent = make_agent(server.url)
        cancel_after(token, 0.5)
        started = time.monotonic()
        result = agent.ask(COUNT_QUESTION, frames, cancel=token)
        elapsed = time.monotonic() - started
    assert result.status == "cancelled" and result.steps == 1
    assert elapsed < 10.0  # the reply would have come after 60 s
    assert (result.session_dir / "report.html").is_file()


def test_deadline_stops_a_running_cell(make_agent, frames):
    with ScriptedModelServer({"main": [cell("while True:\n    pass")]}) as server:
        result = make_agent(server.url, cell_timeout_s=60.0).ask(COUNT_QUESTION, frames, deadline_s=1.0)
    assert (result.status, result.error_code) == ("failed", ErrorCode.DEADLINE_EXCEEDED)
    assert "deadline of 1 s" in result.error_message


def test_shown_images_arrive_in_the_next_request(make_agent, frames):
    script = {"main": [cell("show(InputImages[0], label='first frame')\nshow(np.zeros((10, 20)), label='mask')"),
                       cell("ReturnAnswer(3)")]}
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url).ask(COUNT_QUESTION, frames)
        first, second = server.requests
    assert second.image_count() == first.image_count() + 2
    text = last_user_text(second)
    assert "[image 'step 1 image 1: first frame']" in text and "[image 'step 1 image 2: mask']" in text
    shown = [event for event in read_trace(result.session_dir) if event["kind"] == "cell"][0]["images"]
    assert [image["file"] for image in shown] == ["images/step1_1.png", "images/step1_2.png"]
    assert all((result.session_dir / image["file"]).is_file() for image in shown)


def test_context_budget_over_a_long_run(make_agent, frames):
    steps = 8
    script = {"main": [cell(f"show(InputImages[{i % 3}], InputImages[{(i + 1) % 3}], label='s{i}')\nprint('x' * 3000)")
                       for i in range(steps)] + [cell("ReturnAnswer(3)")]}
    budget = ContextBudget(max_tokens=3000, max_images=5, thumbnail_px=16, keep_recent_steps=2)
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url, context=budget).ask(COUNT_QUESTION, frames, max_steps=steps + 1)
        counts = [request.image_count() for request in server.requests]
    assert result.status == "answered"
    assert max(counts) <= 5
    assert result.context.calls == steps + 1
    assert result.context.peak_images_dropped > 0 and result.context.peak_images_thumbnailed > 0
    requests = [event for event in read_trace(result.session_dir) if event["kind"] == "model_request"]
    assert all(event["images"] <= 5 and event["context"]["images_sent"] == event["images"] for event in requests)
    assert "dropped to fit the context budget" in server.requests[-1].text()


def test_vlm_calls_are_served_and_recorded(make_agent, frames):
    script = {"main": [cell("p = vlm.locate(InputImages[1], 'the green wall')\nprint('point', p, p.point)"),
                       cell("ReturnAnswer(3)")],
              "vlm": ["<think>it fills the image</think>500, 480"]}
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url).ask(COUNT_QUESTION, frames)
        vlm_request = server.requests_for("vlm")[0]
        feedback = last_user_text(server.requests_for("main")[1])
    assert "point 500, 480 (32.0, 23.04)" in feedback  # the model's text, and its point in pixels of the 64x48 image
    assert vlm_request.image_count() == 1 and "the green wall" in vlm_request.text()
    calls = [event for event in read_trace(result.session_dir) if event["kind"] == "vlm"]
    assert calls[0]["step"] == 1 and calls[0]["result"] == "500, 480"
    trace = read_trace(result.session_dir)
    main_tokens = sum(event["usage"]["total_tokens"] for event in trace if event["kind"] == "model_response")
    assert result.usage.total_tokens == main_tokens + calls[0]["usage"]["total_tokens"] > main_tokens


def test_invalid_input(make_agent, frames):
    with ScriptedModelServer({"main": []}) as server:
        agent = make_agent(server.url)
        empty = agent.ask("  ", frames)
        steps = agent.ask(COUNT_QUESTION, frames, max_steps=0)
    assert (empty.status, empty.error_code) == ("failed", ErrorCode.INVALID_INPUT)
    assert "question is empty" in empty.error_message
    assert "max_steps must be at least 1" in steps.error_message
    assert (empty.session_dir / "result.json").is_file()


#: Runs argv[1:] without CAP_SETUID and CAP_SETGID in its bounding set (as in a container that lacks them).
WITHOUT_SETUID = ("import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                  "for capability in (6, 7):\n    assert libc.prctl(24, capability, 0, 0, 0) == 0\n"
                  "os.execv(sys.argv[1], sys.argv[1:])")


@pytest.mark.skipif(os.geteuid() != 0, reason="the dedicated uid layer applies to a parent running as root")
def test_a_kernel_missing_a_sandbox_layer_is_a_kernel_failure_naming_it(tmp_path):
    """``spatialclaw ask`` where the kernel cannot become its sandbox uid: the question fails with KERNEL_FAILURE and
    a message naming the layer and the setting; accepting the weaker sandbox lets the same question be answered."""
    Image.new("RGB", (32, 24), (200, 30, 30)).save(tmp_path / "a.png")
    spatialclaw = str(Path(sys.executable).parent / "spatialclaw")

    def ask(url: str, optional: list[str]) -> tuple[int, dict]:
        config = tmp_path / "config.yaml"
        config.write_text(json.dumps({"model": {"base_url": url, "max_retries": 0},
                                      "agent": {"plan": False, "sessions_dir": str(tmp_path / "sessions")},
                                      "kernel": {"optional_layers": optional, "memory_limit_mb": 2048}}))
        done = subprocess.run([sys.executable, "-c", WITHOUT_SETUID, spatialclaw, "ask", COUNT_QUESTION, "--images",
                               str(tmp_path / "a.png"), "--json", "--config", str(config)],
                              capture_output=True, text=True, timeout=300)
        return done.returncode, json.loads(done.stdout)

    with ScriptedModelServer({"main": [cell("ReturnAnswer(len(InputImages))")]}) as server:
        code, failed = ask(server.url, [])
        assert (code, failed["status"], failed["error_code"]) == (4, "failed", ErrorCode.KERNEL_FAILURE)
        assert failed["error_message"].startswith("the kernel failed: could not start a kernel worker: kernel sandbox "
                                                  "layer 'sandbox_uid' is missing: could not become uid 65534")
        assert failed["error_message"].endswith("set kernel.optional_layers: [sandbox_uid]")
        assert (Path(failed["session_dir"]) / "report.html").is_file()
        code, answered = ask(server.url, ["sandbox_uid"])
    assert (code, answered["answer"]) == (0, "1")


def test_evidence_points_travel_with_the_accepted_answer(make_agent, frames):
    code = ("d = tools.Geometry.closest_point_distance(np.array([[0.0, 0, 0], [0, 0.1, 0]]), np.array([[2.0, 0, 0]]),"
            " robust=False)\nReturnAnswer(d.value_m, unit='m', evidence=d)")
    with ScriptedModelServer({"main": [cell("ReturnAnswer(1.0, unit='m', evidence=[[0, 0, float('nan')]])"),
                                       cell(code)]}) as server:
        result = make_agent(server.url).ask("How far apart are the two objects?", frames)
        refused = last_user_text(server.requests[1])
    assert "evidence point 'p0' must be 3 finite world coordinates" in refused
    assert result.status == "answered" and result.answer.value == pytest.approx(2.0)
    assert result.answer.points == [{"label": "a", "xyz": [0.0, 0.0, 0.0]}, {"label": "b", "xyz": [2.0, 0.0, 0.0]}]
    saved = json.loads((result.session_dir / "result.json").read_text())
    assert saved["answer_detail"]["points"] == result.answer.points
