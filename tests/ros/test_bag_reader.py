"""read_bag on real rosbag2 files written here with rosbags (hand-made numbers) and by the scene renderer.

The hand-made bag's cameras run at 10 Hz; most tests keep every image (``EVERY``: no minimum interval) so the
numbers stay simple, and one checks that the default interval thins a bag exactly as it thins live topics."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from ros_messages import TFMessage, TYPESTORE, camera_info, compressed, image, transform_stamped
from rosbags.rosbag2 import StoragePlugin, Writer

from spatialclaw_ros.bag_reader import read_bag
from spatialclaw_ros.config import FramesConfig
from spatialclaw_ros.frame_buffer import FrameBuffer
from spatialclaw_ros.ros.conversions import array_to_image_fields
from spatialclaw_ros.tf_buffer import UnknownFrameError, transform_matrix, transform_parts

T0 = 1_700_000_000.0
EVERY = FramesConfig(min_interval_s=0.0)
COUNT = 30  # images per camera, 10 Hz
WIDTH, HEIGHT = 8, 6
K_FRONT = np.array([[10.0, 0, 3.5], [0, 11.0, 2.5], [0, 0, 1]])
K_REAR = np.array([[20.0, 0, 4.0], [0, 20.0, 3.0], [0, 0, 1]])
# base_link -> front_link: 0.2 m forward, 1 m up; front_link -> optical: the REP 103 link-to-optical turn.
T_BASE_FRONT_LINK = transform_matrix((0.2, 0.0, 1.0), (0, 0, 0, 1))
T_LINK_OPTICAL = transform_matrix((0, 0, 0), (-0.5, 0.5, -0.5, 0.5))
# base_link -> rear optical: 0.3 m back, 0.8 m up, looking backwards (yaw 180 deg then the optical turn).
T_BASE_REAR = transform_matrix((-0.3, 0.0, 0.8), (0, 0, 1, 0)) @ T_LINK_OPTICAL


def T_map_base(t: float) -> np.ndarray:
    """The robot drives 0.5 m/s along x while turning 0.2 rad/s (both linear in time, so interpolation is exact)."""
    dt = t - T0
    return transform_matrix((0.5 * dt, 0.0, 0.0), (0, 0, math.sin(0.1 * dt), math.cos(0.1 * dt)))


def ns(t: float) -> int:
    return round(t * 1e9)


def write_test_bag(path: Path, *, storage=StoragePlugin.MCAP, depth_offset_s: float = 0.0, with_tf: bool = True) -> Path:
    """Camera front: raw rgb8 + registered 16UC1 depth; camera rear: PNG CompressedImage; /tf at 20 Hz."""
    with Writer(path, version=9, storage_plugin=storage) as writer:
        def connect(topic, msgtype):
            return writer.add_connection(topic, msgtype, typestore=TYPESTORE)

        topics = {
            "tf": connect("/tf", "tf2_msgs/msg/TFMessage"),
            "tf_static": connect("/tf_static", "tf2_msgs/msg/TFMessage"),
            "front": connect("/front/image_raw", "sensor_msgs/msg/Image"),
            "front_depth": connect("/front/depth/image_raw", "sensor_msgs/msg/Image"),
            "front_info": connect("/front/camera_info", "sensor_msgs/msg/CameraInfo"),
            "rear": connect("/rear/image_raw/compressed", "sensor_msgs/msg/CompressedImage"),
            "rear_info": connect("/rear/camera_info", "sensor_msgs/msg/CameraInfo"),
        }
        messages = []  # (stamp, connection key, message)
        if with_tf:
            def stamped(parent, child, t, T):
                translation, quaternion = transform_parts(T)
                return transform_stamped(parent, child, t, translation, quaternion)

            messages.append((T0 - 0.1, "tf_static", TFMessage(transforms=[
                stamped("base_link", "front_link", T0, T_BASE_FRONT_LINK),
                stamped("front_link", "front_optical_frame", T0, T_LINK_OPTICAL),
                stamped("base_link", "rear_optical_frame", T0, T_BASE_REAR)])))
            for step in range(63):  # T0 - 0.1 ... T0 + 3.0
                t = T0 - 0.1 + 0.05 * step
                messages.append((t, "tf", TFMessage(transforms=[stamped("map", "base_link", t, T_map_base(t))])))
        for i in range(COUNT):
            t = T0 + 0.1 * i
            rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            rgb[..., 0], rgb[..., 1], rgb[..., 2] = i, 1, 2
            messages.append((t, "front", image(array_to_image_fields(rgb, "rgb8"), t, "front_optical_frame")))
            depth = np.full((HEIGHT, WIDTH), 1000 + 10 * i, np.uint16)
            messages.append((t + depth_offset_s, "front_depth",
                             image(array_to_image_fields(depth, "16UC1"), t + depth_offset_s, "front_optical_frame")))
            messages.append((t, "front_info", camera_info(K_FRONT, WIDTH, HEIGHT, t, "front_optical_frame")))
            t_rear = t + 0.05
            ok, png = cv2.imencode(".png", np.full((HEIGHT, WIDTH, 3), 100 + i, np.uint8))
            messages.append((t_rear, "rear", compressed(png.tobytes(), "bgr8; png compressed bgr8", t_rear, "rear_optical_frame")))
            messages.append((t_rear, "rear_info", camera_info(K_REAR, WIDTH, HEIGHT, t_rear, "rear_optical_frame")))
        for t, key, msg in sorted(messages, key=lambda m: m[0]):
            connection = topics[key]
            writer.write(connection, ns(t), TYPESTORE.serialize_cdr(msg, connection.msgtype))
    return path


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    return write_test_bag(tmp_path_factory.mktemp("bags") / "drive")


def by_camera(frames, camera):
    return [f for f in frames.frames if f.camera == camera]


def test_reads_every_camera_with_poses_depth_and_intrinsics(bag):
    frames = read_bag(bag, EVERY, max_frames=6)
    assert frames.world_frame == "map"
    assert frames.total_frames == 60 and frames.is_video
    assert frames.fps == pytest.approx(59 / 2.95)
    front, rear = by_camera(frames, "front"), by_camera(frames, "rear")
    # 3 per camera, evenly spread: image 0, the one nearest 1.45 s (14) and the last (29).
    assert [int(f.rgb[0, 0, 0]) for f in front] == [0, 14, 29]
    assert [int(f.rgb[0, 0, 0]) for f in rear] == [100, 114, 129]
    # absolute indices count both streams interleaved by stamp: front i -> 2i, rear i -> 2i + 1.
    assert [f.index for f in front] == [0, 28, 58] and [f.index for f in rear] == [1, 29, 59]
    assert [f.stamp for f in frames.frames] == sorted(f.stamp for f in frames.frames)
    for f, i in zip(front, (0, 14, 29)):
        assert f.stamp == pytest.approx(T0 + 0.1 * i, abs=1e-6)
        assert f.frame_id == "front_optical_frame"
        assert f.rgb[0, 0].tolist() == [i, 1, 2]
        np.testing.assert_allclose(f.depth, np.full((HEIGHT, WIDTH), (1000 + 10 * i) / 1000.0), rtol=1e-6)
        np.testing.assert_array_equal(f.K, K_FRONT)
        expected = T_map_base(f.stamp) @ T_BASE_FRONT_LINK @ T_LINK_OPTICAL
        np.testing.assert_allclose(f.T_world_camera, expected, atol=1e-6)
        np.testing.assert_allclose(f.poses["base_link"], T_map_base(f.stamp), atol=1e-6)
        # the optical z axis looks along base_link x (REP 103 link -> optical).
        np.testing.assert_allclose(f.T_world_camera[:3, 2], T_map_base(f.stamp)[:3, 0], atol=1e-9)
    for f in rear:
        assert f.depth is None
        np.testing.assert_array_equal(f.K, K_REAR)
        np.testing.assert_allclose(f.T_world_camera, T_map_base(f.stamp) @ T_BASE_REAR, atol=1e-6)
    assert frames.extra["camera_topics"] == {"front": "/front/image_raw", "rear": "/rear/image_raw/compressed"}
    assert frames.extra["bag_start_s"] == pytest.approx(T0 - 0.1)


def test_frames_end_at_the_requested_time(bag):
    # bag start is T0 - 0.1 (the first TF); at_s = 1.02 ends at T0 + 0.92.
    frames = read_bag(bag, EVERY, at_s=1.02, max_frames=4)
    assert [int(f.rgb[0, 0, 0]) for f in by_camera(frames, "front")] == [0, 9]
    assert [int(f.rgb[0, 0, 0]) for f in by_camera(frames, "rear")] == [100, 108]
    with pytest.raises(ValueError, match="cannot be negative"):
        read_bag(bag, at_s=-1.0)


def test_cameras_are_chosen_by_name_or_topic(bag):
    front = read_bag(bag, EVERY, cameras=["front"], max_frames=3)
    assert {f.camera for f in front.frames} == {"front"}
    assert [int(f.rgb[0, 0, 0]) for f in front.frames] == [0, 14, 29]
    assert front.total_frames == 30
    rear = read_bag(bag, EVERY, cameras=["/rear/image_raw/compressed"], max_frames=2)
    assert [int(f.rgb[0, 0, 0]) for f in rear.frames] == [100, 129]


def test_unknown_camera_lists_the_image_topics(bag):
    with pytest.raises(ValueError) as error:
        read_bag(bag, cameras=["left"])
    message = str(error.value)
    assert "['left']" in message and "front (/front/image_raw)" in message
    assert "'/front/depth/image_raw'" in message and "'/rear/image_raw/compressed'" in message
    with pytest.raises(ValueError, match="fewer than the 2 selected cameras"):
        read_bag(bag, max_frames=1)


def test_world_frame_can_be_chosen_and_must_exist(bag):
    frames = read_bag(bag, FramesConfig(world_frame="base_link"), cameras=["front"], max_frames=2)
    assert frames.world_frame == "base_link"
    for f in frames.frames:
        np.testing.assert_allclose(f.T_world_camera, T_BASE_FRONT_LINK @ T_LINK_OPTICAL, atol=1e-9)
        np.testing.assert_allclose(f.poses["base_link"], np.eye(4), atol=1e-12)
    with pytest.raises(UnknownFrameError, match="frame 'odom' does not exist in the TF tree; known frames: base_link, "
                                                "front_link"):
        read_bag(bag, FramesConfig(world_frame="odom"))


def test_the_default_interval_thins_a_bag_as_it_thins_live_topics(bag):
    frames = read_bag(bag, cameras=["front"], max_frames=30)  # FramesConfig(): min_interval_s 0.2
    live = FrameBuffer(["front"], FramesConfig())  # what the node keeps of the same stream
    for i in range(COUNT):
        live.add_colour("front", T0 + 0.1 * i, "front_optical_frame", lambda: np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    kept = [f.stamp for f in live.camera("front").frames_between(-math.inf, math.inf)]
    assert [f.stamp for f in frames.frames] == kept and 13 <= len(kept) <= 15
    assert frames.total_frames == 30  # received, kept or not


def test_depth_pairs_with_the_nearest_image_within_the_tolerance(tmp_path):
    shifted = write_test_bag(tmp_path / "offset", depth_offset_s=0.085)
    # colour i at T0 + 0.1 i; depth j at T0 + 0.1 j + 0.085: the nearest to colour i is depth i - 1 (0.015 s away);
    # colour 0 has none within the default 0.02 s.
    frames = read_bag(shifted, EVERY, cameras=["front"], max_frames=3)
    assert [int(f.rgb[0, 0, 0]) for f in frames.frames] == [0, 14, 29]
    assert frames.frames[0].depth is None
    assert [float(f.depth[0, 0]) for f in frames.frames[1:]] == pytest.approx([1.13, 1.28])
    tight = read_bag(shifted, FramesConfig(min_interval_s=0.0, sync_tolerance_s=0.01), cameras=["front"], max_frames=3)
    assert all(f.depth is None for f in tight.frames)


@pytest.mark.parametrize("storage, suffix", [(StoragePlugin.MCAP, ".mcap"), (StoragePlugin.SQLITE3, ".db3")])
def test_single_storage_files_and_sqlite_bags(tmp_path, storage, suffix):
    directory = write_test_bag(tmp_path / "drive", storage=storage)
    (single,) = directory.glob(f"*{suffix}")
    for source in (directory, single):
        frames = read_bag(source, EVERY, cameras=["front"], max_frames=2)
        assert [int(f.rgb[0, 0, 0]) for f in frames.frames] == [0, 29]
        np.testing.assert_allclose(frames.frames[1].T_world_camera,
                                   T_map_base(T0 + 2.9) @ T_BASE_FRONT_LINK @ T_LINK_OPTICAL, atol=1e-6)


def test_a_bag_without_tf_gives_frames_without_poses(tmp_path):
    bag = write_test_bag(tmp_path / "no_tf", with_tf=False)
    frames = read_bag(bag, EVERY, max_frames=2)
    assert frames.world_frame == "world"
    assert all(f.T_world_camera is None and f.poses == {} for f in frames.frames)
    assert frames.metadata()["has_poses"] is False and frames.metadata()["has_intrinsics"] is True
    with pytest.raises(UnknownFrameError, match=r"frame 'map' does not exist in the TF tree; known frames: none"):
        read_bag(bag, FramesConfig(world_frame="map"))


def test_scene_bag_round_trips_within_a_millimetre(tmp_path):
    pytest.importorskip("open3d", reason="the scene renderer needs open3d (extra 'scenes')")
    from spatialclaw_ros.scenes.bag import write_bag
    from spatialclaw_ros.scenes.generator import living_room
    from spatialclaw_ros.scenes.render import SceneRenderer

    scene = living_room(n_frames=5, width=64, height=48)
    renderer = SceneRenderer(scene)
    rendered = [renderer.render_frame(i).frame for i in range(5)]
    for is_compressed in (False, True):
        path = write_bag(scene, rendered, tmp_path / f"room_{is_compressed}", compressed=is_compressed)
        frames = read_bag(path, EVERY, max_frames=5)
        assert frames.world_frame == scene.world_frame and len(frames.frames) == 5
        for got, truth in zip(frames.frames, rendered):
            assert got.stamp == pytest.approx(truth.stamp, abs=1e-6)
            np.testing.assert_allclose(got.T_world_camera, truth.T_world_camera, atol=1e-3)
            np.testing.assert_allclose(got.poses["base_link"], truth.poses["base_link"], atol=1e-3)
            np.testing.assert_allclose(got.K, truth.K)
            valid = np.isfinite(truth.depth)
            assert np.array_equal(np.isfinite(got.depth), valid)
            assert np.abs(got.depth[valid] - truth.depth[valid]).max() <= 0.0005 + 1e-6  # millimetre quantisation
            if is_compressed:
                # JPEG q90 with 4:2:0 chroma on a small textured image: about 4 grey levels off on average,
                # against about 13 had the channels been swapped.
                assert np.abs(got.rgb.astype(int) - truth.rgb).mean() < 6.0
                assert np.abs(got.rgb[..., ::-1].astype(int) - truth.rgb).mean() > 9.0
            else:
                np.testing.assert_array_equal(got.rgb, truth.rgb)
