"""``tools.Time``: convert between absolute frame indices and seconds on the question's clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..frames import Frame, FrameSet
from .shared import Shared

if TYPE_CHECKING:
    from . import ToolContext


def frame_lookup(frames: FrameSet, frame_index: int) -> Frame:
    """The frame with absolute index ``frame_index``, or a KeyError listing the valid indices."""
    for frame in frames.frames:
        if frame.index == frame_index:
            return frame
    raise KeyError(f"no frame with index {frame_index!r}; valid frame indices: {[f.index for f in frames.frames]}")


def frame_seconds(frames: FrameSet) -> dict[int, float]:
    """Seconds of each frame since the earliest frame, from stamps; from Metadata fps when all stamps are equal."""
    stamps = np.array([f.stamp for f in frames.frames], dtype=float)
    indices = np.array([f.index for f in frames.frames])
    if len(frames.frames) > 1 and np.ptp(stamps) == 0.0 and frames.fps > 0:
        seconds = (indices - indices.min()) / frames.fps
    else:
        seconds = stamps - stamps.min()
    return {int(i): float(s) for i, s in zip(indices, seconds)}


class Time(Shared):
    """Seconds since the first key frame, from stamps (equal stamps: (index - first) / fps); ABSOLUTE frame
    indices, interpolated between key frames."""

    def __init__(self, context: ToolContext) -> None:
        self._frames = context.frames
        self._seconds = frame_seconds(context.frames)

    def frame_to_seconds(self, frame_index: int) -> float:
        """Time (s) of a frame index."""
        if frame_index in self._seconds:
            return self._seconds[frame_index]
        indices = np.array(sorted(self._seconds), dtype=float)
        times = np.array([self._seconds[int(i)] for i in indices])
        if indices[0] <= frame_index <= indices[-1]:
            return float(np.interp(frame_index, indices, times))
        if self._frames.fps <= 0:
            frame_lookup(self._frames, frame_index)  # KeyError listing the valid indices
        end = 0 if frame_index < indices[0] else -1
        return float(times[end] + (frame_index - indices[end]) / self._frames.fps)

    def seconds_to_frame(self, seconds: float) -> int:
        """Absolute index of the key frame nearest to a time (s), clamped."""
        indices = list(self._seconds)
        times = np.array(list(self._seconds.values()))
        return indices[int(np.argmin(np.abs(times - float(seconds))))]

    def frame_range_to_seconds(self, start_frame: int, end_frame: int) -> float:
        """Seconds from start_frame to end_frame."""
        return self.frame_to_seconds(end_frame) - self.frame_to_seconds(start_frame)

    def get_frame_at_time(self, seconds: float) -> int:
        """Same as seconds_to_frame (image: InputImages.frame(index))."""
        return self.seconds_to_frame(seconds)
