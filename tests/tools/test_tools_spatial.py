"""tools.Geometry spatial helpers against hand-computed ground truth (metres, degrees, TF world frame)."""

from __future__ import annotations

import numpy as np
import pytest
from tool_scenes import base_pose, blank_frame, box_surface, level_camera, make_context

from spatialclaw_ros.tools.geometry import Geometry
from spatialclaw_ros.tools.measures import Plane

CUBE = (0.4, 0.4, 0.4)


def strays(rng, count: int, low, high) -> np.ndarray:
    """``count`` points scattered uniformly in the box [low, high]."""
    return rng.uniform(low, high, size=(count, 3))


@pytest.fixture
def geo() -> Geometry:
    frames = [
        blank_frame(0, T_world_camera=level_camera([0, 0, 1], 0), poses={"base_link": base_pose([0, 0, 0], 0)}),
        blank_frame(5, T_world_camera=level_camera([0, 0, 1], 180), poses={"base_link": base_pose([0, 0, 0], 90)}),
    ]
    return Geometry(make_context(frames))


def two_cubes_with_strays() -> tuple[np.ndarray, np.ndarray]:
    """Cubes 0.4 m wide centred at x = 0 and x = 0.9 (facing faces 0.5 m apart), each with stray points: flying
    pixels just off the facing side, scattered ones around both objects, one in the gap and far-away ones."""
    rng = np.random.default_rng(4)
    a = np.vstack([
        box_surface([0, 0, 0.2], CUBE),
        strays(rng, 15, [0.22, -0.15, 0.05], [0.4, 0.15, 0.35]),
        strays(rng, 40, [-1, -1, 0], [2, 1, 1]),
        [[0.45, 0.0, 0.2]],
        strays(rng, 5, [5, 5, 0], [6, 6, 1]),
    ])
    b = np.vstack([
        box_surface([0.9, 0, 0.2], CUBE),
        strays(rng, 15, [0.5, -0.15, 0.05], [0.68, 0.15, 0.35]),
        strays(rng, 40, [-1, -1, 0], [2, 1, 1]),
        [[0.3, 0.05, 0.2], [np.nan, 0, 0]],
    ])
    return a, b


def test_closest_point_distance_exact_and_robust(geo):
    a, b = box_surface([0, 0, 0.2], CUBE), box_surface([0.9, 0, 0.2], CUBE)
    exact = geo.closest_point_distance(a, b, robust=False)
    assert exact.value_m == pytest.approx(0.5)
    assert exact.point_a[0] == pytest.approx(0.2) and exact.point_b[0] == pytest.approx(0.7)

    noisy_a, noisy_b = two_cubes_with_strays()
    assert geo.closest_point_distance(noisy_a, noisy_b, robust=False).value_m < 0.2  # a stray wins
    robust = geo.closest_point_distance(noisy_a, noisy_b)
    assert robust.value_m == pytest.approx(0.5, abs=0.01)
    assert np.linalg.norm(robust.point_a - robust.point_b) == pytest.approx(robust.value_m)
    assert robust.point_a[0] == pytest.approx(0.2, abs=0.01) and robust.point_b[0] == pytest.approx(0.7, abs=0.01)
    assert robust.frame == "world" and "robust" in robust.method
    assert float(robust) == robust.value_m
    assert "m" in repr(robust) and "frame=world" in repr(robust)


def test_robust_closest_point_distance_is_not_biased_on_clean_surfaces(geo):
    """1 cm sampling: the robust gap is the exact one (a k-th nearest point or a rank statistic would add mm)."""
    a = box_surface([0, 0, 0.2], CUBE)
    face_to_face = geo.closest_point_distance(a, box_surface([0.41, 0, 0.2], CUBE))
    assert face_to_face.value_m == pytest.approx(0.01, abs=5e-4)
    turned = box_surface([0.2 + 0.03 + 0.2 * np.sqrt(2), 0, 0.2], CUBE, yaw_deg=45)  # an edge 3 cm from a's +x face
    edge_to_face = geo.closest_point_distance(a, turned)
    assert edge_to_face.value_m == pytest.approx(0.03, abs=5e-4)
    assert edge_to_face.point_b[:2] == pytest.approx([0.23, 0.0], abs=1e-6)


