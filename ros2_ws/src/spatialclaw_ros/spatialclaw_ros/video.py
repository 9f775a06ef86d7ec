"""Key frames sampled evenly from a video file (OpenCV), as the FrameSet of one question."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .frames import Frame, FrameSet

VIDEO_CAMERA = "video"


def evenly_spaced(total: int, count: int) -> list[int]:
    """``count`` distinct positions in ``range(total)`` spread evenly, first and last included (all if fewer)."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if total <= count:
        return list(range(total))
    return [int(i) for i in np.linspace(0, total - 1, count).round()]


def _count_frames(path: Path) -> int:
    """Frames in a video whose container does not say, counted by decoding."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def load_video(path: str | Path, max_frames: int) -> FrameSet:
    """Decode ``max_frames`` evenly spaced frames of ``path``; indices are the video's frame numbers.

    Stamps are ``index / fps`` seconds (0 when the file gives no frame rate).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"video file {path} does not exist")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"OpenCV cannot open {path} as a video")
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if total <= 0:
        total = _count_frames(path)
    wanted = set(evenly_spaced(total, max_frames))
    frames: list[Frame] = []
    index = 0
    try:
        while wanted and index <= max(wanted) and capture.grab():
            if index in wanted:
                ok, bgr = capture.retrieve()
                if ok:
                    frames.append(Frame(index=index, rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
                                        stamp=index / fps if fps > 0 else 0.0, camera=VIDEO_CAMERA))
            index += 1
    finally:
        capture.release()
    if not frames:
        raise ValueError(f"no frames could be decoded from {path}")
    return FrameSet(frames=frames, is_video=True, fps=fps, total_frames=total, extra={"source": path.name})
