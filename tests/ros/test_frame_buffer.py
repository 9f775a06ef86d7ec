"""The frame assembly (pure Python): ingest, stamp pairing, memory bounds, key-frame choice, posed FrameSets, and
the deferred decoding a bag uses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spatialclaw_ros.config import BufferConfig, FramesConfig, KeyframeConfig
from spatialclaw_ros.frame_buffer import (CameraBuffer, FrameBuffer, FrameRequest, FrameSelectionError, Intrinsics,
                                          NoFramesError, UnknownCameraError, keyframe_progress, select_keyframes)
from spatialclaw_ros.tf_buffer import ExtrapolationError, TransformBuffer, transform_matrix

K = np.array([[50.0, 0, 3.5], [0, 50.0, 2.5], [0, 0, 1]])
POLICY = KeyframeConfig(spacing_s=0.5, translation_m=0.5, rotation_deg=20.0)
MAP = FramesConfig(world_frame="map", min_interval_s=0.0, keyframes=POLICY)


def yaw(degrees: float, x: float = 0.0) -> np.ndarray:
    half = math.radians(degrees) / 2
    return transform_matrix((x, 0, 0), (0, 0, math.sin(half), math.cos(half)))


class Decoder:
    """A decode callable that counts its calls (the buffer must decode only what it keeps)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.calls = 0

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return self.array


def rgb(value: int) -> np.ndarray:
    return np.full((6, 8, 3), value, np.uint8)


def test_progress_takes_the_largest_of_time_travel_and_turn():
    stamps = [0.0, 1.0, 1.5, 2.0]
    poses = [yaw(0), yaw(0, x=0.25), yaw(60, x=0.25), yaw(60, x=2.25)]
    # steps: time 2, 1, 1; travel 0.5, 0, 4; turn 0, 3, 0 (units of 0.5 s, 0.5 m, 20 deg)
    np.testing.assert_allclose(keyframe_progress(stamps, poses, POLICY), [0, 2, 5, 9])
    np.testing.assert_allclose(keyframe_progress(stamps, None, POLICY), [0, 2, 3, 4])
    # a missing pose on either side of a step counts time only
    np.testing.assert_allclose(keyframe_progress(stamps, [poses[0], None, poses[2], poses[3]], POLICY), [0, 2, 3, 7])


def test_still_camera_frames_are_spread_in_time_and_a_turn_draws_more():
    stamps = np.arange(20.0)
    assert select_keyframes(stamps, None, 5, POLICY) == [0, 5, 9, 14, 19]  # targets 4.75 s apart, ties to the earlier
    # still for 10 s, then a 60 deg turn per second: the turning half gets most key frames
    poses = [yaw(0) if t < 10 else yaw(60 * (t - 9)) for t in stamps]
    # progress: 2 per still second up to t = 9, then 3 per turning second (60 deg / 20 deg); targets 0, 12.5 ... 50
    assert select_keyframes(stamps, poses, 5, POLICY) == [0, 6, 11, 15, 19]
    assert select_keyframes(stamps[:3], None, 5, POLICY) == [0, 1, 2]
    with pytest.raises(ValueError, match="at least 1"):
        select_keyframes(stamps, None, 0, POLICY)


def test_bunched_progress_still_gives_the_requested_count():
    # one huge turn between frames 1 and 2 puts every target on frame 1 or 2; the rest fill the widest gaps
    stamps = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    poses = [yaw(0), yaw(0), yaw(180), yaw(180), yaw(180), yaw(180)]
    picks = select_keyframes(stamps, poses, 4, POLICY)
    assert len(picks) == 4 and picks[0] == 0 and picks[-1] == 5


def test_frames_closer_than_the_interval_are_dropped_before_decoding():
    buffer = CameraBuffer("front", FramesConfig(min_interval_s=0.2), BufferConfig(seconds=100, max_frames=10))
    decoders = [Decoder(rgb(i)) for i in range(5)]
    kept = [buffer.add_colour(i, stamp, "/front_optical", decoders[i]) for i, stamp in
            enumerate([1.0, 1.1, 1.25, 1.19, 2.0])]
    assert kept == [True, False, True, False, True]
    assert [d.calls for d in decoders] == [1, 0, 1, 0, 1]
    frames = buffer.frames_between(0, 10)
    assert [f.stamp for f in frames] == [1.0, 1.25, 2.0] and frames[0].frame_id == "front_optical"
    stats = buffer.stats()
    assert (stats.colour_received, stats.stored, stats.nbytes) == (5, 3, 3 * 6 * 8 * 3)
    assert stats.colour_rate_hz == pytest.approx(4 / 1.0)