def test_robust_closest_point_distance_ignores_strays_between_the_objects(geo):
    """Strays planted in a 0.5 m gap, scattered and in a clump of three, do not shrink it; the exact minimum does."""
    a, b = box_surface([0, 0, 0.2], CUBE), box_surface([0.9, 0, 0.2], CUBE)
    scattered = np.column_stack([np.linspace(0.25, 0.65, 6), np.linspace(-0.1, 0.1, 6), np.full(6, 0.2)])
    clump = [0.69, 0.0, 0.2] + 0.005 * np.eye(3)
    a_with_strays = np.vstack([a, scattered, clump])
    assert geo.closest_point_distance(a_with_strays, b, robust=False).value_m < 0.02
    robust = geo.closest_point_distance(a_with_strays, b)
    assert robust.value_m == pytest.approx(0.5, abs=1e-6)
    assert robust.point_a[0] == pytest.approx(0.2) and robust.point_b[0] == pytest.approx(0.7)


def test_robust_closest_point_distance_cuts_a_mask_bleeding_onto_the_other_object(geo):
    """a's mask also took a 20 cm patch of b's facing side: dense, but far from a's bulk, so it is dropped."""
    a, b = box_surface([0, 0, 0.2], CUBE), box_surface([0.9, 0, 0.2], CUBE)
    patch = b[np.isclose(b[:, 0], 0.7) & (np.abs(b[:, 1]) <= 0.1) & (np.abs(b[:, 2] - 0.2) <= 0.1)]
    assert len(patch) == 21 * 21
    assert geo.closest_point_distance(np.vstack([a, patch]), b).value_m == pytest.approx(0.5)


def test_robust_closest_point_distance_on_sparse_and_tiny_sets(geo):
    """5 cm sampling has no point with 3 others within 2 cm: support then scales with the sets' own spacing."""
    sparse = geo.closest_point_distance(box_surface([0, 0, 0.2], CUBE, step=0.05),
                                        box_surface([0.5, 0, 0.2], CUBE, step=0.05))
    assert sparse.value_m == pytest.approx(0.1)
    assert geo.closest_point_distance([[0.0, 0, 0], [0, 0.1, 0]], [[2.0, 0, 0]]).value_m == pytest.approx(2.0)


def test_closest_point_distance_rejects_empty_sets(geo):
    with pytest.raises(ValueError, match="points_b has no finite 3D points"):
        geo.closest_point_distance(box_surface([0, 0, 0], CUBE), np.full((10, 3), np.nan))


def test_centroid_distance_uses_medians(geo):
    noisy_a, noisy_b = two_cubes_with_strays()
    b = box_surface([0.9, 0.3, 0.2], CUBE)
    d = geo.centroid_distance(noisy_a, b)
    assert d.value_m == pytest.approx(np.hypot(0.9, 0.3), abs=0.01)
    np.testing.assert_allclose(d.point_a, [0, 0, 0.2], atol=0.01)
    np.testing.assert_allclose(d.point_b, [0.9, 0.3, 0.2], atol=1e-9)


def test_gap_along_axis(geo):
    noisy_a, noisy_b = two_cubes_with_strays()
    gap = geo.gap_along_axis(noisy_a, noisy_b, "x")
    assert gap.value_m == pytest.approx(0.5, abs=0.01) and gap.first == "a" and gap.axis == "x"
    assert geo.gap_along_axis(noisy_b, noisy_a, "x").first == "b"
    assert geo.gap_along_axis(noisy_a, noisy_b, "z").value_m == pytest.approx(-0.4, abs=0.01)  # side by side: overlap
    diagonal = geo.gap_along_axis(box_surface([0, 0, 0], CUBE), box_surface([1, 1, 0], CUBE), [1, 1, 0], robust=False)
    assert diagonal.value_m == pytest.approx(np.sqrt(2) - 0.4 * np.sqrt(2))  # corners reach 0.2*sqrt(2) along it
    with pytest.raises(ValueError, match="axis must be 'x', 'y', 'z' or a 3-vector, got 'up'"):
        geo.gap_along_axis(noisy_a, noisy_b, "up")


