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


def test_seen_from_a_camera_its_right_is_plot_x_and_its_forward_plot_y():
    camera = level_camera([0.0, 0.0, 1.2], 0.0)  # at the origin looking along world +x; its right is world -y
    right_box = box_surface([3.0, -1.0, 0.4], (0.5, 0.5, 0.8))
    left_box = box_surface([2.0, 1.5, 0.4], (0.5, 0.5, 0.8))
    view = render_bev({"right one": right_box, "left one": left_box}, {0: camera}, reference=camera,
                      reference_label="camera of frame 0", source="test")
    lines = dict(line.split(": ", 1) for line in view.description.splitlines()[1:])
    assert lines["right one"].startswith("at right 1.00 m, forward 3.00 m")
    assert lines["left one"].startswith("at left 1.50 m, forward 2.00 m")
    assert "footprint 0.50 x 0.50 m" in lines["right one"]
    assert view.source == "test" and view.description.startswith("Top-down view, seen from the camera of frame 0")


def test_an_object_whose_centre_moves_gets_a_track():
    camera = level_camera([0.0, 0.0, 1.2], 0.0)
    cart = {i: box_surface([3.0, -1.0 + 0.5 * i, 0.3], (0.4, 0.4, 0.6)) for i in range(4)}  # moves 1.5 m left
    still = {i: box_surface([4.0, 0.0, 0.3], (0.6, 0.6, 0.6)) for i in range(4)}
    view = render_bev({"cart": cart, "crate": still}, {0: camera}, reference=camera)
    lines = dict(line.split(": ", 1) for line in view.description.splitlines()[1:])
    assert lines["cart"].startswith("MOVING 1.50 m over frames [0, 1, 2, 3]") and "from right 1.00 m" in lines["cart"]
    assert lines["crate"].startswith("at ") and "MOVING" not in lines["crate"]


def test_without_the_ego_trajectory_no_cameras_are_listed():
    camera = level_camera([0.0, 0.0, 1.2], 0.0)
    poses = {i: level_camera([0.2 * i, 0.0, 1.2], 0.0) for i in range(3)}
    with_path = render_bev({"box": box_surface([3.0, 0.0, 0.4], (0.5, 0.5, 0.8))}, poses, reference=camera)
    without = render_bev({"box": box_surface([3.0, 0.0, 0.4], (0.5, 0.5, 0.8))}, poses, reference=camera,
                         ego_trajectory=False)
    assert "cameras: frames [0, 1, 2], path 0.40 m" in with_path.description
    assert "cameras" not in without.description