def test_depth_pairs_by_stamp_whichever_arrives_first():
    buffer = CameraBuffer("front", FramesConfig(min_interval_s=0.0, sync_tolerance_s=0.02),
                          BufferConfig(seconds=100, max_frames=10))
    early = Decoder(np.full((6, 8), 1500, np.uint16))
    assert buffer.add_depth(1.005, early) is False  # waits for its colour image, undecoded
    assert early.calls == 0
    buffer.add_colour(0, 1.0, "cam", Decoder(rgb(1)))
    late = Decoder(np.full((6, 8), 2.5, np.float32))
    buffer.add_colour(1, 2.0, "cam", Decoder(rgb(2)))
    assert buffer.add_depth(1.985, late) is True
    stray = Decoder(np.full((6, 8), 9.0, np.float32))
    assert buffer.add_depth(1.5, stray) is False and stray.calls == 0  # no colour within 20 ms
    wrong_size = Decoder(np.zeros((3, 4), np.float32))
    buffer.add_colour(2, 3.0, "cam", Decoder(rgb(3)))
    assert buffer.add_depth(3.0, wrong_size) is False
    frames = buffer.frames_between(0, 10)
    assert frames[0].depth.dtype == np.uint16 and int(frames[0].depth[0, 0]) == 1500 and early.calls == 1
    assert float(frames[1].depth[0, 0]) == 2.5 and frames[2].depth is None
    stats = buffer.stats()
    assert (stats.with_depth, stats.depth_size_mismatches, stats.depth_received) == (2, 1, 4)


def test_memory_is_bounded_by_age_and_count_and_thinning_keeps_the_span():
    buffer = CameraBuffer("front", MAP, BufferConfig(seconds=50.0, max_frames=10))
    for i in range(100):
        buffer.add_colour(i, float(i), "cam", Decoder(rgb(i % 250)))
    stamps = [f.stamp for f in buffer.frames_between(-1e9, 1e9)]
    # 10 frames, none older than 50 s before the newest, spread over that window rather than bunched at its end
    assert len(stamps) == 10 and stamps[-1] == 99.0 and 49.0 <= stamps[0] <= 55.0
    assert np.diff(stamps).max() < 1.5 * 50.0 / 9
    assert buffer.received_between(90.0, 99.0) == [float(s) for s in range(90, 100)]


def test_a_clock_jump_back_starts_the_buffer_afresh():
    buffer = CameraBuffer("front", MAP, BufferConfig(seconds=5.0, max_frames=10))
    for t in (100.0, 101.0, 102.0):
        buffer.add_colour(0, t, "cam", Decoder(rgb(1)))
    buffer.add_colour(1, 10.0, "cam", Decoder(rgb(2)))  # a replayed bag restarted
    assert [f.stamp for f in buffer.frames_between(-1e9, 1e9)] == [10.0]


def test_intrinsics_in_force_at_a_stamp():
    buffer = CameraBuffer("front", FramesConfig())
    assert buffer.intrinsics_at(1.0) is None
    first, second = Intrinsics(K, None, 8, 6), Intrinsics(2 * K, None, 8, 6)
    for stamp in (1.0, 2.0, 3.0):
        buffer.add_info(stamp, first)
    buffer.add_info(4.0, second)
    assert buffer.intrinsics_at(0.5) is first and buffer.intrinsics_at(3.9) is first
    assert buffer.intrinsics_at(4.0) is second and buffer.stats().info_received == 4