@pytest.mark.parametrize("yaw, expected_yaw", [(30.0, 30.0), (120.0, -60.0), (-75.0, -75.0)])
def test_oriented_box_of_a_rotated_box(geo, yaw, expected_yaw):
    points = box_surface([2.0, -1.0, 0.4], (1.2, 0.5, 0.8), yaw_deg=yaw)
    box = geo.oriented_box(points)
    np.testing.assert_allclose(box.size, [1.2, 0.5, 0.8], atol=0.005)
    np.testing.assert_allclose(box.center, [2.0, -1.0, 0.4], atol=0.005)
    assert box.yaw_deg == pytest.approx(expected_yaw, abs=0.5)
    assert np.linalg.det(box.rotation) == pytest.approx(1.0)
    corners = box.corners
    assert corners[:, 2].min() == pytest.approx(0.0, abs=0.005) and corners[:, 2].max() == pytest.approx(0.8, abs=0.005)


def test_oriented_box_from_a_partial_view(geo):
    # Only the -x side, the +y side and the top are seen (as from one camera): footprint is an L shape.
    points = box_surface([0.0, 0.0, 0.5], (0.9, 0.6, 1.0), yaw_deg=20.0, faces="xYZ")
    box = geo.oriented_box(points, robust=False)
    np.testing.assert_allclose(box.size, [0.9, 0.6, 1.0], atol=0.002)
    assert box.yaw_deg == pytest.approx(20.0, abs=0.5)
    dims = geo.dimensions(points)  # robust percentiles trim the sparse far edges by about 1% of the span
    assert (dims.length_m, dims.width_m, dims.height_m) == pytest.approx((0.9, 0.6, 1.0), abs=0.02)


def test_axis_aligned_box(geo):
    box = geo.axis_aligned_box(box_surface([1.0, 2.0, 0.25], (0.2, 0.4, 0.5)))
    np.testing.assert_allclose(box.size, [0.2, 0.4, 0.5], atol=1e-9)
    np.testing.assert_allclose(box.center, [1.0, 2.0, 0.25], atol=1e-9)
    np.testing.assert_allclose(box.rotation, np.eye(3))


def test_height_above_floor(geo):
    shelf = box_surface([0.0, 0.0, 0.7], CUBE)  # spans z 0.5 .. 0.9
    heights = geo.height_above_floor(shelf)
    assert (heights.bottom_m, heights.center_m, heights.top_m) == pytest.approx((0.5, 0.7, 0.9), abs=1e-9)
    assert heights.floor.source == "tf"
    raised = Plane(normal=np.array([0.0, 0.0, 1.0]), offset=-0.1, frame="world", source="ransac")
    assert geo.height_above_floor(shelf, raised).bottom_m == pytest.approx(0.4)


def test_floor_plane_from_tf_and_from_points(geo):
    tf = geo.floor_plane()
    assert tf.source == "tf" and tf.offset == 0.0
    np.testing.assert_allclose(tf.normal, [0, 0, 1])
    rng = np.random.default_rng(5)
    floor = np.column_stack([rng.uniform(-3, 3, (4000, 2)), rng.normal(0.05, 0.003, 4000)])
    scene = np.vstack([floor, box_surface([1, 0, 0.45], (1.0, 0.6, 0.8)), box_surface([-1, 1, 1.0], CUBE)])
    fitted = geo.floor_plane(scene)
    assert fitted.source == "ransac"
    assert -fitted.offset / fitted.normal[2] == pytest.approx(0.05, abs=0.003)
    assert fitted.normal[2] > np.cos(np.radians(1.0))
    wall = np.column_stack([np.zeros(2000), rng.uniform(-2, 2, (2000, 2))])  # no horizontal plane: keep z = 0
    assert geo.floor_plane(wall).source == "tf"


def test_floor_plane_without_tf_needs_points():
    geo = Geometry(make_context([blank_frame(0)]))
    with pytest.raises(ValueError, match="no TF camera poses"):
        geo.floor_plane()
    rng = np.random.default_rng(6)
    tilted = np.column_stack([rng.uniform(-2, 2, (2000, 2)), np.zeros(2000)]) @ np.array(
        [[1, 0, 0], [0, 0.8, 0.6], [0, -0.6, 0.8]])
    plane = geo.floor_plane(tilted)
    assert plane.source == "ransac" and plane.inlier_ratio == pytest.approx(1.0)
    np.testing.assert_allclose(np.abs(plane.normal), [0, 0.6, 0.8], atol=1e-6)


