"""A sessions directory on a read-only or full file system (real tmpfs mounts): the answer still comes back,
the CLI exits 5 ("answered, log incomplete") and says why in one line, and no file is left cut short."""

from __future__ import annotations

from pathlib import Path

from fault_support import (
    COUNT_QUESTION, cell, fill_up, remount_read_only, run_cli, strict_json, write_config,
)
from faulty_server import FaultyModelServer, Reply

from spatialclaw_ros.agent import Agent
from spatialclaw_ros.config import AgentConfig, Config, ModelConfig
from spatialclaw_ros.llm.client import ChatModel
from spatialclaw_ros.session_log import read_trace

ANSWERED_LOG_INCOMPLETE = 5


def count_script():
    return {"main": [Reply(cell("n = len(InputImages)\nprint('n =', n)")), Reply(cell("ReturnAnswer(n)"))]}


def ask_json(tmp_path, images, sessions: Path, script) -> tuple:
    config = write_config(tmp_path / "config.yaml", sessions)
    with FaultyModelServer(script) as server:
        done = run_cli(["ask", COUNT_QUESTION, "--images", *images, "--json", "--config", str(config)], server.url)
    assert "Traceback" not in done.stderr, done.stderr
    return done, strict_json(done.stdout)


def assert_no_cut_files(directory: Path) -> None:
    """Every result.json is whole strict JSON and no temporary file of an atomic write is left behind."""
    for path in directory.rglob("*"):
        assert not path.name.startswith(".result.json") and not path.name.startswith(".report.html"), path
    for path in directory.rglob("result.json"):
        strict_json(path.read_text(encoding="utf-8"))


def test_read_only_sessions_directory(tmp_path, images, tmpfs):
    mount = tmpfs("1m")
    remount_read_only(mount)
    done, result = ask_json(tmp_path, images, mount / "sessions", count_script())
    assert done.returncode == ANSWERED_LOG_INCOMPLETE, done.stderr
    assert (result["status"], result["value"], result["steps"]) == ("answered", 2, 2)
    assert "cannot create" in result["log_error"] and "Read-only file system" in result["log_error"]
    assert f"spatialclaw: {result['log_error']}" in done.stderr.splitlines()
    assert list(mount.iterdir()) == []


def test_full_sessions_directory(tmp_path, images, tmpfs):
    mount = tmpfs("256k")
    fill_up(mount)
    done, result = ask_json(tmp_path, images, mount / "sessions", count_script())
    assert done.returncode == ANSWERED_LOG_INCOMPLETE, done.stderr
    assert (result["status"], result["value"]) == ("answered", 2)
    assert "No space left on device" in result["log_error"]
    assert "the session log is incomplete" in done.stderr
    assert_no_cut_files(mount)


def test_disk_fills_during_the_run(tmp_path, frames, pool, tmpfs):
    """Cells print until the disk is full; the answer comes back and the trace holds whole events up to there."""
    mount = tmpfs("400k")
    chatty = [Reply(cell(f"print('{step}' * 100_000)")) for step in range(6)]
    script = {"main": [*chatty, Reply(cell("ReturnAnswer(len(InputImages))"))]}
    config = Config(agent=AgentConfig(plan=False, sessions_dir=str(mount / "sessions"), cell_timeout_s=30.0))
    with FaultyModelServer(script) as server:
        model = ChatModel(ModelConfig(base_url=server.url, max_retries=0))
        try:
            result = Agent(config, model=model, pool=pool).ask(COUNT_QUESTION, frames)
        finally:
            model.close()
    assert result.status == "answered" and result.answer.value == 2 and result.steps == 7
    assert "trace.jsonl: [Errno 28] No space left on device" in result.log_error
    events = read_trace(result.session_dir)
    assert events[0]["kind"] == "question"
    cells = [event for event in events if event["kind"] == "cell"]
    assert 1 <= len(cells) < 7 and cells[0]["stdout"].startswith("0000")
    assert_no_cut_files(mount)