def posed_buffer() -> tuple[FrameBuffer, TransformBuffer]:
    """Two cameras at 10 Hz for 2 s; TF (map -> base_link driving 1 m/s along x) only up to t = 1.5 s."""
    tf = TransformBuffer(cache_time_s=100)
    for i in range(16):
        tf.set_transform("map", "base_link", 0.1 * i, transform_matrix((0.1 * i, 0, 0), (0, 0, 0, 1)))
    tf.set_transform("base_link", "front_optical", 0.0, transform_matrix((0.2, 0, 1.0), (-0.5, 0.5, -0.5, 0.5)),
                     static=True)
    tf.set_transform("base_link", "rear_optical", 0.0, transform_matrix((-0.3, 0, 1.0), (0, 0, 1, 0)), static=True)
    frames = FrameBuffer(["front", "rear"], MAP, BufferConfig(seconds=30, max_frames=40))
    for i in range(21):
        t = 0.1 * i
        frames.add_info("front", t, Intrinsics(K, None, 8, 6))
        frames.add_colour("front", t, "front_optical", Decoder(rgb(i)))
        frames.add_depth("front", t, Decoder(np.full((6, 8), 1000 + i, np.uint16)))
        frames.add_colour("rear", t + 0.05, "rear_optical", Decoder(rgb(100 + i)))
    return frames, tf


def test_frame_set_has_poses_intrinsics_metric_depth_and_absolute_indices():
    frames, tf = posed_buffer()
    chosen = frames.frame_set(FrameRequest(end_s=2.0, window_s=1.0, max_frames=4), tf, MAP)
    front = [f for f in chosen.frames if f.camera == "front"]
    rear = [f for f in chosen.frames if f.camera == "rear"]
    # front frames 10..15 have poses (TF ends at 1.5 s); progress is linear, so the ends and the nearest-to-middle
    assert [int(f.rgb[0, 0, 0]) for f in front] == [10, 15]
    assert [int(f.rgb[0, 0, 0]) for f in rear] == [110, 114]  # rear 1.05 .. 1.45 s
    assert [f.index for f in front] == [20, 30]  # every offered image took an index: front i -> 2 i, rear -> 2 i + 1
    for f in front:
        np.testing.assert_allclose(f.depth, (1000 + int(f.rgb[0, 0, 0])) / 1000.0)
        np.testing.assert_array_equal(f.K, K)
        np.testing.assert_allclose(f.poses["base_link"][:3, 3], [f.stamp, 0, 0], atol=1e-9)
        np.testing.assert_allclose(f.T_world_camera[:3, 3], [f.stamp + 0.2, 0, 1.0], atol=1e-9)
    assert all(f.depth is None and f.K is None for f in rear)
    assert chosen.world_frame == "map" and chosen.is_video
    # images received with stamps in [1.0, 2.0]: front 1.0 ... 2.0 (11) and rear 1.05 ... 1.95 (10)
    assert chosen.total_frames == 21 and chosen.fps == pytest.approx(20 / 1.0)
    assert [f.stamp for f in chosen.frames] == sorted(f.stamp for f in chosen.frames)
    assert chosen.extra["cameras_used"] == ["front", "rear"]


def test_frame_set_failures_say_what_is_wrong():
    frames, tf = posed_buffer()
    with pytest.raises(NoFramesError, match=r"no frames in the window \[50.000, 60.000\].*camera front: frames from 0.000 to 2.000"):
        frames.frame_set(FrameRequest(end_s=60.0, window_s=10.0, max_frames=4), tf, MAP)
    with pytest.raises(ExtrapolationError, match="camera front: none of its 4 frames in the window has a pose in 'map'"):
        frames.frame_set(FrameRequest(end_s=2.0, window_s=0.35, max_frames=4, cameras=["front"]), tf, MAP)
    with pytest.raises(UnknownCameraError, match="unknown camera 'left'; configured cameras: front, rear"):
        frames.frame_set(FrameRequest(end_s=2.0, window_s=1.0, max_frames=4, cameras=["left"]), tf, MAP)
    with pytest.raises(FrameSelectionError, match="max_frames=1 is fewer than the 2 selected cameras"):
        frames.frame_set(FrameRequest(end_s=2.0, window_s=1.0, max_frames=1), tf, MAP)
    only_front = frames.frame_set(FrameRequest(end_s=1.5, window_s=1.5, max_frames=3, cameras=["front"]), tf, MAP)
    assert [int(f.rgb[0, 0, 0]) for f in only_front.frames] == [0, 7, 15]


