"""Unicode line separators in cell output, code, the question and the choices round-trip through every file."""

from __future__ import annotations

from pathlib import Path

from fault_support import cell, run_cli, strict_json, strict_lines, write_config
from faulty_server import FaultyModelServer, Reply

from spatialclaw_ros.agent import Agent
from spatialclaw_ros.config import AgentConfig, Config, ModelConfig
from spatialclaw_ros.llm.client import ChatModel
from spatialclaw_ros.session_log import read_trace

# Everything str.splitlines splits on but "\n", and a lone surrogate (not encodable as UTF-8).
SEPARATORS = "a\u2028b\u2029c\x85d\x0be\x0cf\x1cg\x1dh\x1ei\rj\ud800k"
PRINTED = "print('a\\u2028b\\u2029c\\x85d\\x0be\\x0cf\\x1cg\\x1dh\\x1ei\\rj\\ud800k')"
QUESTION = "Is the first image red?\u2029Answer with an option."
CHOICES = ["A. yes\u2028really", "B. no\x85never"]
# The code itself carries raw separators in a comment and a string.
CODE = PRINTED + "\n# a comment\u2028with a separator\nlabel = 'x\u2029y'"


def script():
    return {"main": [Reply(cell(CODE, "Look\u2028closer.")), Reply(cell("ReturnAnswer('A')"))]}


def check_session(session: Path) -> None:
    """The trace reads back whole with our reader and line by line with str.splitlines; the output is exact."""
    events = read_trace(session)
    assert events == strict_lines(session / "trace.jsonl")
    first = [event for event in events if event["kind"] == "cell"][0]
    assert first["stdout"] == SEPARATORS + "\n"
    assert first["code"] == CODE
    question = [event for event in events if event["kind"] == "question"][0]
    assert question["question"] == QUESTION and question["choices"] == CHOICES
    assert events[-1]["kind"] == "result" and events[-1]["status"] == "answered"
    assert strict_json((session / "result.json").read_text(encoding="utf-8"))["log_error"] == ""
    assert "a\u2028b" in (session / "report.html").read_text(encoding="utf-8")


def test_cli_answers_and_replays(tmp_path, images):
    config = write_config(tmp_path / "config.yaml", tmp_path / "sessions")
    with FaultyModelServer(script()) as server:
        done = run_cli(["ask", QUESTION, "--images", *images, "--choices", *CHOICES, "--json", "--config", str(config)],
                       server.url)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    result = strict_json(done.stdout)
    assert result["status"] == "answered" and result["answer"].startswith("A")
    session = Path(result["session_dir"])
    check_session(session)
    replayed = run_cli(["replay", str(session), "--config", str(config)], "http://127.0.0.1:9/v1")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "2/2 steps match" in replayed.stdout


def test_python_api(tmp_path, frames, pool):
    config = Config(model=ModelConfig(max_retries=0),
                    agent=AgentConfig(plan=False, sessions_dir=str(tmp_path / "sessions"), cell_timeout_s=30.0))
    with FaultyModelServer(script()) as server:
        model = ChatModel(ModelConfig(base_url=server.url, max_retries=0))
        try:
            result = Agent(config, model=model, pool=pool).ask(QUESTION, frames, choices=CHOICES)
        finally:
            model.close()
    assert result.status == "answered" and result.answer.text.startswith("A"), result.error_message
    assert result.log_error == ""
    check_session(result.session_dir)
