"""Bird's-eye view: renders objects, boxes and cameras with a sensible scale bar."""

from __future__ import annotations

import numpy as np
import pytest
from tool_scenes import blank_frame, box_surface, level_camera, make_context

from spatialclaw_ros.tools.bev import nice_length, render_bev
from spatialclaw_ros.tools.geometry import Geometry

TAB_BLUE, TAB_ORANGE = np.array([31, 119, 180]), np.array([255, 127, 14])  # matplotlib C0, C1


def colour_pixels(image, colour, tolerance: int = 40) -> int:
    """How many pixels are within ``tolerance`` of ``colour`` in every channel."""
    return int((np.abs(np.asarray(image).astype(int) - colour) <= tolerance).all(axis=2).sum())


def test_scale_bar_length_is_round():
    assert nice_length(3.0) == pytest.approx(0.5)
    assert nice_length(12.0) == pytest.approx(2.0)
    assert nice_length(40.0) == pytest.approx(10.0)


def test_objects_boxes_and_cameras_are_drawn():
    geo = Geometry(make_context())
    sofa = box_surface([2.0, 1.0, 0.4], (2.0, 0.9, 0.8), yaw_deg=20)
    table = geo.oriented_box(box_surface([0.5, -1.0, 0.4], (1.2, 0.8, 0.8)))
    poses = {i: level_camera([0.3 * i, -2.0, 1.2], 60.0) for i in range(4)}
    image = render_bev({"sofa": sofa, "table": table}, poses, title="living room")
    assert image.size == (800, 800)
    assert colour_pixels(image, TAB_BLUE) > 500  # the sofa's points
    assert colour_pixels(image, TAB_ORANGE) > 500  # the table's footprint
    with pytest.raises(ValueError, match="at least one object or one camera pose"):
        render_bev({}, {})


def test_geometry_render_bev_uses_the_key_frame_cameras():
    frames = [blank_frame(i, T_world_camera=level_camera([i, 0, 1], 90)) for i in (3, 8)]
    geo = Geometry(make_context(frames))
    image = geo.render_bev({"cup": np.array([[1.0, 1.0, 0.8]])})
    assert image.size == (800, 800) and np.asarray(image).std() > 0
    with pytest.raises(KeyError, match=r"valid frame indices: \[3, 8\]"):
        geo.render_bev(frame_indices=[4])
