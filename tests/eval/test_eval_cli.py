"""``spatialclaw eval`` as a subprocess: generate a benchmark, score it through two interfaces against a real
scripted endpoint, and continue a run whose endpoint died."""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from eval_support import cell, oracle
from spatialclaw_ros.evaluation.dataset import read_rows
from spatialclaw_ros.llm.scripted_server import ScriptedModelServer, Turn

SPATIALCLAW = str(Path(sys.executable).parent / "spatialclaw")


def run(args, url, timeout=300):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SPATIALCLAW_", "OPENAI_"))}
    env["SPATIALCLAW_BASE_URL"] = url
    return subprocess.run([SPATIALCLAW, "eval", *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    done = run(["--generate", "6", "--out", str(out)], "http://127.0.0.1:9/v1")
    assert done.returncode == 0, done.stderr
    return out / "benchmark_images.jsonl"


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"model": {"max_retries": 0}, "agent": {"plan": False, "cell_timeout_s": 20.0},
                                    "kernel": {"memory_limit_mb": 2048}}))
    return path


def answers_of(path):
    return {row.question: row.answer for row in read_rows(path)}


def test_generate_then_evaluate_two_interfaces(generated, config_file, tmp_path):
    out = tmp_path / "run"
    with ScriptedModelServer(oracle(answers_of(generated))) as server:
        done = run(["--dataset", str(generated), "--out", str(out), "--interface", "code", "no-tool",
                    "--concurrency", "2", "--config", str(config_file)], server.url)
    assert done.returncode == 0, done.stderr
    assert "| code | 6 | 100.0 | 100.0 |" in done.stdout and "| no-tool | 6 | 100.0 | 100.0 |" in done.stdout
    assert "[eval] 12/12 (100%)" in done.stderr and "ETA" in done.stderr
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 12 and {r["interface"] for r in records} == {"code", "no-tool"}
    assert (out / "report.html").is_file() and (out / "summary.md").is_file()


def test_dead_endpoint_exits_3_and_resume_finishes(generated, config_file, tmp_path):
    out = tmp_path / "run"
    answer = oracle(answers_of(generated))
    count = []

    def decide(request):
        count.append(1)
        if len(count) == 3:
            threading.Thread(target=server.close).start()
            return Turn(text=cell("ReturnAnswer(1)"), delay_s=30)
        return answer(request)

    server = ScriptedModelServer(decide)
    try:
        done = run(["--dataset", str(generated), "--out", str(out), "--config", str(config_file)], server.url)
    finally:
        server.close()
    assert done.returncode == 3, done.stderr
    assert "rerun with --resume" in done.stderr
    assert len((out / "results.jsonl").read_text().splitlines()) == 2
    with ScriptedModelServer(answer) as server:
        again = run(["--dataset", str(generated), "--out", str(out), "--config", str(config_file), "--resume"],
                    server.url)
        asked = len(server.requests_for("main"))
    assert again.returncode == 0, again.stderr
    assert asked == 4 and "resuming: 2 results" in again.stderr
    assert "| code | 6 | 100.0 | 100.0 |" in again.stdout


def test_bad_input_exits_2(tmp_path):
    done = run(["--dataset", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")], "http://127.0.0.1:9/v1")
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_ctrl_c_stops_the_run_and_resume_continues(generated, config_file, tmp_path):
    out = tmp_path / "run"
    answer = oracle(answers_of(generated))
    first = threading.Event()

    def decide(request):
        if not first.is_set():
            first.set()
            return Turn(text=cell("ReturnAnswer(1)"), delay_s=60)
        return answer(request)

    env = {key: value for key, value in os.environ.items() if not key.startswith(("SPATIALCLAW_", "OPENAI_"))}
    with ScriptedModelServer(decide) as server:
        env["SPATIALCLAW_BASE_URL"] = server.url
        process = subprocess.Popen([SPATIALCLAW, "eval", "--dataset", str(generated), "--out", str(out), "--config",
                                    str(config_file)], env=env, stderr=subprocess.PIPE, text=True)
        assert first.wait(120)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "--resume continues" in stderr and (out / "results.jsonl").read_text() == ""
    with ScriptedModelServer(answer) as server:
        again = run(["--dataset", str(generated), "--out", str(out), "--config", str(config_file), "--resume"],
                    server.url)
    assert again.returncode == 0 and "| code | 6 | 100.0 | 100.0 |" in again.stdout
