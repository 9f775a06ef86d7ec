"""Size bounds: a 50 MB answer string leaves a session of a few hundred KB, and a session directory stays under
``agent.session_max_mb`` whatever the cells print or show, its trace still ending with the result."""

from __future__ import annotations

from pathlib import Path

from fault_support import COUNT_QUESTION, cell, run_cli, strict_json, strict_lines, tree_bytes, write_config
from faulty_server import FaultyModelServer, Reply

from spatialclaw_ros.session_log.encoding import TEXT_MAX_CHARS

MB = 1024 * 1024
NOISE_CELL = """rng = np.random.default_rng({seed})
for i in range(32):
    show(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8), label=f'noise {{i}}')
print('{seed}' * 1_000_000)"""


def test_a_50_mb_answer_string(tmp_path, images):
    config = write_config(tmp_path / "config.yaml", tmp_path / "sessions")
    with FaultyModelServer({"main": [Reply(cell("ReturnAnswer('x' * 50_000_000)"))]}) as server:
        done = run_cli(["ask", "Describe the room.", "--images", *images, "--json", "--config", str(config)],
                       server.url)
    assert "Traceback" not in done.stderr
    assert len(done.stdout) < 3 * TEXT_MAX_CHARS
    result = strict_json(done.stdout)
    session = Path(result["session_dir"])
    if result["status"] == "answered":  # the answer text is echoed cut to its head and tail
        assert done.returncode == 0 and result["sanitized"]["answer"] == f"50000000 characters cut to {TEXT_MAX_CHARS}"
        assert result["answer"].startswith("x" * 1000) and "characters left out" in result["answer"]
    sizes = {name: (session / name).stat().st_size for name in ("trace.jsonl", "report.html", "result.json")}
    assert sizes["trace.jsonl"] < 1 * MB and sizes["report.html"] < 1 * MB and sizes["result.json"] < 200_000, sizes
    assert tree_bytes(session) < 2 * MB


def test_session_directory_stays_under_its_cap(tmp_path, images):
    config = write_config(tmp_path / "config.yaml", tmp_path / "sessions", agent={"session_max_mb": 4,
                                                                                   "image_max_side": 256})
    script = {"main": [Reply(cell(NOISE_CELL.format(seed=seed))) for seed in range(3)]
              + [Reply(cell("ReturnAnswer(len(InputImages))"))]}
    with FaultyModelServer(script) as server:
        done = run_cli(["ask", COUNT_QUESTION, "--images", *images, "--json", "--config", str(config)], server.url)
    assert done.returncode == 5, done.stderr  # answered, the session log incomplete
    result = strict_json(done.stdout)
    assert (result["status"], result["value"], result["steps"]) == ("answered", 2, 4)
    assert "not written: the session size cap of 4 MB (agent.session_max_mb) was reached" in result["log_error"]
    session = Path(result["session_dir"])
    assert tree_bytes(session) <= 4 * MB
    events = strict_lines(session / "trace.jsonl")
    assert [event["kind"] for event in events[-2:]] == ["dropped", "result"]
    assert events[-1]["status"] == "answered" and events[-1]["log_error"] == result["log_error"]
    summary = events[-2]["summary"]
    assert sum(entry["items"] for entry in summary.values()) > 20
    assert [event["step"] for event in events if event["kind"] == "cell"] == [1, 2, 3, 4]
    assert strict_json((session / "result.json").read_text())["log_error"] == result["log_error"]
    assert "not written: the session size cap" in (session / "report.html").read_text()
    replayed = run_cli(["replay", str(session), "--config", str(config)], "http://127.0.0.1:9/v1")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "4/4 steps match" in replayed.stdout
