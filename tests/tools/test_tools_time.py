"""tools.Time: frame <-> seconds on the key frames' clock, with absolute frame indices."""

from __future__ import annotations

import numpy as np
import pytest
from tool_scenes import blank_frame, make_context

from spatialclaw_ros.frames import Frame
from spatialclaw_ros.tools.timing import Time

STAMPS = {10: 100.0, 25: 100.5, 40: 101.0, 70: 102.0}


@pytest.fixture
def time() -> Time:
    frames = [Frame(index=i, rgb=np.full((4, 6, 3), i, np.uint8), stamp=s) for i, s in STAMPS.items()]
    return Time(make_context(frames, is_video=True, fps=15.0))


def test_frame_to_seconds_is_relative_to_the_first_key_frame(time):
    assert [time.frame_to_seconds(i) for i in STAMPS] == [0.0, 0.5, 1.0, 2.0]


def test_seconds_to_frame_picks_the_nearest_key_frame(time):
    assert time.seconds_to_frame(0.0) == 10
    assert time.seconds_to_frame(0.8) == 40
    assert time.seconds_to_frame(1.6) == 70
    assert time.seconds_to_frame(2.2) == 70
    assert time.seconds_to_frame(5.0) == 70 and time.seconds_to_frame(-3) == 10  # clamped, as in the reference


def test_frame_range_and_frame_at_time(time):
    assert time.frame_range_to_seconds(25, 70) == 1.5
    assert time.get_frame_at_time(0.45) == 25


def test_other_indices_are_interpolated_or_extrapolated_at_fps(time):
    assert time.frame_to_seconds(55) == pytest.approx(1.5)  # halfway between 40 (1.0 s) and 70 (2.0 s)
    assert time.frame_to_seconds(85) == pytest.approx(2.0 + 15 / 15.0)  # beyond the last key frame at 15 fps
    assert time.frame_to_seconds(np.int64(25)) == 0.5


def test_without_fps_an_index_beyond_the_key_frames_lists_them():
    time = Time(make_context([blank_frame(i, stamp=0.1 * i) for i in (3, 5)]))
    assert time.frame_to_seconds(4) == pytest.approx(0.1)
    with pytest.raises(KeyError, match=r"no frame with index 9; valid frame indices: \[3, 5\]"):
        time.frame_to_seconds(9)


def test_equal_stamps_fall_back_to_fps():
    time = Time(make_context([blank_frame(i) for i in (30, 60, 90)], is_video=True, fps=10.0))
    assert [time.frame_to_seconds(i) for i in (30, 60, 90)] == [0.0, 3.0, 6.0]
    assert time.seconds_to_frame(4.6) == 90
