"""tools.Geometry reference helpers: distances, angles, projection, rotations, transforms, RANSAC plane."""

from __future__ import annotations

import numpy as np
import pytest
from tool_scenes import blank_frame, level_camera, make_context, pose, rot_z

from spatialclaw_ros.tools.geometry import Geometry
from spatialclaw_ros.tools.measures import Plane

K = np.array([[500.0, 0.0, 320.0], [0.0, 480.0, 240.0], [0.0, 0.0, 1.0]])
CAM = {"extrinsic_c2w": level_camera([1.0, 2.0, 1.5], 30.0), "fx": 500.0, "fy": 480.0, "cx": 320.0, "cy": 240.0}


@pytest.fixture
def geo() -> Geometry:
    return Geometry(make_context())


def test_distance_and_angle(geo):
    assert geo.euclidean_distance([0, 0, 0], [3, 4, 12]) == pytest.approx(13.0)
    assert geo.angle_between_vectors([1, 0, 0], [0, 2, 0]) == pytest.approx(90.0)
    assert geo.angle_between_vectors([1, 0, 0], [-1, 1, 0]) == pytest.approx(135.0)
    assert geo.angle_between_vectors([0, 0, 1], [0, 0, 5]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="non-zero"):
        geo.angle_between_vectors([0, 0, 0], [1, 0, 0])


def test_projection_of_a_known_point(geo):
    # Camera at (1, 2, 1.5) looking along heading 30 deg: a point 4 m straight ahead and 0.5 m up.
    ahead = np.array([1.0, 2.0, 1.5]) + 4.0 * np.array([np.cos(np.radians(30)), np.sin(np.radians(30)), 0.0])
    u, v = geo.project_point_to_camera(ahead + [0, 0, 0.5], **CAM)
    assert u == pytest.approx(320.0)
    assert v == pytest.approx(240.0 - 480.0 * 0.5 / 4.0)  # up is -y in the image


def test_projection_round_trip_and_behind(geo):
    rng = np.random.default_rng(1)
    for u, v, depth in zip(rng.uniform(0, 640, 20), rng.uniform(0, 480, 20), rng.uniform(0.3, 9.0, 20)):
        point = geo.pixel_to_point(u, v, depth, **CAM)
        assert geo.project_point_to_camera(point, **CAM) == pytest.approx((u, v))
    behind = geo.pixel_to_point(320, 240, -2.0, **CAM)
    assert geo.project_point_to_camera(behind, **CAM) is None


def test_camera_reads_the_key_frame():
    T = level_camera([0, 0, 1], 90)
    geo = Geometry(make_context([blank_frame(7, K=K, T_world_camera=T)]))
    cam = geo.camera(7)
    assert cam["fx"] == 500.0 and cam["cy"] == 240.0
    np.testing.assert_allclose(cam["extrinsic_c2w"], T)
    with pytest.raises(KeyError, match=r"valid frame indices: \[7\]"):
        geo.camera(3)


def test_rotation_matrix_from_vectors(geo):
    rng = np.random.default_rng(2)
    for a, b in zip(rng.normal(size=(10, 3)), rng.normal(size=(10, 3))):
        R = geo.rotation_matrix_from_vectors(a, b)
        np.testing.assert_allclose(R @ (a / np.linalg.norm(a)), b / np.linalg.norm(b), atol=1e-12)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
    opposite = geo.rotation_matrix_from_vectors([0, 0, 1], [0, 0, -3])
    np.testing.assert_allclose(opposite @ [0, 0, 1], [0, 0, -1], atol=1e-12)
    assert np.linalg.det(opposite) == pytest.approx(1.0)
    np.testing.assert_allclose(geo.rotation_matrix_from_vectors([1, 0, 0], [0, 1, 0]), rot_z(90), atol=1e-12)


def test_transform_points_keeps_shape(geo):
    T = pose(rot_z(90), [1.0, 0.0, 0.5])
    np.testing.assert_allclose(geo.transform_points([1.0, 0.0, 0.0], T), [1.0, 1.0, 0.5], atol=1e-12)
    out = geo.transform_points(np.zeros((4, 5, 3)), T)
    assert out.shape == (4, 5, 3)
    np.testing.assert_allclose(out[2, 3], [1.0, 0.0, 0.5])