def test_relative_direction_in_base_link(geo):
    # At key frame 5 the robot stands at the origin heading +y (yaw 90): forward = +y, left = -x.
    robot = [0.0, 0.0, 0.5]
    left = geo.relative_direction(robot, [-2.0, 0.0, 0.5], frame_index=5)
    assert (left.left_right, left.front_behind, left.above_below) == ("left", "beside", "level")
    assert left.azimuth_deg == pytest.approx(90.0) and left.distance_m == pytest.approx(2.0)
    assert left.frame == "base_link@5"
    front_right = geo.relative_direction(robot, [1.0, 3.0, 0.5])  # default: latest key frame (5)
    assert (front_right.left_right, front_right.front_behind) == ("right", "front")
    assert front_right.azimuth_deg == pytest.approx(np.degrees(np.arctan2(-1, 3)))
    np.testing.assert_allclose(front_right.offset, [3.0, -1.0, 0.0], atol=1e-12)
    behind_above = geo.relative_direction(robot, [0.0, -2.0, 2.0])
    words = (behind_above.left_right, behind_above.front_behind, behind_above.above_below)
    assert words == ("center", "behind", "above")
    assert behind_above.elevation_deg == pytest.approx(np.degrees(np.arctan2(1.5, 2.0)))
    # At key frame 0 the robot heads +x: the same point (-2, 0) is straight behind.
    assert geo.relative_direction(robot, [-2.0, 0.0, 0.5], frame_index=0).front_behind == "behind"


def test_relative_direction_defaults_to_the_question_s_body_frame():
    """A robot whose body frame is base_footprint (FrameSet.body_frame, the node's frames.body_frame)."""
    frames = [blank_frame(0, T_world_camera=level_camera([0, 0, 1], 0),
                          poses={"base_footprint": base_pose([0, 0, 0], 90)})]
    geo = Geometry(make_context(frames, body_frame="base_footprint"))
    left = geo.relative_direction([0.0, 0.0, 0.0], [-2.0, 0.0, 0.0])
    assert (left.left_right, left.frame) == ("left", "base_footprint@0")
    camera = Geometry(make_context(frames, body_frame="")).relative_direction([0, 0, 1.0], [0, -2.0, 1.0])
    assert camera.frame.startswith("camera") and camera.left_right == "right"


def test_relative_direction_in_camera_frames(geo):
    origin = [0.0, 0.0, 1.0]
    ahead_cam = geo.relative_direction(origin, [3.0, 1.0, -1.0], frame="camera:0")  # camera 0 looks along +x
    assert (ahead_cam.left_right, ahead_cam.front_behind, ahead_cam.above_below) == ("left", "front", "below")
    assert ahead_cam.azimuth_deg == pytest.approx(np.degrees(np.arctan2(1, 3)))
    assert ahead_cam.frame == "camera:0"
    flipped = geo.relative_direction(origin, [-2.0, -1.0, 1.0], frame="camera")  # latest = 5, looking along -x
    assert (flipped.left_right, flipped.front_behind, flipped.frame) == ("left", "front", "camera:5")
    level = geo.relative_direction(origin, [3.0, -1.0, 1.3], frame="camera:0")
    assert (level.left_right, level.above_below) == ("right", "level")  # 5.4 deg up is within the 10 deg band


def test_relative_direction_facing_and_errors(geo):
    cube_at_origin = box_surface([0, 0, 0], CUBE)  # a point set stands for its median point
    viewer = geo.relative_direction(cube_at_origin, [3.0, 0.0, 0.0], facing=[0.0, 5.0, 0.0])
    assert (viewer.left_right, viewer.front_behind) == ("right", "beside")
    with pytest.raises(ValueError, match=r"available: \['world', 'camera', 'camera:0', 'base_link'\]"):
        geo.relative_direction([0, 0, 0], [1, 0, 0], frame="odom", frame_index=0)
    with pytest.raises(KeyError, match=r"valid frame indices: \[0, 5\]"):
        geo.relative_direction([0, 0, 0], [1, 0, 0], frame="camera:3")