def test_the_world_frame_defaults_to_the_root_of_the_cameras_tree_and_no_tf_means_no_poses():
    frames, tf = posed_buffer()
    rooted = frames.frame_set(FrameRequest(end_s=1.5, window_s=1.0, max_frames=2), tf, FramesConfig(min_interval_s=0))
    assert rooted.world_frame == "map" and all(f.T_world_camera is not None for f in rooted.frames)
    unposed = frames.frame_set(FrameRequest(end_s=2.0, window_s=1.0, max_frames=4), TransformBuffer(), FramesConfig())
    assert unposed.world_frame == "world" and len(unposed.frames) == 4
    assert all(f.T_world_camera is None and f.poses == {} for f in unposed.frames)


def test_images_without_a_frame_id_take_the_camera_info_frame_or_are_refused():
    buffer = CameraBuffer("front", MAP)
    with pytest.raises(ValueError, match="no frame_id and no CameraInfo has named one"):
        buffer.add_colour(0, 1.0, "", Decoder(rgb(1)))
    buffer.add_info(1.0, Intrinsics(K, None, 8, 6), "/front_optical")
    assert buffer.add_colour(1, 2.0, "", Decoder(rgb(2)))
    assert buffer.frames_between(0, 10)[0].frame_id == "front_optical"
    assert buffer.stats().without_frame_id == 1


def test_deferred_decoding_decodes_only_the_chosen_frames_after_prefetch():
    """A bag's path: frames are kept as decoders and decoded once chosen, after ``prefetch`` has seen them."""
    tf = TransformBuffer()
    tf.set_transform("map", "cam", 0.0, np.eye(4), static=True)
    frames = FrameBuffer(["front"], MAP, decode_on_arrival=False)
    colours = [Decoder(rgb(i)) for i in range(10)]
    depths = [Decoder(np.full((6, 8) if i != 9 else (3, 4), 1000, np.uint16)) for i in range(10)]
    for i in range(10):
        frames.add_colour("front", float(i), "cam", colours[i])
        frames.add_depth("front", float(i), depths[i])
    seen = []
    chosen = frames.frame_set(FrameRequest(9.0, math.inf, 3), tf, MAP,
                              prefetch=lambda picked: seen.extend(f.rgb for f in picked))
    assert [int(f.rgb[0, 0, 0]) for f in chosen.frames] == [0, 4, 9] and seen == [colours[0], colours[4], colours[9]]
    assert [d.calls for d in colours] == [1, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert [d.calls for d in depths] == [1, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert chosen.frames[-1].depth is None  # its depth is another size: dropped and counted, as live
    assert frames.stats()[0].depth_size_mismatches == 1
    assert chosen.extra["window"] == [0.0, 9.0]


class RecordingSource:
    """A TransformSource that says how long each lookup may wait (tf2 waits; this one answers at once)."""

    def __init__(self) -> None:
        self.inner = posed_buffer()[1]
        self.waits: list[tuple[str, float, float]] = []

    def lookup(self, target, source, stamp_s=None, timeout_s=0.0):
        self.waits.append((source, stamp_s, timeout_s))
        return self.inner.lookup(target, source, stamp_s)

    def frames(self):
        return self.inner.frames()

    def root(self, frame):
        return self.inner.root(frame)


def test_only_each_cameras_newest_frame_waits_for_tf_within_one_budget():
    frames, _ = posed_buffer()
    source = RecordingSource()
    frames.frame_set(FrameRequest(end_s=1.5, window_s=0.5, max_frames=2), source, MAP, tf_timeout_s=5.0)
    cameras = [(name, stamp, wait) for name, stamp, wait in source.waits if name.endswith("optical")]
    waiting = [(name, round(stamp, 6)) for name, stamp, wait in cameras if wait > 0]
    assert waiting == [("front_optical", 1.5), ("rear_optical", 1.45)]
    assert all(wait <= 5.0 for _, _, wait in cameras) and len(cameras) == 6 + 5