def test_normalized_to_pixel(geo):
    assert geo.normalized_to_pixel([500, 250], 640, 480) == pytest.approx([320.0, 120.0])
    assert geo.normalized_to_pixel([[0, 1000], [1000, 0]], 200, 100) == [[0.0, 100.0], [200.0, 0.0]]
    assert geo.normalized_to_pixel([100, 200, 300, 400], 1000, 500) == [100.0, 100.0, 300.0, 200.0]
    with pytest.raises(ValueError, match="pairs"):
        geo.normalized_to_pixel([1, 2, 3], 10, 10)
    with pytest.raises(TypeError, match="takes numbers, not a str: parse them first"):
        geo.normalized_to_pixel("500 250", 640, 480)


def test_normalized_to_pixel_reads_a_locate_answer_and_warns_beyond_1000(geo, capsys):
    from spatialclaw_ros.kernel.namespace import LocateAnswer

    box = LocateAnswer("```json\n{\"bbox_2d\": [100, 200, 300, 400]}\n```", 640, 480)
    assert geo.normalized_to_pixel(box, 1000, 500) == [100.0, 100.0, 300.0, 200.0]
    with pytest.raises(ValueError, match="says the object is not visible"):
        geo.normalized_to_pixel(LocateAnswer("Not visible", 640, 480), 640, 480)
    assert geo.normalized_to_pixel([1200, 10], 100, 100) == pytest.approx([120.0, 1.0])  # not clamped
    assert "values outside 0-1000" in capsys.readouterr().out


def test_ransac_recovers_a_tilted_plane_among_outliers(geo):
    rng = np.random.default_rng(3)
    normal = np.array([0.1, -0.2, 1.0]) / np.linalg.norm([0.1, -0.2, 1.0])
    offset = -0.75
    xy = rng.uniform(-3, 3, size=(3000, 2))
    z = (-offset - normal[0] * xy[:, 0] - normal[1] * xy[:, 1]) / normal[2]
    inliers = np.column_stack([xy, z]) + rng.normal(scale=0.004, size=(3000, 3))
    clutter = rng.uniform([-3, -3, 0], [3, 3, 3], size=(1500, 3))
    points = np.vstack([inliers, clutter])
    plane = geo.fit_ground_plane_ransac(points, inlier_threshold=0.02)
    assert plane.source == "ransac" and plane.frame == "world"
    assert np.degrees(np.arccos(plane.normal @ normal)) < 0.5
    assert plane.offset == pytest.approx(offset, abs=0.005)
    assert 0.6 < plane.inlier_ratio < 0.7  # 3000 of 4500 points, plus the few clutter points near the plane
    found, mask = plane  # the reference's (normal, inlier_mask)
    assert found is plane.normal and mask.shape == (4500,) and mask[:3000].mean() > 0.95 and mask[3000:].mean() < 0.1


def test_ransac_takes_confidence_like_the_reference(geo, capsys):
    # An (H, W, 3) point map with a confidence map: low-confidence pixels are left out and the mask keeps the shape.
    rng = np.random.default_rng(4)
    grid = np.stack(np.meshgrid(np.linspace(-2, 2, 40), np.linspace(-2, 2, 30)), axis=-1)
    points = np.concatenate([grid, np.full((30, 40, 1), 0.3)], axis=-1) + rng.normal(scale=0.002, size=(30, 40, 3))
    confidence = np.ones((30, 40))
    points[:, :10, 2] += rng.uniform(0.5, 2.0, size=(30, 10))  # off-plane clutter ...
    confidence[:, :10] = 0.1  # ... that the confidence rules out
    normal, mask = geo.fit_ground_plane_ransac(points, confidence)
    np.testing.assert_allclose(normal, [0, 0, 1], atol=0.01)
    assert mask.shape == (30, 40) and mask[:, 10:].all() and not mask[:, :10].any()
    assert geo.fit_ground_plane_ransac(points, confidence, conf_threshold=2.0) == (None, None)
    assert "only 0 points qualify" in capsys.readouterr().out
    with pytest.raises(ValueError, match="confidence has 5 values for 1200 points"):
        geo.fit_ground_plane_ransac(points, np.ones(5))


def test_plane_signed_distance():
    plane = Plane(normal=np.array([0.0, 0.0, 1.0]), offset=-0.5, frame="map", source="tf")
    np.testing.assert_allclose(plane.signed_distance([[3, 1, 0.5], [0, 0, 2.0], [0, 0, 0]]), [0.0, 1.5, -0.5])
