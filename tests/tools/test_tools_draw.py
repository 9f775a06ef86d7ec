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
    out = draw.draw_bbox(original, [10, 5, 30, 20], colors="red", thickness=1, labels="cup")
    assert isinstance(out, Image.Image) and out.size == (50, 40)
    pixels = np.asarray(out)
    assert tuple(pixels[5, 20]) == RED and tuple(pixels[20, 10]) == RED  # top edge, bottom-left corner
    assert tuple(pixels[12, 20]) == (0, 0, 0)  # inside stays untouched
    assert not original.any()
    with pytest.raises(ValueError, match="x1 <= x2"):
        draw.draw_bbox(original, [30, 5, 10, 20])


def test_line_and_point_leave_the_input_alone(draw):
    source = Image.new("RGB", (30, 30), "white")
    line = draw.draw_line(source, [0, 15, 29, 15], colors="blue", thickness=1)
    assert (np.asarray(line)[15] == (0, 0, 255)).all()
    dot = draw.draw_point(source, (10, 20), colors=(1.0, 0.0, 0.0), radius=3)
    assert tuple(np.asarray(dot)[20, 10]) == RED and tuple(np.asarray(dot)[20, 20]) == (255, 255, 255)
    assert line is not source and dot is not source
    assert (np.asarray(source) == 255).all()


def test_lists_of_primitives_take_one_colour_each_or_one_for_all(draw):
    canvas = np.zeros((40, 40, 3), np.uint8)
    two = draw.draw_point(canvas, [[5, 5], [30, 30]], colors=["lime", (0, 0, 255)], radius=2)
    assert tuple(np.asarray(two)[5, 5]) == (0, 255, 0) and tuple(np.asarray(two)[30, 30]) == (0, 0, 255)
    same = draw.draw_line(canvas, [[[0, 10], [39, 10]], [[0, 20], [39, 20]]], colors="tab:orange", thickness=1)
    assert tuple(np.asarray(same)[10, 20]) == tuple(np.asarray(same)[20, 20]) == (255, 127, 14)
    default = draw.draw_bbox(canvas, [[2, 2, 10, 10], [20, 20, 30, 30]], thickness=1)
    assert tuple(np.asarray(default)[2, 5]) != tuple(np.asarray(default)[20, 25])  # a different colour each
    with pytest.raises(ValueError, match="3 colors for 2 primitives"):
        draw.draw_point(canvas, [[5, 5], [30, 30]], colors=["red", "blue", "lime"])
    with pytest.raises(ValueError, match="a line is"):
        draw.draw_line(canvas, [1, 2, 3])
