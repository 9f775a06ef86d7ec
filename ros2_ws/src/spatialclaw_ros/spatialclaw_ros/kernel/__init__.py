"""The persistent, sandboxed Python kernel that runs the agent's cells (one process per question).

Parent side: ``KernelPool`` keeps sandboxed workers warm; ``KernelPool.session`` gives a question
its own ``KernelSession``, whose ``execute`` runs one cell and returns a ``CellResult``. They are
imported on first use, so a kernel process's launcher and the host-call types load nothing heavy.
"""

from __future__ import annotations

import importlib

__all__ = ["KernelPool", "KernelSession"]
_HOMES = {"KernelPool": ".pool", "KernelSession": ".session"}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
