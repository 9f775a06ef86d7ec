"""tools.Draw: annotations land where asked, on a new image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from tool_scenes import make_context

from spatialclaw_ros.tools.draw import Draw

RED = (255, 0, 0)


@pytest.fixture
def draw() -> Draw:
    return Draw(make_context())


def test_bbox_on_a_new_image(draw):
    original = np.zeros((40, 50, 3), np.uint8)
    out = draw.draw_bbox(original, [10, 5, 30, 20], width=1, label="cup")
    assert isinstance(out, Image.Image) and out.size == (50, 40)
    pixels = np.asarray(out)
    assert tuple(pixels[5, 20]) == RED and tuple(pixels[20, 10]) == RED  # top edge, bottom-left corner
    assert tuple(pixels[12, 20]) == (0, 0, 0)  # inside stays untouched
    assert not original.any()
    with pytest.raises(ValueError, match="x1 <= x2"):
        draw.draw_bbox(original, [30, 5, 10, 20])


def test_line_and_point_leave_the_input_alone(draw):
    source = Image.new("RGB", (30, 30), "white")
    line = draw.draw_line(source, (0, 15), (29, 15), color="blue", width=1)
    assert (np.asarray(line)[15] == (0, 0, 255)).all()
    dot = draw.draw_point(source, (10, 20), radius=3)
    assert tuple(np.asarray(dot)[20, 10]) == RED and tuple(np.asarray(dot)[20, 20]) == (255, 255, 255)
    assert line is not source and dot is not source
    assert (np.asarray(source) == 255).all()
