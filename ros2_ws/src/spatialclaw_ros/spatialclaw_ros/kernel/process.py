"""Parent side of one kernel worker: spawn with a clean environment, read its messages, stop it.

The worker gets its own scratch dir (its HOME, TMPDIR and only writable place), a socketpair end
as its channel, and an environment built from nothing: no API keys or other parent variables.
A reader thread turns the channel into a queue of events, so the parent never blocks on a
worker that sends half a message, and notices a dead worker at once (end of file).
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from ..config import KernelConfig
from . import protocol
from .layers import EXIT_SANDBOX_MISSING, SandboxLayer, SandboxPolicy

READY_TIMEOUT_S = 120.0  # imports + sandbox on a cold, busy machine
LOG_NAME = "worker.log"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "OPENCV_FOR_THREADS_NUM")


_live_workers: "weakref.WeakSet[WorkerProcess]" = weakref.WeakSet()


@atexit.register
def _close_live_workers() -> None:
    """At interpreter exit, stop workers whose pool or session was never closed (and drop their scratch)."""
    for worker in list(_live_workers):
        worker.close()


class SandboxUnavailable(RuntimeError):
    """A required OS sandbox layer could not be applied; the message names it, why, and the setting to change."""


@dataclass
class Event:
    """Something the session loop reacts to: a worker message, the channel closing, a host reply ready."""

    kind: str  # "message", "closed" or "host_done"
    message: protocol.Message | None = None
    detail: object = None


def package_root() -> str:
    """The directory that holds the ``spatialclaw_ros`` package (the worker's PYTHONPATH)."""
    return str(Path(__file__).resolve().parents[2])


def worker_environment(scratch: Path) -> dict[str, str]:
    """The complete environment of a worker: nothing is inherited from the parent."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "LANG": "C.UTF-8",
        "PYTHONPATH": package_root(),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(scratch),
    }
    env.update({name: "1" for name in THREAD_VARIABLES})
    return env


def signal_description(returncode: int | None) -> str:
    """'killed by SIGSEGV', 'exited with status 1' or 'still running'."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with status {returncode}"


class WorkerProcess:
    """One started kernel worker: its process, scratch dir, channel and event queue."""

    def __init__(self, config: KernelConfig) -> None:
        self.config = config
        self.scratch = Path(tempfile.mkdtemp(prefix="spatialclaw-kernel-")).resolve()
        self.events: queue.Queue[Event] = queue.Queue()
        self.layers: list[SandboxLayer] = []  # from its ready message
        self.rlimits: dict[str, int] = {}
        self.closed = False
        self._close_lock = threading.Lock()
        limits = {"memory_mb": config.memory_limit_mb, "cpu_s": config.cpu_limit_s,
                  "file_size_mb": config.file_size_limit_mb}
        parent_end, child_end = socket.socketpair()
        command = [sys.executable, "-m", "spatialclaw_ros.kernel.worker", "--fd", str(child_end.fileno()),
                   "--scratch", str(self.scratch), "--limits", json.dumps(limits)]
        if config.os_sandbox:
            policy = SandboxPolicy(config.sandbox_uid, tuple(config.optional_layers)).to_json()
            command = [sys.executable, "-m", "spatialclaw_ros.kernel.launcher", "--policy", policy, "--",
                       *command, "--policy", policy]
        with open(self.scratch / LOG_NAME, "wb") as log:
            self.proc = subprocess.Popen(
                command, env=worker_environment(self.scratch), cwd=self.scratch, pass_fds=[child_end.fileno()],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        child_end.close()
        self._conn = Connection(parent_end.detach())
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"kernel-reader-{self.proc.pid}", daemon=True)
        self._reader.start()
        _live_workers.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        """Reader thread: every frame becomes an event; any failure ends the channel."""
        while True:
            try:
                message = protocol.receive(self._conn)
            except (EOFError, OSError):
                self.events.put(Event("closed", detail="channel closed"))
                return
            except protocol.ProtocolError as exc:
                self.kill()
                self.events.put(Event("closed", detail=f"protocol error: {exc}"))
                return
            self.events.put(Event("message", message))

    def wait_for(self, message_type: str, timeout_s: float) -> protocol.Message:
        """Block for the next message, which must be ``message_type``; RuntimeError otherwise."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise RuntimeError(f"kernel worker sent no '{message_type}' within {timeout_s:.0f} s{self.log_tail()}")
            try:
                event = self.events.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if event.kind == "closed":
                how = self.describe_exit()
                if self.proc.returncode == EXIT_SANDBOX_MISSING:
                    raise SandboxUnavailable(self.log_tail(lines=1, heading=""))
                raise RuntimeError(f"kernel worker {how} before '{message_type}'{self.log_tail()}")
            if event.kind == "message" and event.message.type == message_type:
                return event.message
            if event.kind == "message" and event.message.type == "init_error":
                raise RuntimeError(f"kernel worker could not start the question: {event.message.header.get('error')}")

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until the worker has imported everything and sandboxed itself; keep its layers' status."""
        report = self.wait_for("ready", timeout_s).header["sandbox"]
        self.layers = [SandboxLayer.from_json(layer) for layer in report["layers"]]
        self.rlimits = dict(report["rlimits"])

    def send(self, header: dict, arrays: dict[str, np.ndarray] | None = None,
             blobs: dict[str, bytes] | None = None) -> None:
        """Send one message; a dead worker is ignored here (its reader reports the closing)."""
        self.send_frame(protocol.encode(header, arrays, blobs))

    def send_frame(self, frame: bytes) -> None:
        """Send an already encoded message (see ``send``)."""
        with self._send_lock:
            try:
                self._conn.send_bytes(frame)
            except OSError:
                pass

    def alive(self) -> bool:
        return self.proc.poll() is None

    def interrupt(self) -> None:
        """SIGINT: the running cell gets KeyboardInterrupt."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.alive():
            self.proc.kill()
        self.proc.wait()

    def describe_exit(self, wait_s: float = 1.0) -> str:
        """How the process ended, waiting up to ``wait_s`` for it to finish dying."""
        try:
            self.proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            pass
        return signal_description(self.proc.poll())

    def log_tail(self, lines: int = 8, heading: str = "\nkernel log:\n") -> str:
        """The last lines of the worker's own stdout/stderr (import errors, fatal signals), for messages."""
        try:
            text = (self.scratch / LOG_NAME).read_text(errors="replace").strip()
        except OSError:
            return ""
        return (heading + "\n".join(text.split("\n")[-lines:])) if text else ""

    def close(self) -> None:
        """Kill the process, close the channel and delete the scratch dir (idempotent, thread-safe)."""
        with self._close_lock:
            if self.closed:
                return
            self.closed = True
        _live_workers.discard(self)
        self.kill()
        self._reader.join(timeout=2.0)  # it sees end of file once the process is gone
        self._conn.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
