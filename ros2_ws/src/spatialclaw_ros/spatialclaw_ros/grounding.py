"""Reading a grounding model's answer (``vlm.locate``): "Not visible", or a point or box on the 0-1000 scale.

Shared by the kernel's ``vlm.locate`` result, ``tools.Geometry.normalized_to_pixel`` and the parent's vlm
service, so every reader takes the same numbers from the same text. Pure text and arithmetic: no package imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

NOT_VISIBLE = "Not visible"
#: Grounding coordinates run from 0 (left / top edge) to SCALE (right / bottom edge), x before y.
SCALE = 1000.0

_NOT_VISIBLE = re.compile(r"\bnot\s+visible\b", re.IGNORECASE)
#: A number not glued to a word, so names such as "bbox_2d", "x1" or "chair_1" give none.
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


@dataclass(frozen=True)
class Grounding:
    """What an answer says: ``visible`` (it does not say "not visible") and every number in it (0-1000 scale)."""

    visible: bool
    numbers: tuple[float, ...]

    @property
    def box(self) -> tuple[float, float, float, float] | None:
        """(x1, y1, x2, y2) when the answer is exactly four numbers and the thing is visible, else None."""
        if not self.visible or len(self.numbers) != 4:
            return None
        x1, y1, x2, y2 = self.numbers
        return (x1, y1, x2, y2)

    @property
    def point(self) -> tuple[float, float] | None:
        """(x, y) when the answer is exactly two numbers, the centre of ``box`` when it is four, else None."""
        if self.box is not None:
            x1, y1, x2, y2 = self.box
            return ((x1 + x2) / 2.0, (y1 + y2) / 2.0)
        if not self.visible or len(self.numbers) != 2:
            return None
        x, y = self.numbers
        return (x, y)


def read_grounding(text: str) -> Grounding:
    """The numbers and the visibility verdict of a grounding answer (thinking already stripped)."""
    return Grounding(visible=not _NOT_VISIBLE.search(text),
                     numbers=tuple(float(n) for n in _NUMBER.findall(text)))


def to_pixels(coords, width: float, height: float) -> np.ndarray:
    """0-1000 coordinates, x and y alternating (a point, a box, or a list of them), as pixels of a width x height
    image; same shape, no rounding or clamping. ValueError for an odd count."""
    array = np.asarray(coords, dtype=float)
    if array.size % 2:
        raise ValueError(f"expected x, y pairs (a point [x, y] or a box [x1, y1, x2, y2]), got {array.size} numbers")
    return (array.reshape(-1, 2) * [width / SCALE, height / SCALE]).reshape(array.shape)
