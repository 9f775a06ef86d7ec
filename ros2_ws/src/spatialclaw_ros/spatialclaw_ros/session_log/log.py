"""One question's session directory: an append-only JSONL trace, inputs, images and the result.

Layout: ``trace.jsonl`` (one strict JSON event per ``\\n``-terminated line, each with ``kind`` and
``t`` = seconds since the session started), ``inputs/`` (FrameSet.save, what replay needs),
``images/`` (PNG files the trace names), ``result.json`` and ``report.html``.

Writing never stands in the caller's way: events and images are serialised by the caller and
written, in order, by a writer thread (flushed on ``close`` and at interpreter exit), and a
directory that cannot be created or a disk that is full or read-only never raises. What could not
be written is summed up in ``error`` (one line), which the agent reports as its result's
``log_error``. The directory stays under ``max_bytes``: once a write would pass the cap (less what is
kept for the end: the last events, ``result.json`` and ``report.html``), the item is replaced by a
small ``dropped`` event saying what it was, or, when not even that fits, only counted.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..frames import FrameSet
from .encoding import TEXT_MAX_CHARS, json_line, json_text, jsonable, loggable_record

__all__ = ["SessionLog", "jsonable", "read_trace", "write_atomically"]

TRACE_FILE = "trace.jsonl"
RESULT_FILE = "result.json"
REPORT_FILE = "report.html"
INPUTS_DIR = "inputs"
IMAGES_DIR = "images"
DROPPED_KIND = "dropped"  # the event that stands in for items the log did not write

MB = 1024 * 1024
DEFAULT_MAX_BYTES = 512 * MB
END_RESERVE_BYTES = 1 * MB  # kept for the last events and result.json
# Admission tiers, each with its own share of the cap: files (images, inputs) may fill it up to half less the end's
# reserve, trace events a quarter more, the end (last events, result.json) all of it; report.html takes what is left.
FILE, EVENT, END = "file", "event", "end"
RESULT_TEXT_MAX_CHARS = 16_384  # strings of the result (trace event and result.json) are cut to this
PENDING_MAX_BYTES = 64 * MB  # queued for the writer but not yet on disk; beyond it items are dropped, never waited for
CLOSE_TIMEOUT_S = 30.0  # close() waits this long for a slow disk, then reports the trace as incomplete
EXAMPLES_KEPT = 3  # names of dropped items quoted per reason

_OPEN_LOGS: "weakref.WeakSet[SessionLog]" = weakref.WeakSet()


def new_session_name() -> str:
    """``<UTC timestamp>_<short id>``, e.g. ``20260121T101502Z_3fa9c2``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "_" + uuid.uuid4().hex[:6]


def _reason(error: OSError) -> str:
    """``[Errno 28] No space left on device`` without the path (the caller names the file)."""
    return f"[Errno {error.errno}] {error.strerror}" if error.errno else str(error)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file in its directory and a rename: it is whole or absent, never cut."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@dataclass
class _Drops:
    """Items of one kind of reason that were not written: how many, their bytes and the first few names."""

    count: int = 0
    size: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, name: str, size: int) -> None:
        """Count one more item of ``size`` bytes named ``name``."""
        self.count += 1
        self.size += size
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(name)


