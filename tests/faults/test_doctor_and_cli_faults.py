"""``spatialclaw doctor`` never crashes (a broken torch install), and the CLI ends every run with one line and an
exit code, a second Ctrl-C included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import weakref

import pytest
from fault_support import SPATIALCLAW, COUNT_QUESTION, cell, run_cli, write_config
from faulty_server import FaultyModelServer, Reply

from spatialclaw_ros.cli import redelivering_interrupts
from spatialclaw_ros.config import Config
from spatialclaw_ros.doctor import Check, guarded

BROKEN_TORCH = "libcudart.so.12: cannot open shared object file: No such file or directory"


def test_doctor_with_a_broken_torch_install(tmp_path):
    broken = tmp_path / "site" / "torch"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text(f"raise OSError({BROKEN_TORCH!r})\n")
    config = write_config(tmp_path / "config.yaml", tmp_path / "sessions")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SPATIALCLAW_", "OPENAI_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path / "site"), env.get("PYTHONPATH")]))
    with FaultyModelServer({}) as server:
        env["SPATIALCLAW_BASE_URL"] = server.url
        done = subprocess.run([SPATIALCLAW, "doctor", "--config", str(config)], capture_output=True, text=True,
                              timeout=180, env=env)
    lines = done.stdout.splitlines()
    assert f"missing GPU: torch is installed but does not import: OSError: {BROKEN_TORCH}" in lines, done.stdout
    assert "ok      kernel: runs cells" in lines
    assert done.returncode == 0, done.stdout + done.stderr  # only the endpoint and the kernel are required
    assert "Traceback" not in done.stdout + done.stderr


def test_a_check_that_raises_becomes_a_line():
    def broken() -> Check:
        raise OSError(5, "Input/output error")

    assert [check.line() for check in guarded("GPU", False, broken)] == [
        "missing GPU: the check itself failed: OSError: [Errno 5] Input/output error"]
    endpoint = guarded("model endpoint", True, lambda: Config().no_such_field)
    assert not endpoint[0].ok and endpoint[0].required


def test_a_second_ctrl_c_ends_with_one_line(tmp_path, images):
    config = write_config(tmp_path / "config.yaml", tmp_path / "sessions")
    with FaultyModelServer({"main": [Reply(cell("while True:\n    pass"))]}) as server:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("SPATIALCLAW_", "OPENAI_"))}
        env["SPATIALCLAW_BASE_URL"] = server.url
        process = subprocess.Popen([SPATIALCLAW, "ask", COUNT_QUESTION, "--images", *images, "--config", str(config)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        while not server.received and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("spatialclaw: "), stderr


def test_a_ctrl_c_that_lands_in_a_finaliser_is_not_lost(monkeypatch):
    """The second Ctrl-C's KeyboardInterrupt may be raised inside a weakref callback, where Python prints it
    with a traceback and drops it (CI saw this): it reaches the main thread again instead."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", redelivering_interrupts(seen.append))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    class Held:
        pass

    def interrupted_callback(_ref) -> None:
        raise KeyboardInterrupt

    held = Held()
    ref = weakref.ref(held, interrupted_callback)
    try:
        with pytest.raises(KeyboardInterrupt):
            del held  # the callback runs here; its exception cannot propagate
            for _ in range(200):
                time.sleep(0.01)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert ref() is None and seen == []


def test_bad_config_value_is_one_line(tmp_path, images):
    config = write_config(tmp_path / "config.yaml", tmp_path / "sessions", agent={"session_max_mb": 1})
    done = run_cli(["ask", COUNT_QUESTION, "--images", *images, "--config", str(config)], "http://127.0.0.1:9/v1")
    assert done.returncode == 2
    assert done.stderr.strip() == ("spatialclaw: bad configuration: config key 'config.agent.session_max_mb' = 1 is "
                                   "outside [4, 1048576]")
