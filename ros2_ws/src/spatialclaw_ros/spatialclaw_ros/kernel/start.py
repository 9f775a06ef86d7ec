"""The parent's first message to a fresh worker: what the question's namespace is built from.

The frames themselves are files in the worker's scratch dir (``FrameSet.save``); this message names the
rest explicitly, so nothing travels as a hidden convention inside the frames' metadata.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..perception.backends import BackendChoice

INIT = "init"


@dataclass(frozen=True)
class KernelInit:
    """``init``: the long side of shown images and the perception backends of the question's tools."""

    image_max_side: int
    backends: BackendChoice = BackendChoice()

    def header(self) -> dict:
        """The message header sent over the channel."""
        return {"type": INIT, "image_max_side": self.image_max_side, "backends": dataclasses.asdict(self.backends)}

    @classmethod
    def from_header(cls, header: dict) -> "KernelInit":
        """Rebuild the message the parent sent."""
        return cls(int(header["image_max_side"]), BackendChoice(**header["backends"]))
