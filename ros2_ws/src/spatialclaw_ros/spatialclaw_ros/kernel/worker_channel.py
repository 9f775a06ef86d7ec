"""The worker's end of the channel: typed sends, interrupt-safe receives and host calls."""

from __future__ import annotations

import itertools
import signal
from contextlib import contextmanager
from multiprocessing.connection import Connection

import numpy as np

from . import protocol
from .host import HostClient, HostReply


@contextmanager
def _sigint_deferred():
    """Hold SIGINT back while a frame is being read, so an interrupt never splits a message."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


class WorkerChannel(HostClient):
    """Sends results, images and host requests to the parent; ``call`` blocks for the matching reply."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._ids = itertools.count(1)

    def send(self, header: dict, arrays: dict[str, np.ndarray] | None = None,
             blobs: dict[str, bytes] | None = None) -> None:
        """Send one message; SIGINT is held back so the frame is never cut in half."""
        with _sigint_deferred():
            protocol.send(self._conn, header, arrays, blobs)

    def receive(self) -> protocol.Message:
        """Wait for the next message; an interrupt may arrive while waiting but not while reading."""
        self._conn.poll(None)
        with _sigint_deferred():
            return protocol.receive(self._conn)

    def call(self, service: str, payload: dict, arrays: dict[str, np.ndarray] | None = None) -> HostReply:
        """Ask the parent's ``service`` and block for its reply; replies to abandoned calls are skipped."""
        request_id = next(self._ids)
        self.send({"type": "host_request", "id": request_id, "service": service, "payload": payload}, arrays)
        while True:
            message = self.receive()
            if message.type != "host_reply" or message.header.get("id") != request_id:
                continue
            if not message.header.get("ok"):
                raise RuntimeError(message.header.get("error") or f"host service '{service}' failed")
            return HostReply(payload=message.header.get("payload", {}), arrays=message.arrays)
