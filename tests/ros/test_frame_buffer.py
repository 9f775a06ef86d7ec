"""The live frame buffer (pure Python): ingest, stamp pairing, memory bounds, key-frame choice, posed FrameSets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spatialclaw_ros.frame_buffer import (BufferLimits, CameraBuffer, FrameBuffer, FrameRequest, FrameSelectionError,
                                          Intrinsics, KeyframePolicy, NoFramesError, UnknownCameraError,
                                          keyframe_progress, select_keyframes)
from spatialclaw_ros.tf_buffer import ExtrapolationError, TransformBuffer, transform_matrix

K = np.array([[50.0, 0, 3.5], [0, 50.0, 2.5], [0, 0, 1]])
POLICY = KeyframePolicy(spacing_s=0.5, translation_m=0.5, rotation_deg=20.0)


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
    buffer = CameraBuffer("front", BufferLimits(seconds=100, max_frames=10, min_interval_s=0.2))
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
    buffer = CameraBuffer("front", BufferLimits(seconds=100, max_frames=10, min_interval_s=0.0, sync_tolerance_s=0.02))
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
    buffer = CameraBuffer("front", BufferLimits(seconds=50.0, max_frames=10, min_interval_s=0.0))
    for i in range(100):
        buffer.add_colour(i, float(i), "cam", Decoder(rgb(i % 250)))
    stamps = [f.stamp for f in buffer.frames_between(-1e9, 1e9)]
    # 10 frames, none older than 50 s before the newest, spread over that window rather than bunched at its end
    assert len(stamps) == 10 and stamps[-1] == 99.0 and 49.0 <= stamps[0] <= 55.0
    assert np.diff(stamps).max() < 1.5 * 50.0 / 9
    assert buffer.received_between(90.0, 99.0) == [float(s) for s in range(90, 100)]


def test_a_clock_jump_back_starts_the_buffer_afresh():
    buffer = CameraBuffer("front", BufferLimits(seconds=5.0, max_frames=10, min_interval_s=0.0))
    for t in (100.0, 101.0, 102.0):
        buffer.add_colour(0, t, "cam", Decoder(rgb(1)))
    buffer.add_colour(1, 10.0, "cam", Decoder(rgb(2)))  # a replayed bag restarted
    assert [f.stamp for f in buffer.frames_between(-1e9, 1e9)] == [10.0]


def test_intrinsics_in_force_at_a_stamp():
    buffer = CameraBuffer("front", BufferLimits())
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
    frames = FrameBuffer(["front", "rear"], BufferLimits(seconds=30, max_frames=40, min_interval_s=0.0), POLICY)
    for i in range(21):
        t = 0.1 * i
        frames.add_info("front", t, Intrinsics(K, None, 8, 6))
        frames.add_colour("front", t, "front_optical", Decoder(rgb(i)))
        frames.add_depth("front", t, Decoder(np.full((6, 8), 1000 + i, np.uint16)))
        frames.add_colour("rear", t + 0.05, "rear_optical", Decoder(rgb(100 + i)))
    return frames, tf


def test_frame_set_has_poses_intrinsics_metric_depth_and_absolute_indices():
    frames, tf = posed_buffer()
    chosen = frames.frame_set(FrameRequest(end_s=2.0, window_s=1.0, max_frames=4), tf, "map")
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
        frames.frame_set(FrameRequest(end_s=60.0, window_s=10.0, max_frames=4), tf, "map")
    with pytest.raises(ExtrapolationError, match="camera front: none of its 4 frames in the window has a pose in 'map'"):
        frames.frame_set(FrameRequest(end_s=2.0, window_s=0.35, max_frames=4, cameras=["front"]), tf, "map")
    with pytest.raises(UnknownCameraError, match="unknown camera 'left'; configured cameras: front, rear"):
        frames.frame_set(FrameRequest(end_s=2.0, window_s=1.0, max_frames=4, cameras=["left"]), tf, "map")
    with pytest.raises(FrameSelectionError, match="max_frames=1 is fewer than the 2 selected cameras"):
        frames.frame_set(FrameRequest(end_s=2.0, window_s=1.0, max_frames=1), tf, "map")
    only_front = frames.frame_set(FrameRequest(end_s=1.5, window_s=1.5, max_frames=3, cameras=["front"]), tf, "map")
    assert [int(f.rgb[0, 0, 0]) for f in only_front.frames] == [0, 7, 15]
