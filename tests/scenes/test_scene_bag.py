"""Bag writing: read the MCAP back with rosbags and rebuild the scene from its messages alone."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from rosbags.interfaces import QosDurability
from rosbags.rosbag2 import Reader
from scipy.spatial.transform import Rotation

from scene_helpers import back_project, surface_distance
from spatialclaw_ros.scenes.bag import TYPESTORE, read_ground_truth, to_nanoseconds, write_bag
from spatialclaw_ros.scenes.generator import generate_scene
from spatialclaw_ros.scenes.measure import compute_ground_truth
from spatialclaw_ros.scenes.render import render_scene

N_FRAMES = 3


@pytest.fixture(scope="module")
def scene():
    return generate_scene(15, n_frames=N_FRAMES)  # six objects, all in view of the first frame


@pytest.fixture(scope="module")
def rendered(scene):
    return render_scene(scene)


def read_bag(path) -> tuple[dict[str, list], dict[str, list[int]], dict]:
    """Messages and bag timestamps per topic, and the connections by topic."""
    messages: dict[str, list] = {}
    stamps: dict[str, list[int]] = {}
    with Reader(path) as reader:
        connections = {c.topic: c for c in reader.connections}
        for connection, timestamp, raw in reader.messages():
            messages.setdefault(connection.topic, []).append(TYPESTORE.deserialize_cdr(raw, connection.msgtype))
            stamps.setdefault(connection.topic, []).append(timestamp)
    return messages, stamps, connections


def matrix(transform) -> np.ndarray:
    """4x4 from a geometry_msgs/Transform."""
    T = np.eye(4)
    q = transform.rotation
    T[:3, :3] = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    T[:3, 3] = [transform.translation.x, transform.translation.y, transform.translation.z]
    return T


def nanoseconds(header) -> int:
    return header.stamp.sec * 10**9 + header.stamp.nanosec


def test_raw_bag_round_trip(tmp_path, scene, rendered):
    frames = [r.frame for r in rendered]
    bag = write_bag(scene, frames, tmp_path / "bag")
    messages, stamps, connections = read_bag(bag)

    per_frame = ("/tf", "/front/camera_info", "/front/image_raw", "/front/depth/image_raw")
    assert {t: len(m) for t, m in messages.items()} == {"/tf_static": 1, **{t: N_FRAMES for t in per_frame}}
    assert connections["/front/image_raw"].msgtype == "sensor_msgs/msg/Image"
    assert connections["/tf_static"].ext.offered_qos_profiles[0].durability == QosDurability.TRANSIENT_LOCAL
    expected = [to_nanoseconds(f.stamp) for f in frames]
    assert expected[1] - expected[0] == 500_000_000  # 2 Hz
    for topic in per_frame:
        assert stamps[topic] == expected
    for topic in ("/front/camera_info", "/front/image_raw", "/front/depth/image_raw"):
        assert [nanoseconds(m.header) for m in messages[topic]] == expected
        assert {m.header.frame_id for m in messages[topic]} == {"front_optical_frame"}

    static = {t.child_frame_id: t for t in messages["/tf_static"][0].transforms}
    assert (static["front_link"].header.frame_id, static["front_optical_frame"].header.frame_id) == ("base_link", "front_link")
    T_base_optical = matrix(static["front_link"].transform) @ matrix(static["front_optical_frame"].transform)
    np.testing.assert_allclose(T_base_optical, scene.mount.T_base_optical, atol=1e-9)
    # the optical rotation alone: z forward = link x, x right = link -y, y down = link -z
    R_link_optical = matrix(static["front_optical_frame"].transform)[:3, :3]
    np.testing.assert_allclose(R_link_optical, [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-12)

    for i, frame in enumerate(frames):
        (tf,) = messages["/tf"][i].transforms
        assert (tf.header.frame_id, tf.child_frame_id, nanoseconds(tf.header)) == ("map", "base_link", expected[i])
        T_map_optical = matrix(tf.transform) @ T_base_optical
        np.testing.assert_allclose(T_map_optical, scene.T_world_camera(i), atol=1e-9)

        info = messages["/front/camera_info"][i]
        K = info.k.reshape(3, 3)
        assert (info.width, info.height, info.distortion_model) == (320, 240, "plumb_bob")
        np.testing.assert_allclose(K, scene.intrinsics.K)
        np.testing.assert_allclose(info.p.reshape(3, 4), np.hstack([scene.intrinsics.K, np.zeros((3, 1))]))
        np.testing.assert_array_equal(info.d, np.zeros(5))

        image = messages["/front/image_raw"][i]
        assert (image.encoding, image.step, image.is_bigendian) == ("rgb8", 320 * 3, 0)
        np.testing.assert_array_equal(image.data.reshape(240, 320, 3), frame.rgb)

        depth_msg = messages["/front/depth/image_raw"][i]
        assert (depth_msg.encoding, depth_msg.step, depth_msg.is_bigendian) == ("16UC1", 320 * 2, 0)
        millimetres = depth_msg.data.view("<u2").reshape(240, 320)
        valid = np.isfinite(frame.depth)
        assert (millimetres[~valid] == 0).all() and (millimetres[valid] > 0).all()
        np.testing.assert_array_equal(millimetres[valid], np.rint(frame.depth[valid] * 1000))

        # the bag alone (depth, CameraInfo, TF) puts every object's pixels on that object's surface
        depth = millimetres.astype(np.float64) / 1000.0
        seen = 0
        for obj in scene.objects:
            mask = (rendered[i].instance == obj.instance_id) & (millimetres > 0)
            if mask.sum() < 20:
                continue
            seen += 1
            points = back_project(depth, K, T_map_optical, mask)
            assert surface_distance(obj, points).max() < 0.01, obj.label
            # inside the object's bounding box, in its own frame, to within a centimetre
            local = (points - obj.centre) @ obj.pose[:3, :3]
            assert (np.abs(local) <= obj.size / 2 + 0.01).all(), obj.label
        assert seen == len(scene.objects) if i == 0 else seen >= 1


def test_ground_truth_sidecar(tmp_path, scene, rendered):
    bag = write_bag(scene, [r.frame for r in rendered], tmp_path / "bag")
    assert (tmp_path / "bag.ground_truth.json").is_file()
    truth, expected = read_ground_truth(bag), compute_ground_truth(scene)
    assert [o.label for o in truth.objects] == [o.label for o in scene.objects]
    assert [p.closest for p in truth.pairs] == [p.closest for p in expected.pairs]
    with pytest.raises(FileNotFoundError, match="no ground-truth sidecar"):
        read_ground_truth(tmp_path / "elsewhere")


def test_compressed_bag(tmp_path, scene, rendered):
    bag = write_bag(scene, [r.frame for r in rendered], tmp_path / "bag", camera="head", compressed=True)
    messages, _, _ = read_bag(bag)
    assert "/head/image_raw" not in messages
    compressed = messages["/head/image_raw/compressed"]
    assert len(compressed) == N_FRAMES
    assert compressed[0].format == "rgb8; jpeg compressed bgr8"
    assert compressed[0].header.frame_id == "head_optical_frame"
    decoded = cv2.cvtColor(cv2.imdecode(compressed[0].data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.abs(decoded.astype(float) - rendered[0].frame.rgb).mean() < 4.0
    assert {t.child_frame_id for t in messages["/tf_static"][0].transforms} == {"head_link", "head_optical_frame"}


def test_frames_that_do_not_fit_the_scene_are_refused(tmp_path, scene, rendered):
    moved = replace(rendered[0].frame, T_world_camera=np.eye(4))
    with pytest.raises(ValueError, match="frame 0: T_world_camera is not base_link"):
        write_bag(scene, [moved], tmp_path / "moved")
    without_depth = replace(rendered[0].frame, depth=None)
    with pytest.raises(ValueError, match="frame 0 lacks depth"):
        write_bag(scene, [without_depth], tmp_path / "no_depth")
    assert not (tmp_path / "moved").exists() and not (tmp_path / "no_depth").exists()
