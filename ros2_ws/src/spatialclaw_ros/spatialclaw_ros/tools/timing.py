"""``tools.Time``: convert between absolute frame indices and seconds on the question's clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..frames import Frame, FrameSet
from ..imaging import frame_image
from .measures import TimeSpan

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


class Time:
    """Seconds since the first key frame, from stamps (equal stamps: (index - first) / fps). Absolute frame
    indices; an unknown one raises KeyError listing the valid ones."""

    def __init__(self, context: ToolContext) -> None:
        self._frames = context.frames
        self._seconds = frame_seconds(context.frames)

    def frame_to_seconds(self, frame_index: int) -> float:
        """Time (s) of a key frame."""
        frame_lookup(self._frames, frame_index)
        return self._seconds[frame_index]

    def seconds_to_frame(self, seconds: float) -> int:
        """Index of the key frame nearest to a time (s); ValueError outside the recording."""
        times = np.array(list(self._seconds.values()))
        indices = list(self._seconds)
        spacing = float(np.median(np.diff(np.sort(times)))) if times.size > 1 else 0.0
        if not times.min() - spacing / 2 <= seconds <= times.max() + spacing / 2:
            raise ValueError(f"{seconds} s is outside the key frames, which span "
                             f"{times.min():.3f} to {times.max():.3f} s")
        return indices[int(np.argmin(np.abs(times - seconds)))]

    def frame_range_to_seconds(self, start_frame: int, end_frame: int) -> TimeSpan:
        """TimeSpan(start_s, end_s, duration_s) between two key frames."""
        return TimeSpan(self.frame_to_seconds(start_frame), self.frame_to_seconds(end_frame))

    def get_frame_at_time(self, seconds: float) -> Image.Image:
        """PIL image of the key frame nearest to a time (s), with .frame_index."""
        return frame_image(frame_lookup(self._frames, self.seconds_to_frame(seconds)))
