"""The persistent, sandboxed Python kernel that runs the agent's cells (one process per question).

Parent side: ``KernelPool`` keeps sandboxed workers warm; ``KernelPool.session`` gives a question
its own ``KernelSession``, whose ``execute`` runs one cell and returns a ``CellResult``.
"""

from .pool import KernelPool
from .session import KernelSession

__all__ = ["KernelPool", "KernelSession"]
