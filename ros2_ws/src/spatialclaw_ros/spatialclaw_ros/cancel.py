"""Cooperative cancellation shared by the agent loop, the model client and the kernel."""

from __future__ import annotations

import threading


class Cancelled(Exception):
    """Raised where a running question notices that it was cancelled."""


class CancelToken:
    """A thread-safe flag that any thread may set; waiters wake at once."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        """Request cancellation; idempotent, the first reason wins."""
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block up to ``timeout`` seconds; True once cancelled."""
        return self._event.wait(timeout)

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)
