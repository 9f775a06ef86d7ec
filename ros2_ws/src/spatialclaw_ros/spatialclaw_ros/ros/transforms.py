"""The node's TF: a ``tf2_ros.Buffer`` (fed by a ``TransformListener`` on the ingest node) behind the frame
assembly's ``TransformSource`` interface: 4x4 lookups at a stamp with a timeout, and tf2's exceptions as the
TransformError subclasses the core knows, carrying tf2's own message."""

from __future__ import annotations

import numpy as np
import tf2_ros
import yaml
from rclpy.duration import Duration
from rclpy.time import Time

from ..tf_buffer import (ConnectivityError, ExtrapolationError, TransformError, UnknownFrameError,
                         transform_matrix)

_ERRORS = ((tf2_ros.LookupException, UnknownFrameError), (tf2_ros.ConnectivityException, ConnectivityError),
           (tf2_ros.ExtrapolationException, ExtrapolationError), (tf2_ros.TransformException, TransformError))


def frame_table(buffer: tf2_ros.Buffer) -> dict[str, dict]:
    """tf2's own description of every frame it holds (``all_frames_as_yaml``): parent, rate, most recent and oldest
    transform time (0 for static transforms), buffer length."""
    return yaml.safe_load(buffer.all_frames_as_yaml()) or {}


class Tf2Transforms:
    """``TransformSource`` over a tf2_ros.Buffer."""

    def __init__(self, buffer: tf2_ros.Buffer) -> None:
        self.buffer = buffer

    def lookup(self, target: str, source: str, stamp_s: float | None = None, timeout_s: float = 0.0) -> np.ndarray:
        """``T_target_source`` at ``stamp_s`` (None: the latest common time), waiting up to ``timeout_s`` for it."""
        time = Time() if stamp_s is None else Time(nanoseconds=round(stamp_s * 1e9))
        try:
            stamped = self.buffer.lookup_transform(target.lstrip("/"), source.lstrip("/"), time,
                                                   Duration(nanoseconds=round(timeout_s * 1e9)))
        except tf2_ros.TransformException as error:
            ours = next(kind for tf2_kind, kind in _ERRORS if isinstance(error, tf2_kind))
            raise ours(str(error)) from None
        t, q = stamped.transform.translation, stamped.transform.rotation
        return transform_matrix((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))

    def frames(self) -> list[str]:
        """Every frame tf2 holds, parents included."""
        table = frame_table(self.buffer)
        return sorted(set(table) | {str(entry["parent"]) for entry in table.values()})

    def root(self, frame: str) -> str:
        """The root of ``frame``'s tree; UnknownFrameError when tf2 has never heard of it."""
        table = frame_table(self.buffer)
        frame = frame.lstrip("/")
        if frame not in table and frame not in {str(entry["parent"]) for entry in table.values()}:
            known = ", ".join(self.frames()) or "none (no transform received yet)"
            raise UnknownFrameError(f"frame {frame!r} does not exist in the TF tree; known frames: {known}")
        seen = {frame}
        while frame in table and str(table[frame]["parent"]) not in seen:
            frame = str(table[frame]["parent"])
            seen.add(frame)
        return frame
