"""The sensor reconstruction backend and the Reconstruction it returns, against analytic geometry."""

from __future__ import annotations

import numpy as np
import pytest

from spatialclaw_ros.frames import Frame
from spatialclaw_ros.perception.backends import MissingInputError, make_reconstruction_backend
from spatialclaw_ros.perception.camera import backproject, project
from spatialclaw_ros.perception.reconstruction import Reconstruction
from spatialclaw_ros.perception.sensor import EDGE_CONFIDENCE

from analytic import CAMERA_XYZ, K, PANEL_HALF, PANEL_X, WALL_X, panel_frame


def sensor():
    return make_reconstruction_backend("sensor", host=None, world_frame="map")


def test_points_lie_on_the_analytic_planes():
    frame, ids = panel_frame(yaw=0.0)
    recon = sensor().reconstruct([frame])
    points = recon.points[0]
    panel, wall = points[ids == 1], points[ids == 0]
    assert np.abs(panel[:, 0] - PANEL_X).max() < 1e-5
    assert np.abs(wall[:, 0] - WALL_X).max() < 1e-5
    assert np.abs(panel[:, 1]).max() <= PANEL_HALF + 1e-5 and np.abs(panel[:, 2] - 1.0).max() <= PANEL_HALF + 1e-5
    # the pixel straight ahead (cx, cy) = (79.5, 59.5) is between four pixels; its neighbours straddle y = 0, z = 1
    centre = points[59:61, 79:81].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(centre, [PANEL_X, 0.0, CAMERA_XYZ[2]], atol=1e-5)
    np.testing.assert_allclose(recon.depth[0][ids == 1], PANEL_X - CAMERA_XYZ[0], atol=1e-5)


def test_a_turned_camera_gives_the_same_world_points():
    """The same panel seen from a camera turned 20 degrees left is in the same world place."""
    frame, ids = panel_frame(yaw=np.radians(20.0), xyz=(0.0, -0.8, 1.0))
    panel = sensor().reconstruct([frame]).points[0][ids == 1]
    assert len(panel) > 300
    assert np.abs(panel[:, 0] - PANEL_X).max() < 1e-5
    assert np.abs(panel[:, 1]).max() <= PANEL_HALF + 1e-5


def test_confidence_marks_depth_edges_and_holes():
    frame, ids = panel_frame()
    depth = frame.depth.copy()
    depth[10, 10] = np.nan
    frame = Frame(index=0, rgb=frame.rgb, K=frame.K, depth=depth, T_world_camera=frame.T_world_camera)
    recon = sensor().reconstruct([frame])
    confidence = recon.confidence[0]
    assert confidence[10, 10] == 0.0 and np.isnan(recon.points[0][10, 10]).all()
    # across the panel's silhouette (2 m -> 4 m) the wall pixel behind the jump is marked, the panel's is kept
    rows, cols = np.nonzero(ids)
    top, left = rows.min(), cols.min()
    assert confidence[top - 1, left + 5] == EDGE_CONFIDENCE and confidence[top, left + 5] == 1.0
    assert confidence[top + 5, left - 1] == EDGE_CONFIDENCE and confidence[top + 5, left] == 1.0
    assert confidence[top + 3, left + 5] == 1.0 and confidence[top - 3, left + 5] == 1.0
    assert np.count_nonzero(confidence == EDGE_CONFIDENCE) == np.count_nonzero(
        ~ids.astype(bool) & (np.roll(ids, 1, 0) | np.roll(ids, -1, 0) | np.roll(ids, 1, 1) | np.roll(ids, -1, 1)).astype(bool))
    assert recon.points.confidence.shape == (1, *ids.shape)


def test_16uc1_millimetres_and_32fc1_metres_give_the_same_points():
    frame, _ = panel_frame()
    millimetres = np.round(frame.depth * 1000).astype(np.uint16)
    metres = millimetres.astype(np.float32) / 1000
    millimetres[5, 7] = 0  # invalid in 16UC1
    metres[5, 7] = 0.0  # invalid in 32FC1
    as_uint16 = Frame(index=0, rgb=frame.rgb, K=K, depth=millimetres, T_world_camera=frame.T_world_camera)
    as_float = Frame(index=0, rgb=frame.rgb, K=K, depth=metres, T_world_camera=frame.T_world_camera)
    a = sensor().reconstruct([as_uint16]).points[0]
    b = sensor().reconstruct([as_float]).points[0]
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    assert np.isnan(a[5, 7]).all()
    np.testing.assert_allclose(a, b, atol=1e-6, equal_nan=True)


