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
    assert time.seconds_to_frame(2.2) == 70  # within half a typical key-frame spacing (0.5 s) of the end
    with pytest.raises(ValueError, match=r"outside the key frames, which span 0.000 to 2.000 s"):
        time.seconds_to_frame(5.0)


def test_frame_range_and_frame_at_time(time):
    span = time.frame_range_to_seconds(25, 70)
    assert (span.start_s, span.end_s, span.duration_s) == (0.5, 2.0, 1.5)
    image = time.get_frame_at_time(0.45)
    assert image.frame_index == 25
    assert np.asarray(image).shape == (4, 6, 3) and (np.asarray(image) == 25).all()


def test_unknown_index_lists_the_valid_ones(time):
    with pytest.raises(KeyError, match=r"no frame with index 11; valid frame indices: \[10, 25, 40, 70\]"):
        time.frame_to_seconds(11)
    with pytest.raises(KeyError, match="valid frame indices"):
        time.frame_range_to_seconds(10, 3)


def test_equal_stamps_fall_back_to_fps():
    time = Time(make_context([blank_frame(i) for i in (30, 60, 90)], is_video=True, fps=10.0))
    assert [time.frame_to_seconds(i) for i in (30, 60, 90)] == [0.0, 3.0, 6.0]
    assert time.seconds_to_frame(4.6) == 90
