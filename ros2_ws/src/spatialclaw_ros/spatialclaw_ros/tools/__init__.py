"""The ``tools`` object the agent's code sees in the kernel, and the catalogue its prompt is built from."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..frames import FrameSet
from ..kernel.host import HostClient
from ..perception.backends import BackendChoice
from .draw import Draw
from .geometry import Geometry
from .graph import Graph
from .mask import Mask
from .reconstruct import Reconstruct
from .sam3 import SAM3
from .shared import Shared
from .timing import Time

#: Namespaces under ``tools.``, in the order the prompt documents them.
TOOL_CLASSES: dict[str, type] = {
    "Reconstruct": Reconstruct,
    "SAM3": SAM3,
    "Geometry": Geometry,
    "Mask": Mask,
    "Time": Time,
    "Graph": Graph,
    "Draw": Draw,
}


@dataclass
class ToolContext:
    """What every tool namespace is built with inside the kernel."""

    frames: FrameSet
    host: HostClient | None
    backends: BackendChoice = field(default_factory=BackendChoice)


class Toolbox(Shared):
    """``tools``: one attribute per namespace in TOOL_CLASSES (importable: ``import tools``, ``from tools import SAM3``)."""

    def __init__(self, context: ToolContext) -> None:
        for name, cls in TOOL_CLASSES.items():
            setattr(self, name, cls(context))

    def __repr__(self) -> str:
        return "tools(" + ", ".join(TOOL_CLASSES) + ")"


def build_toolbox(frames: FrameSet, host: HostClient | None, backends: BackendChoice = BackendChoice()) -> Toolbox:
    """The ``tools`` object for one question's frames on ``backends``; ``host`` reaches the parent for model-backed
    tools."""
    return Toolbox(ToolContext(frames=frames, host=host, backends=backends))
