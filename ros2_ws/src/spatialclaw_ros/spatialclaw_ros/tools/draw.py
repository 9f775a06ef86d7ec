"""``tools.Draw``: annotate an image with boxes, lines and points, always on a new copy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image, ImageDraw

from ..imaging import to_rgb_array

if TYPE_CHECKING:
    from . import ToolContext


def new_canvas(image) -> Image.Image:
    """A fresh RGB PIL copy of a PIL image or array, so the caller's image is never modified."""
    return Image.fromarray(to_rgb_array(image).copy())


class Draw:
    """Drawing in pixels (x = column, y = row); each call returns a NEW PIL image."""

    def __init__(self, context: ToolContext) -> None:
        self._context = context

    def draw_bbox(self, image, bbox, color="red", width: int = 3, label: str | None = None) -> Image.Image:
        """Rectangle bbox = [x1, y1, x2, y2], optional label."""
        x1, y1, x2, y2 = (float(v) for v in bbox)
        if x2 < x1 or y2 < y1:
            raise ValueError(f"bbox must be [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2, got {list(bbox)}")
        canvas = new_canvas(image)
        pen = ImageDraw.Draw(canvas)
        pen.rectangle((x1, y1, x2, y2), outline=color, width=width)
        if label:
            pen.text((x1 + 2, max(0.0, y1 - 12)), str(label), fill=color)
        return canvas

    def draw_line(self, image, p1, p2, color="red", width: int = 3) -> Image.Image:
        """Line from p1 = (x, y) to p2."""
        canvas = new_canvas(image)
        ImageDraw.Draw(canvas).line((tuple(map(float, p1)), tuple(map(float, p2))), fill=color, width=width)
        return canvas

    def draw_point(self, image, point, color="red", radius: int = 5, label: str | None = None) -> Image.Image:
        """Filled disc at point = (x, y), optional label."""
        x, y = (float(v) for v in point)
        canvas = new_canvas(image)
        pen = ImageDraw.Draw(canvas)
        pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color)
        if label:
            pen.text((x + radius + 2, y - radius), str(label), fill=color)
        return canvas
