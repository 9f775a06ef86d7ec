"""Key-frame sampling from a real video file written with OpenCV."""

import cv2
import numpy as np
import pytest

from spatialclaw_ros.video import evenly_spaced, load_video


def write_video(path, count, fps=10.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for i in range(count):
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:, :, 2] = i * 5  # red channel (BGR) encodes the frame number
        writer.write(frame)
    writer.release()


@pytest.mark.parametrize("total, count, expected", [
    (10, 3, [0, 4, 9]), (5, 8, [0, 1, 2, 3, 4]), (100, 5, [0, 25, 50, 74, 99]), (7, 1, [0]),
])
def test_evenly_spaced(total, count, expected):
    assert evenly_spaced(total, count) == expected


def test_evenly_spaced_rejects_zero():
    with pytest.raises(ValueError, match="at least 1"):
        evenly_spaced(5, 0)


def test_load_video_samples_absolute_indices(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, 40)
    frames = load_video(path, 5)
    assert frames.is_video and frames.fps == pytest.approx(10.0) and frames.total_frames == 40
    assert [f.index for f in frames.frames] == [0, 10, 20, 29, 39]
    assert [f.stamp for f in frames.frames] == pytest.approx([0.0, 1.0, 2.0, 2.9, 3.9])
    for frame in frames.frames:
        assert frame.rgb.shape == (48, 64, 3)
        assert abs(int(frame.rgb[24, 32, 0]) - frame.index * 5) <= 6  # the right frame, in RGB order


def test_load_video_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_video(tmp_path / "missing.mp4", 4)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="bad.mp4"):
        load_video(bad, 4)
