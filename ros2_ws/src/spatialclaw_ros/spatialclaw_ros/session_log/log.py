"""One question's session directory: an append-only JSONL trace, inputs, images and the result.

Layout: ``trace.jsonl`` (one event per line, each with ``kind`` and ``t`` = seconds since the
session started), ``inputs/`` (FrameSet.save, what replay needs), ``images/`` (PNG files the trace
names), ``result.json`` and ``report.html``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..frames import FrameSet

TRACE_FILE = "trace.jsonl"
RESULT_FILE = "result.json"
REPORT_FILE = "report.html"
INPUTS_DIR = "inputs"
IMAGES_DIR = "images"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: dataclasses, enums, paths and numpy values converted; bytes summarised."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = (f.name for f in dataclasses.fields(value) if not f.name.startswith("_"))
        return {name: jsonable(getattr(value, name)) for name in fields}
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def new_session_name() -> str:
    """``<UTC timestamp>_<short id>``, e.g. ``20260121T101502Z_3fa9c2``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "_" + uuid.uuid4().hex[:6]


class SessionLog:
    """Writes one session directory; ``event`` is thread-safe (vlm calls arrive from kernel host calls)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        (self.directory / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._trace = open(self.directory / TRACE_FILE, "a", encoding="utf-8")

    @classmethod
    def create(cls, sessions_dir: str | Path, session_dir: str | Path | None = None) -> "SessionLog":
        """Open ``session_dir`` if given, else a new ``<timestamp>_<id>`` directory under ``sessions_dir``."""
        return cls(Path(session_dir) if session_dir else Path(sessions_dir) / new_session_name())

    def event(self, kind: str, **fields: Any) -> None:
        """Append one trace event (flushed at once, so a crash loses nothing already logged)."""
        record = {"kind": kind, "t": round(time.monotonic() - self._start, 4), **jsonable(fields)}
        line = json.dumps(record, ensure_ascii=False)
        with self._lock:
            self._trace.write(line + "\n")
            self._trace.flush()

    def save_image(self, name: str, png: bytes) -> str:
        """Write ``images/<name>.png`` and return its path relative to the session directory."""
        relative = f"{IMAGES_DIR}/{name}.png"
        (self.directory / relative).write_bytes(png)
        return relative

    def save_inputs(self, frames: FrameSet) -> None:
        """Save the question's frames under ``inputs/`` (what replay loads)."""
        frames.save(self.directory / INPUTS_DIR)

    def write_result(self, result: dict) -> None:
        """Write ``result.json``."""
        (self.directory / RESULT_FILE).write_text(json.dumps(jsonable(result), indent=2, ensure_ascii=False))

    def close(self) -> None:
        """Close the trace file; later events are an error."""
        with self._lock:
            self._trace.close()


def read_trace(directory: str | Path) -> list[dict]:
    """The events of a session's ``trace.jsonl``, in order."""
    path = Path(directory) / TRACE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a session directory: {TRACE_FILE} is missing")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
