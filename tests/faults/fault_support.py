"""Helpers of the fault-injection tests: the real CLI as a subprocess, its config, strict JSON checks, disk use."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

SPATIALCLAW = str(Path(sys.executable).parent / "spatialclaw")
COUNT_QUESTION = "How many images are there?"


def cell(code: str, reasoning: str = "Next step.") -> str:
    """A well-formed main reply: ``reasoning`` then one python cell running ``code``."""
    return f"{reasoning}\n```python\n{code}\n```"


def write_config(path: Path, sessions_dir: Path, **sections) -> Path:
    """A CLI YAML config at ``path``: no plan, no retries, sessions under ``sessions_dir``; ``sections`` update
    the model/agent/kernel sections."""
    config = {"model": {"max_retries": 0},
              "agent": {"plan": False, "cell_timeout_s": 30.0, "sessions_dir": str(sessions_dir)},
              "kernel": {"memory_limit_mb": 2048}}
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(config))
    return path


def run_cli(args: list[str], url: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``spatialclaw ARGS`` against the model endpoint ``url``, with none of the caller's endpoint variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SPATIALCLAW_", "OPENAI_"))}
    env["SPATIALCLAW_BASE_URL"] = url
    return subprocess.run([SPATIALCLAW, *args], capture_output=True, text=True, timeout=timeout, env=env,
                          encoding="utf-8", errors="backslashreplace")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def strict_json(text: str):
    """``json.loads`` that refuses NaN and Infinity, as every strict JSON reader does."""
    return json.loads(text, parse_constant=_refuse_constant)


def strict_lines(path: Path) -> list[dict]:
    """Every line of a JSONL file as strict JSON, split the way ``str.splitlines`` splits (the strictest reader)."""
    return [strict_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def tree_bytes(directory: Path) -> int:
    """Bytes of all files under ``directory``."""
    return sum(path.stat().st_size for path in Path(directory).rglob("*") if path.is_file())


def fill_up(directory: Path) -> None:
    """Write a filler file into ``directory`` until its file system is full."""
    block = b"\0" * 4096
    with open(directory / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(block)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error


def remount_read_only(path: Path) -> None:
    """Make the tmpfs mounted at ``path`` read-only."""
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)