def test_distortion_is_undone_before_back_projection():
    """Back-projecting with plumb_bob coefficients and projecting again lands on the same pixels."""
    distortion = np.array([-0.2, 0.05, 0.001, -0.001, 0.0])
    depth = np.full((120, 160), 3.0, dtype=np.float32)
    T = np.eye(4)
    points = backproject(depth, K, T, distortion)
    pixels, z = project(points.reshape(-1, 3), K, T, distortion)
    v, u = np.mgrid[0:120, 0:160]
    np.testing.assert_allclose(pixels, np.stack([u.ravel(), v.ravel()], axis=1), atol=1e-2)
    np.testing.assert_allclose(z, 3.0, atol=1e-5)
    # distortion moves corner rays: without it the corner point differs
    plain = backproject(depth, K, T, None)
    assert np.linalg.norm(plain[0, 0] - points[0, 0]) > 0.01


def test_wrong_frame_index_lists_the_valid_ones():
    frames = [panel_frame(index=i)[0] for i in (3, 7)]
    recon = sensor().reconstruct(frames)
    assert recon.frame_indices == [3, 7] and recon.num_frames == 2
    for accessor in (recon.points, recon.depth, recon.confidence, recon.intrinsics, recon.extrinsics):
        with pytest.raises(KeyError, match=r"frame index 0; valid frame indices .*\[3, 7\]"):
            accessor[0]
    assert recon.intrinsics[7] == {"fx": 150.0, "fy": 150.0, "cx": 79.5, "cy": 59.5}
    np.testing.assert_array_equal(recon.intrinsics.fx, [150.0, 150.0])
    assert recon.extrinsics.camera_poses.shape == (2, 4, 4)
    assert recon.points.points.shape == (2, 120, 160, 3)
    np.testing.assert_array_equal(recon.gravity_direction, [0.0, 0.0, -1.0])
    assert (recon.metric_scale, recon.world_frame, recon.source) == (1.0, "map", "sensor")


def test_outputs_are_read_only():
    recon = sensor().reconstruct([panel_frame()[0]])
    with pytest.raises(ValueError, match="read-only"):
        recon.points[0][0, 0] = 1.0


def test_frames_of_different_sizes_are_indexed_per_frame_not_stacked():
    small, _ = panel_frame(index=0)
    big = Frame(index=1, rgb=np.zeros((240, 320, 3), np.uint8), K=K * [[2], [2], [1]],
                depth=np.full((240, 320), 2.0, np.float32), T_world_camera=np.eye(4))
    recon = sensor().reconstruct([small, big])
    assert recon.points[1].shape == (240, 320, 3)
    with pytest.raises(ValueError, match="differ in resolution"):
        recon.points.points


@pytest.mark.parametrize("missing, words", [("depth", "no depth image"), ("K", "no intrinsics"),
                                            ("T_world_camera", "no camera pose")])
def test_missing_inputs_are_named_and_point_at_da3(missing, words):
    frame, _ = panel_frame(index=4)
    setattr(frame, missing, None)
    with pytest.raises(MissingInputError, match=f"frame 4: {words}.*'da3'"):
        sensor().reconstruct([frame])


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown reconstruction backend 'vggt'; available: da3, da3-onnx, sensor"):
        make_reconstruction_backend("vggt", host=None, world_frame="map")


def test_arrays_round_trip():
    recon = sensor().reconstruct([panel_frame(index=i)[0] for i in (1, 2)])
    meta, arrays = recon.to_arrays()
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    back = Reconstruction.from_arrays(meta, arrays)
    assert back.frame_indices == [1, 2] and back.world_frame == "map" and back.source == "sensor"
    np.testing.assert_array_equal(back.points[2], recon.points[2])
    np.testing.assert_array_equal(back.extrinsics[1], recon.extrinsics[1])
