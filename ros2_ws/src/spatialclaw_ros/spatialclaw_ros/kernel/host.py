"""Calls from the sandboxed kernel to its parent (``vlm.*``, ``ReturnAnswer``, heavy perception).

The kernel never holds the model's API key or the GPU models; code in it asks the parent through
the typed channel and blocks for the reply. A handler raising ``HostError`` makes the call raise
``RuntimeError`` with the same message inside the cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

#: The host service ``ReturnAnswer`` calls; an accepted reply ``{"accepted": True, "answer": {...}}`` ends the cell.
ANSWER_SERVICE = "answer"


@dataclass
class HostRequest:
    service: str  # e.g. "vlm.locate", "vlm.ask_with_thinking", ANSWER_SERVICE
    payload: dict  # JSON-safe
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class HostReply:
    payload: dict  # JSON-safe
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


class HostError(Exception):
    """A host service refused or failed; the message is shown to the agent's code."""


HostHandler = Callable[[HostRequest], HostReply]


class HostClient:
    """Kernel-side handle for host calls; the kernel worker provides the implementation."""

    def call(self, service: str, payload: dict, arrays: dict[str, np.ndarray] | None = None) -> HostReply:
        """Send a request to the parent and block until it replies; raises RuntimeError on HostError."""
        raise NotImplementedError