def test_camera_motion_yaw_sign():
    headings = {0: 0.0, 1: 45.0, 2: -30.0, 3: 170.0, 4: -170.0, 5: -169.0}
    frames = [blank_frame(i, T_world_camera=level_camera([i * 0.5, i * 0.25, 1.0], yaw)) for i, yaw in headings.items()]
    geo = Geometry(make_context(frames))
    left = geo.camera_motion(0, 1)
    assert (left.turn, left.yaw_deg) == ("left", pytest.approx(45.0))
    np.testing.assert_allclose(left.translation_m, [0.5, 0.25, 0.0])
    assert left.distance_m == pytest.approx(np.hypot(0.5, 0.25))
    right = geo.camera_motion(1, 2)
    assert (right.turn, right.yaw_deg) == ("right", pytest.approx(-75.0))
    across = geo.camera_motion(3, 4)  # 170 -> -170 deg is a 20 deg left turn through 180
    assert (across.turn, across.yaw_deg) == ("left", pytest.approx(20.0))
    assert geo.camera_motion(4, 5).turn == "none"
    with pytest.raises(KeyError, match="valid frame indices"):
        geo.camera_motion(0, 9)


def test_count_instances_merges_partial_views_of_a_large_object(geo):
    """A 2 m long sofa seen towards either end: the views' centres are 0.8 m apart, but they share its middle."""
    size = (0.9, 2.0, 0.8)
    minus_end, plus_end = box_surface([0, 0, 0.4], size, faces="xyZ"), box_surface([0, 0, 0.4], size, faces="xYZ")
    detections = [
        minus_end[minus_end[:, 1] <= 0.6],  # view 1: front and top of the 1.6 m towards -y, and the -y end
        plus_end[plus_end[:, 1] >= -0.6],  # view 2: the same towards +y, and the +y end
        np.array([0.0, 0.3, 0.8]),  # a single 3D point on the top from another view
    ]
    assert np.linalg.norm(np.median(detections[1], axis=0) - np.median(detections[0], axis=0)) > 0.8
    count = geo.count_instances(detections)
    assert count.count == 1 and int(count) == 1
    assert count.groups == [[0, 1, 2]]
    assert abs(count.centers[0][1]) < 0.02  # the median of all the views' voxels: mid-sofa, unlike either view's
    assert geo.count_instances([]).count == 0 and geo.count_instances([]).centers.shape == (0, 3)


def test_count_instances_keeps_nearby_objects_apart(geo):
    """Two 15 cm boxes 10 cm apart (centres 0.25 m), each seen from two sides, stay two objects."""
    size = (0.15, 0.15, 0.15)
    left, right = [0.0, 0.0, 0.075], [0.0, 0.25, 0.075]
    detections = [box_surface(left, size, faces="xyZ"), box_surface(right, size, faces="xyZ"),
                  box_surface(left, size, faces="XYZ"), box_surface(right, size, faces="XYZ")]
    count = geo.count_instances(detections)
    assert count.count == 2 and count.groups == [[0, 2], [1, 3]]
    np.testing.assert_allclose(count.centers[:, :2], [left[:2], right[:2]], atol=0.01)


def test_count_instances_is_not_chained_through_a_detection_that_covers_two_objects(geo):
    """A box prompt on a table also segments the chair in front of it: that detection holds all of the chair's
    front-only view, yet the chair and the table stay two objects (linking every overlapping pair would give one)."""
    chair, chair_size = [0.0, 0.0, 0.4], (0.5, 0.4, 0.8)
    table, table_size = [0.9, 0.0, 0.375], (0.8, 1.2, 0.75)
    detections = [
        box_surface(chair, chair_size, faces="xyZ"), box_surface(chair, chair_size, faces="xYZ"),
        box_surface(table, table_size, faces="xyZ"), box_surface(table, table_size, faces="xYZ"),
        box_surface(chair, chair_size, faces="x"),  # the chair's front, from the frame of the bad table mask
        np.vstack([box_surface(table, table_size, faces="xZ"), box_surface(chair, chair_size, faces="x")]),
    ]
    count = geo.count_instances(detections)
    assert count.count == 2
    assert {0, 1} <= set(count.groups[0]) and {2, 3, 5} <= set(count.groups[1])
