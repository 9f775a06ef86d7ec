"""A pool of warm kernel workers: imports done and sandbox applied before a question arrives.

Every session takes a fresh worker and never gives it back (no state crosses questions); a
replacement starts in the background at once, so ``config.pool_size`` workers stay ready.
"""

from __future__ import annotations

import threading
import weakref

from ..config import KernelConfig
from ..frames import FrameSet
from ..perception.backends import BackendChoice
from .host import HostHandler
from .layers import SandboxLayer
from .process import WorkerProcess
from .session import KernelSession
from .start import KernelInit


class KernelPool:
    """Keeps ``config.pool_size`` sandboxed workers ready and hands one to each new session."""

    def __init__(self, config: KernelConfig) -> None:
        self.config = config
        self._ready: list[WorkerProcess] = []
        self._starting = 0  # requested and not ready yet
        self._queued = 0  # requested and not begun
        self._failure = ""
        self._closed = False
        self._spawning: WorkerProcess | None = None
        self._layers: list[SandboxLayer] = []  # of the newest worker that became ready
        self._changed = threading.Condition()
        self._sessions: weakref.WeakSet[KernelSession] = weakref.WeakSet()
        # One long-lived thread starts every worker: a worker's PR_SET_PDEATHSIG fires when the
        # thread that spawned it ends, so that thread lives exactly as long as the pool.
        self._spawner = threading.Thread(target=self._spawn_loop, name="kernel-spawner", daemon=True)
        self._spawner.start()
        with self._changed:
            self._top_up()

    def _top_up(self) -> None:
        """Request workers until ready + starting reaches pool_size (caller holds the lock)."""
        while not self._closed and len(self._ready) + self._starting < self.config.pool_size:
            self._start_one()

    def _start_one(self) -> None:
        """Ask the spawner thread for one more worker (caller holds the lock)."""
        self._starting += 1
        self._queued += 1
        self._changed.notify_all()

    def _spawn_loop(self) -> None:
        """Spawner thread: start requested workers one at a time and wait until each is ready."""
        while True:
            with self._changed:
                while not self._closed and not self._queued:
                    self._changed.wait()
                if self._closed:
                    return
                self._queued -= 1
            worker, failure = None, ""
            try:
                worker = WorkerProcess(self.config)
                with self._changed:
                    self._spawning = worker  # close() stops it rather than waiting for it
                    if self._closed:
                        raise RuntimeError("the kernel pool is closed")
                worker.wait_ready()
            except Exception as exc:
                failure = str(exc)
                if worker is not None:
                    worker.close()
                worker = None
            with self._changed:
                self._spawning = None
                self._starting -= 1
                if worker is not None and self._closed:
                    worker.close()
                elif worker is not None:
                    self._ready.append(worker)
                    self._layers = worker.layers
                else:
                    self._failure = failure
                self._changed.notify_all()

    def acquire(self) -> WorkerProcess:
        """Take a ready worker (waiting for one that is starting); RuntimeError if none can start."""
        with self._changed:
            self._failure = ""
            if not self._ready and not self._starting:
                self._start_one()
            while not self._ready:
                if self._closed:
                    raise RuntimeError("the kernel pool is closed")
                if self._failure and not self._starting:
                    raise RuntimeError(f"could not start a kernel worker: {self._failure}")
                self._changed.wait()
            worker = self._ready.pop(0)
            self._top_up()
        if not worker.alive():
            worker.close()
            return self.acquire()
        return worker

    def session(self, frames: FrameSet, handlers: dict[str, HostHandler], *, image_max_side: int = 1024,
                backends: BackendChoice = BackendChoice()) -> KernelSession:
        """A new session for one question on a fresh worker, its tools on ``backends``; close it (or use ``with``)."""
        init = KernelInit(image_max_side, backends)
        session = KernelSession(self, self.acquire(), frames, handlers, init)
        with self._changed:
            self._sessions.add(session)
        return session

    def sandbox_layers(self) -> list[SandboxLayer]:
        """The OS sandbox layers of the newest worker that started (empty before one has, or with no OS sandbox)."""
        with self._changed:
            return list(self._layers)

    def forget(self, session: KernelSession) -> None:
        """Called by a session when it closes."""
        with self._changed:
            self._sessions.discard(session)

    def close(self) -> None:
        """Close every open session, stop the idle and starting workers and the spawner thread."""
        with self._changed:
            self._closed = True
            idle, self._ready = self._ready, []
            if self._spawning is not None:
                idle.append(self._spawning)
            sessions = list(self._sessions)
            self._changed.notify_all()
        for session in sessions:
            session.close()
        for worker in idle:
            worker.close()
        if self._spawner is not threading.current_thread():
            self._spawner.join(timeout=5.0)

    def __enter__(self) -> "KernelPool":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
