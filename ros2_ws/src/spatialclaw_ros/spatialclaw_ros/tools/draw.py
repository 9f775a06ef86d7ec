"""``tools.Draw``: annotate an image with boxes, lines and points, always on a new copy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.colors import to_rgb
from PIL import Image, ImageDraw

from ..imaging import to_rgb_array
from .shared import Shared

if TYPE_CHECKING:
    from . import ToolContext

#: Colours of successive primitives when none are given.
PALETTE = ("red", "lime", "blue", "orange", "magenta", "cyan", "yellow", "white")


def new_canvas(image) -> Image.Image:
    """A fresh RGB PIL copy of a PIL image, FrameImage, VisualFeedback or array; the caller's image is never modified."""
    return Image.fromarray(to_rgb_array(image).copy())


def _rgb(colour) -> tuple[int, int, int]:
    """(r, g, b) 0-255 of a CSS / matplotlib colour name or an RGB triple (0-255, or floats in [0, 1])."""
    if isinstance(colour, str):
        return tuple(int(round(255 * c)) for c in to_rgb(colour))
    values = np.asarray(colour, dtype=float).ravel()
    if values.size != 3:
        raise ValueError(f"a colour is a name such as 'red' or an (r, g, b) triple, got {colour!r}")
    scale = 255.0 if values.max() <= 1.0 and np.issubdtype(np.asarray(colour).dtype, np.floating) else 1.0
    return tuple(int(round(v)) for v in np.clip(values * scale, 0, 255))


def _colours(colors, count: int) -> list[tuple[int, int, int]]:
    """One colour per primitive: the palette, one colour for all, or a list with one each (ValueError otherwise)."""
    if colors is None:
        return [_rgb(PALETTE[n % len(PALETTE)]) for n in range(count)]
    one = isinstance(colors, str) or (len(colors) == 3 and all(isinstance(c, (int, float, np.number)) for c in colors))
    if one:
        return [_rgb(colors)] * count
    colours = list(colors)
    if len(colours) != count:
        raise ValueError(f"{len(colours)} colors for {count} primitives: give one colour, or one per primitive")
    return [_rgb(c) for c in colours]


def _primitives(values, size: int, what: str) -> np.ndarray:
    """(N, size) float array from one primitive of ``size`` numbers or a list of them."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 1 and array.size == size:
        return array[None]
    if array.ndim == 2 and array.shape[1] == size:
        return array
    raise ValueError(f"{what} must be one [{', '.join(['...'] * size)}] of {size} numbers or a list of them, "
                     f"got shape {array.shape}")


def _lines(lines) -> list[np.ndarray]:
    """Polylines (K >= 2, 2): from [x1, y1, x2, y2], [[x1, y1], [x2, y2], ...], or a list of either."""
    array = np.asarray(lines, dtype=float)
    if array.ndim == 1 and array.size == 4:
        return [array.reshape(2, 2)]
    if array.ndim == 2 and array.shape[1] == 4:
        return [row.reshape(2, 2) for row in array]
    if array.ndim == 2 and array.shape[1] == 2 and len(array) >= 2:
        return [array]
    if array.ndim == 3 and array.shape[2] == 2:
        return list(array)
    raise ValueError(f"a line is [x1, y1, x2, y2] or [[x1, y1], [x2, y2]] (or a list of lines), got shape {array.shape}")


def _labels(labels, count: int) -> list[str | None]:
    if labels is None:
        return [None] * count
    names = [labels] if isinstance(labels, str) else [str(n) for n in labels]
    if len(names) != count:
        raise ValueError(f"{len(names)} labels for {count} primitives")
    return names


def _default_width(canvas: Image.Image, share: float, least: int) -> int:
    return max(least, int(round(max(canvas.size) * share)))


class Draw(Shared):
    """Drawing in pixels on an image (array, PIL, FrameImage, VisualFeedback) -> a NEW PIL image. One primitive
    or a list; colors: a name or (r, g, b) for all, or one per primitive."""

    def __init__(self, context: ToolContext) -> None:
        self._context = context

    def draw_bbox(self, image, bboxes, colors=None, thickness: int | None = None, *, labels=None) -> Image.Image:
        """Rectangles [x1, y1, x2, y2], optionally labelled."""
        boxes = _primitives(bboxes, 4, "bboxes")
        bad = [box.tolist() for box in boxes if box[2] < box[0] or box[3] < box[1]]
        if bad:
            raise ValueError(f"a box is [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2, got {bad[0]}")
        canvas = new_canvas(image)
        pen = ImageDraw.Draw(canvas)
        width = thickness or _default_width(canvas, 1 / 250, 2)
        for box, colour, label in zip(boxes, _colours(colors, len(boxes)), _labels(labels, len(boxes))):
            pen.rectangle(tuple(box), outline=colour, width=int(width))
            if label:
                pen.text((box[0] + 2, max(0.0, box[1] - 12)), label, fill=colour)
        return canvas

    def draw_line(self, image, lines, colors=None, thickness: int | None = None) -> Image.Image:
        """Lines [x1, y1, x2, y2] or [[x1, y1], [x2, y2], ...] (a polyline)."""
        polylines = _lines(lines)
        canvas = new_canvas(image)
        pen = ImageDraw.Draw(canvas)
        width = thickness or _default_width(canvas, 1 / 250, 2)
        for line, colour in zip(polylines, _colours(colors, len(polylines))):
            pen.line([tuple(p) for p in line], fill=colour, width=int(width))
        return canvas

    def draw_point(self, image, points, colors=None, radius: int | None = None, *, labels=None) -> Image.Image:
        """Filled discs at [x, y], optionally labelled."""
        centres = _primitives(points, 2, "points")
        canvas = new_canvas(image)
        pen = ImageDraw.Draw(canvas)
        r = radius or _default_width(canvas, 1 / 120, 3)
        for (x, y), colour, label in zip(centres, _colours(colors, len(centres)), _labels(labels, len(centres))):
            pen.ellipse((x - r, y - r, x + r, y + r), fill=colour)
            if label:
                pen.text((x + r + 2, y - r), label, fill=colour)
        return canvas