class SessionLog:
    """Writes one session directory; ``event`` and ``save_image`` are thread-safe and never wait for the disk."""

    def __init__(self, directory: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._failures: dict[str, str] = {}  # what could not be written -> why (first failure each)
        self._drops: dict[str, _Drops] = {}  # why -> what was dropped for that reason
        self._used = 0  # bytes admitted for writing
        self._pending = 0  # bytes admitted but not yet written
        self._closed = False
        self._usable = True
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        try:
            (self.directory / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError) as error:  # ValueError: a path the OS cannot take (a NUL byte)
            self._usable = False
            self._failures["session directory"] = (f"cannot create {self.directory}: "
                                                   f"{_reason(error) if isinstance(error, OSError) else error}")
        self._writer = threading.Thread(target=self._write_queued, name="session-log-writer", daemon=True)
        self._writer.start()
        _OPEN_LOGS.add(self)

    @classmethod
    def create(cls, sessions_dir: str | Path, session_dir: str | Path | None = None, *,
               max_bytes: int = DEFAULT_MAX_BYTES) -> "SessionLog":
        """Open ``session_dir`` if given, else a new ``<timestamp>_<id>`` directory under ``sessions_dir``."""
        directory = Path(session_dir) if session_dir else Path(sessions_dir) / new_session_name()
        return cls(directory, max_bytes=max_bytes)

    # -- what the caller sees ----------------------------------------------------------------------

    @property
    def error(self) -> str:
        """One line saying what of the session was not written and why; "" when the log is complete."""
        with self._lock:
            parts = [f"{what}: {why}" for what, why in self._failures.items()]
            for why, drops in self._drops.items():
                parts.append(f"{drops.count} items ({drops.size} bytes: {', '.join(drops.examples)}"
                             f"{', ...' if drops.count > len(drops.examples) else ''}) not written: {why}")
        return ("the session log is incomplete: " + "; ".join(parts)) if parts else ""

    def event(self, kind: str, **fields: Any) -> None:
        """Append one trace event: bounded and serialised here, written by the writer thread in call order."""
        self._enqueue_event({"kind": kind, **fields}, EVENT)

    def save_image(self, name: str, png: bytes) -> str:
        """Queue ``images/<name>.png`` for writing and return its path relative to the session directory."""
        relative = f"{IMAGES_DIR}/{name}.png"
        if self._admit(relative, len(png), FILE, memory=True):
            self._queue.put(("file", relative, bytes(png)))
        return relative

    def save_inputs(self, frames: FrameSet) -> None:
        """Queue the question's frames for ``inputs/`` (what replay loads)."""
        size = sum(frame.rgb.nbytes + (frame.depth.nbytes if frame.depth is not None else 0)
                   for frame in frames.frames)
        if self._admit(f"{INPUTS_DIR}/ (replay needs it)", size, FILE, memory=False):
            self._queue.put(("inputs", frames))

    def write_result(self, result: dict) -> None:
        """Write ``result.json`` atomically (strict JSON, strings bounded); a failure is recorded in ``error``."""
        text = json_text(loggable_record(result, RESULT_TEXT_MAX_CHARS), indent=2) + "\n"
        data = text.encode("utf-8")
        if not self._admit(RESULT_FILE, len(data), END, memory=False):
            return
        try:
            write_atomically(self.directory / RESULT_FILE, data)
        except OSError as error:
            self._fail(RESULT_FILE, _reason(error))

    def finish(self, result: dict) -> str:
        """End the session: the trace's last events, the report, then ``result.json`` (each carrying the log's
        ``log_error`` as known then); returns the final ``error``."""
        from .report import write_report  # the report reads this module's trace format

        with self._lock:
            drops = {why: (item.count, item.size, list(item.examples)) for why, item in self._drops.items()}
        if drops:
            self._enqueue_event({"kind": DROPPED_KIND, "summary": {why: {"items": count, "bytes": size,
                                                                         "examples": examples}
                                                                   for why, (count, size, examples) in drops.items()}},
                                END)
        self._enqueue_event({"kind": "result", **result, "log_error": self.error}, END)
        self.close()
        if self._usable and TRACE_FILE not in self._failures:
            preview = json_text(loggable_record({**result, "log_error": self.error}, RESULT_TEXT_MAX_CHARS), indent=2)
            with self._lock:
                budget = self.max_bytes - self._used - 2 * len(preview.encode("utf-8"))
            try:
                size = write_report(self.directory, max_bytes=budget).stat().st_size
            except OSError as error:
                self._fail(REPORT_FILE, _reason(error))
            except Exception as error:  # the report is derived from the trace: its failure must not end the session
                self._fail(REPORT_FILE, f"not rendered: {type(error).__name__}: {error}")
            else:
                with self._lock:
                    self._take_locked(size, memory=False)
        if self._usable:
            self.write_result({**result, "log_error": self.error})
        return self.error

    def flush(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Wait until everything queued so far is written; False if the writer did not get there in time."""
        if self._closed:
            return not self._writer.is_alive()
        reached = threading.Event()
        self._queue.put(("sync", reached))
        return reached.wait(timeout_s)

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Write what is queued and stop the writer; later events are counted as dropped. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._writer.join(timeout_s)
        _OPEN_LOGS.discard(self)
        if self._writer.is_alive():
            self._fail(TRACE_FILE, f"the disk did not take the queued writes within {timeout_s:g} s; "
                                   "the trace may end early")

    # -- admission (caller's thread) ---------------------------------------------------------------

    def _enqueue_event(self, record: dict, tier: str) -> None:
        """Serialise ``record`` (with ``t``) and queue it, or queue a ``dropped`` note in its place."""
        if not self._usable:
            return
        t = round(time.monotonic() - self._start, 4)
        record = loggable_record({**record, "t": t}, RESULT_TEXT_MAX_CHARS if tier == END else TEXT_MAX_CHARS)
        data = (json_line(record) + "\n").encode("utf-8")
        kind = str(record.get("kind"))
        with self._lock:  # admission and queueing together, so the file keeps the call order
            why = self._admit_locked(f"{kind} event", len(data), tier, memory=True)
            if not why:
                self._queue.put(("line", data))
                return
        note = {"kind": DROPPED_KIND, "t": t, "dropped_kind": kind, "bytes": len(data), "reason": why}
        if isinstance(record.get("step"), int):
            note["step"] = record["step"]
        note_data = (json_line(note) + "\n").encode("utf-8")
        with self._lock:
            if not self._closed and self._fits_locked(len(note_data), tier, memory=True):
                self._take_locked(len(note_data), memory=True)
                self._queue.put(("line", note_data))

    def _admit(self, name: str, size: int, tier: str, *, memory: bool) -> bool:
        """Whether ``name`` may be written (its bytes are then taken from the budget)."""
        with self._lock:
            return not self._admit_locked(name, size, tier, memory=memory)

    def _admit_locked(self, name: str, size: int, tier: str, *, memory: bool) -> str:
        """Take ``size`` bytes of ``tier``'s budget for ``name`` and return ""; or count it as dropped and say why.
        ``memory``: the item waits in the queue as bytes (bounded by PENDING_MAX_BYTES)."""
        if not self._usable:
            return "the session directory is unusable"
        why = ""
        if self._closed and tier != END:
            why = "the session log was already closed"
        elif not self._fits_locked(size, tier, memory=False):
            why = f"the session size cap of {self.max_bytes / MB:g} MB (agent.session_max_mb) was reached"
        elif not self._fits_locked(size, tier, memory=memory):
            why = f"the disk fell {PENDING_MAX_BYTES // MB} MB behind (writes are dropped, never waited for)"
        if why:
            self._drops.setdefault(why, _Drops()).add(name, size)
            return why
        self._take_locked(size, memory=memory)
        return ""

    def _fits_locked(self, size: int, tier: str, *, memory: bool) -> bool:
        quarter = self.max_bytes // 4
        limit = {END: self.max_bytes, EVENT: self.max_bytes - END_RESERVE_BYTES - quarter,
                 FILE: self.max_bytes - END_RESERVE_BYTES - 2 * quarter}[tier]
        if self._used + size > limit:
            return False
        return not memory or tier == END or self._pending + size <= PENDING_MAX_BYTES

    def _take_locked(self, size: int, *, memory: bool) -> None:
        self._used += size
        if memory:
            self._pending += size

    def _fail(self, what: str, why: str) -> None:
        """Record that ``what`` could not be written and why (the first failure of each ``what`` is kept)."""
        with self._lock:
            self._failures.setdefault(what, why)

    # -- the writer thread -------------------------------------------------------------------------

    def _write_queued(self) -> None:
        """Write queued items in order until the stop item; a failed write is recorded, never raised."""
        trace = None
        while True:
            item = self._queue.get()
            if item is None:
                break
            try:
                trace = self._write_item(item, trace)
            except Exception as error:  # a bug here must not stop the writer: later items still go out
                self._fail("session log writer", f"{type(error).__name__}: {error}")
            if item[0] in ("line", "file"):
                with self._lock:
                    self._pending -= len(item[-1])
        if trace is not None:
            with contextlib.suppress(OSError):
                trace.close()

    def _write_item(self, item: tuple, trace):
        """Write one queued item; returns the trace file (opened on its first line)."""
        what = item[0]
        if what == "sync":
            item[1].set()
        elif what == "line":
            trace = self._append_line(trace, item[1])
        elif what == "file":
            self._write_file(item[1], item[2])
        elif what == "inputs":
            try:
                item[1].save(self.directory / INPUTS_DIR)
            except OSError as error:
                self._fail(f"{INPUTS_DIR}/", f"{_reason(error)} (replay needs it)")
                shutil.rmtree(self.directory / INPUTS_DIR, ignore_errors=True)  # no half-written frames
        return trace

    def _append_line(self, trace, data: bytes):
        """Append ``data`` to the trace (opened on first use); after a failure the trace takes no more lines,
        so a torn line can only be its last."""
        if TRACE_FILE in self._failures:
            return trace
        try:
            if trace is None:
                trace = open(self.directory / TRACE_FILE, "ab", buffering=0)
            view = memoryview(data)
            while view:
                view = view[trace.write(view):]
        except OSError as error:
            self._fail(TRACE_FILE, f"{_reason(error)} (this event and all later ones were not written)")
        return trace

    def _write_file(self, relative: str, data: bytes) -> None:
        """Write one image; a partly written one is removed."""
        path = self.directory / relative
        try:
            path.write_bytes(data)
        except OSError as error:
            self._fail(f"{IMAGES_DIR}/", f"{relative}: {_reason(error)}")
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)


@atexit.register
def _close_open_logs() -> None:
    """At interpreter exit (a crash included) write what open logs still hold queued."""
    for log in list(_OPEN_LOGS):
        log.close()


def read_trace(directory: str | Path) -> list[dict]:
    """The events of a session's ``trace.jsonl``, in order; lines end at ``\\n`` only, whatever the text holds,
    and a last line cut short by a failed write is left out."""
    path = Path(directory) / TRACE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a session directory: {TRACE_FILE} is missing")
    lines = path.read_bytes().split(b"\n")
    events = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line.decode("utf-8")))
        except ValueError:
            if number == len(lines) - 1:  # no newline after it: the write that failed
                break
            raise ValueError(f"{path}: line {number + 1} is not JSON") from None
    return events

