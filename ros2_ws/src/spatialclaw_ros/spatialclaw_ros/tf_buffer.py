"""TF for the frame assembly: the ``TransformSource`` interface it looks poses up through, and a ROS-free
buffer with tf2's lookup semantics behind it for recordings read without ROS.

The node looks up through tf2 (``ros/transforms.py``: a ``tf2_ros.Buffer`` fed by a ``TransformListener``);
``spatialclaw ask --bag`` fills a ``TransformBuffer`` from the bag's ``/tf`` and ``/tf_static``. Transforms are
stored parent -> child as ``T_parent_child`` (maps child-frame points into the parent frame).
"""

from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.spatial.transform import Rotation, Slerp


class TransformError(LookupError):
    """Base class of the lookup errors (tf2's LookupException family)."""


class UnknownFrameError(TransformError):
    """A frame that no transform mentions."""


class ConnectivityError(TransformError):
    """Both frames are known but lie in different trees."""


class ExtrapolationError(TransformError):
    """The lookup time is outside the buffered time range of a transform on the path."""


class TransformSource(Protocol):
    """Where the frame assembly and the visualisation look poses up: tf2 in the node, a TransformBuffer offline."""

    def lookup(self, target: str, source: str, stamp_s: float | None = None, timeout_s: float = 0.0) -> np.ndarray:
        """``T_target_source`` (4x4) at ``stamp_s`` (None = the latest common time), waiting up to ``timeout_s`` for
        data not yet received; a TransformError subclass with the reason otherwise."""

    def frames(self) -> list[str]:
        """Every frame the tree knows, sorted."""

    def root(self, frame: str) -> str:
        """The root of the tree ``frame`` belongs to."""


@dataclass
class _Edge:
    """The history of one parent -> child transform, oldest sample first."""

    parent: str
    static: bool
    stamps: list[float] = field(default_factory=list)
    translations: list[np.ndarray] = field(default_factory=list)
    quaternions: list[np.ndarray] = field(default_factory=list)  # xyzw, unit


def _normalise_frame(name: str) -> str:
    """tf2 strips a leading slash from frame ids; an empty name is an error."""
    stripped = str(name).lstrip("/")
    if not stripped:
        raise ValueError(f"invalid frame id {name!r}: it is empty")
    return stripped


def _unit_quaternion(quaternion) -> np.ndarray:
    quaternion = np.asarray(quaternion, dtype=np.float64).reshape(4)
    norm = float(np.linalg.norm(quaternion))
    if not math.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"quaternion {quaternion.tolist()} has no direction (norm {norm})")
    return quaternion / norm


def transform_matrix(translation, quaternion) -> np.ndarray:
    """4x4 rigid transform from a translation (3,) and a quaternion xyzw (normalised here)."""
    out = np.eye(4)
    out[:3, :3] = Rotation.from_quat(_unit_quaternion(quaternion)).as_matrix()
    out[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return out


def transform_parts(T) -> tuple[np.ndarray, np.ndarray]:
    """(translation (3,), unit quaternion xyzw (4,)) of a 4x4 rigid transform; rejects non-rigid matrices."""
    matrix = np.asarray(T, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise ValueError(f"a transform is a 4x4 matrix or a (translation, quaternion xyzw) pair, got shape {matrix.shape}")
    rotation = matrix[:3, :3]
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) or np.linalg.det(rotation) < 0:
        raise ValueError(f"the 3x3 block of the transform is not a rotation:\n{rotation}")
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0]):
        raise ValueError(f"the last row of a rigid transform must be [0, 0, 0, 1], got {matrix[3].tolist()}")
    return matrix[:3, 3].copy(), Rotation.from_matrix(rotation).as_quat()


def _split_transform(transform) -> tuple[np.ndarray, np.ndarray]:
    """(translation, unit quaternion) from a 4x4 matrix or a (translation, quaternion xyzw) pair."""
    if isinstance(transform, tuple) and len(transform) == 2:
        return np.asarray(transform[0], dtype=np.float64).reshape(3), _unit_quaternion(transform[1])
    return transform_parts(transform)


def _invert(T: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


class TransformBuffer:
    """Time-stamped transform tree; ``lookup`` walks it through the common ancestor (thread-safe).

    Dynamic transforms are kept for ``cache_time_s`` before the newest sample of their edge
    (``math.inf`` keeps everything, as the bag reader does); static ones are valid at all times.
    Like tf2, each child frame has one parent: a sample with a new parent replaces the old edge.
    """

    def __init__(self, cache_time_s: float = 10.0) -> None:
        if not cache_time_s > 0:
            raise ValueError(f"cache_time_s must be positive, got {cache_time_s}")
        self.cache_time_s = float(cache_time_s)
        self._edges: dict[str, _Edge] = {}  # child -> edge to its parent
        self._lock = threading.Lock()

    def set_transform(self, parent: str, child: str, stamp_s: float, transform, static: bool = False) -> bool:
        """Store ``T_parent_child`` at ``stamp_s``; returns False when the sample is older than the cache window.

        ``transform`` is a 4x4 matrix or a ``(translation, quaternion xyzw)`` pair.
        """
        parent, child = _normalise_frame(parent), _normalise_frame(child)
        if parent == child:
            raise ValueError(f"a transform from frame {child!r} to itself is not allowed")
        stamp_s = float(stamp_s)
        if not math.isfinite(stamp_s):
            raise ValueError(f"stamp of {parent} -> {child} must be finite, got {stamp_s}")
        translation, quaternion = _split_transform(transform)
        with self._lock:
            if child in self._ancestors(parent):
                raise ValueError(f"{parent} -> {child} would close a loop: {child} is already an ancestor of {parent}")
            edge = self._edges.get(child)
            if edge is None or edge.parent != parent or edge.static != static:
                edge = self._edges[child] = _Edge(parent=parent, static=static)
            if static:
                edge.stamps, edge.translations, edge.quaternions = [stamp_s], [translation], [quaternion]
                return True
            if edge.stamps and stamp_s < edge.stamps[-1] - self.cache_time_s:
                return False
            at = bisect.bisect_left(edge.stamps, stamp_s)
            if at < len(edge.stamps) and edge.stamps[at] == stamp_s:
                edge.translations[at], edge.quaternions[at] = translation, quaternion
            else:
                edge.stamps.insert(at, stamp_s)
                edge.translations.insert(at, translation)
                edge.quaternions.insert(at, quaternion)
            expired = bisect.bisect_left(edge.stamps, edge.stamps[-1] - self.cache_time_s)
            if expired:
                del edge.stamps[:expired], edge.translations[:expired], edge.quaternions[:expired]
            return True

    def lookup(self, target: str, source: str, stamp_s: float | None = None, timeout_s: float = 0.0) -> np.ndarray:
        """``T_target_source`` (4x4) at ``stamp_s``; None = the latest time all transforms on the path share.

        Raises UnknownFrameError, ConnectivityError or ExtrapolationError with tf2-like messages. A recording's
        transforms are all here before the first lookup, so ``timeout_s`` (TransformSource's) never waits.
        """
        target, source = _normalise_frame(target), _normalise_frame(source)
        with self._lock:
            up_target, up_source = self._path_to_common_ancestor(target, source)
            if stamp_s is None:
                stamp_s = self._latest_common_time(up_target + up_source)
            T_ancestor_source = self._chain(up_source, float(stamp_s), target, source)
            T_ancestor_target = self._chain(up_target, float(stamp_s), target, source)
        return _invert(T_ancestor_target) @ T_ancestor_source

    def can_transform(self, target: str, source: str, stamp_s: float | None = None) -> bool:
        """Whether ``lookup(target, source, stamp_s)`` would succeed."""
        try:
            self.lookup(target, source, stamp_s)
        except TransformError:
            return False
        return True

    def frames(self) -> list[str]:
        """Every frame named by a stored transform, sorted."""
        with self._lock:
            return sorted(set(self._edges) | {edge.parent for edge in self._edges.values()})

    def root(self, frame: str) -> str:
        """The root of the tree ``frame`` belongs to (e.g. ``map``)."""
        frame = _normalise_frame(frame)
        with self._lock:
            self._check_known(frame)
            return self._ancestors(frame)[-1]

    def time_range(self, target: str, source: str) -> tuple[float, float]:
        """(earliest, latest) time at which ``lookup(target, source, t)`` succeeds; (-inf, inf) if all static."""
        target, source = _normalise_frame(target), _normalise_frame(source)
        with self._lock:
            up_target, up_source = self._path_to_common_ancestor(target, source)
            dynamic = [self._edges[child] for child in up_target + up_source if not self._edges[child].static]
        if not dynamic:
            return -math.inf, math.inf
        return max(edge.stamps[0] for edge in dynamic), min(edge.stamps[-1] for edge in dynamic)

    # -- internals (called with the lock held) --------------------------------------------------

    def _ancestors(self, frame: str) -> list[str]:
        """``frame`` followed by its parent, grandparent, ... up to the root."""
        chain = [frame]
        while chain[-1] in self._edges:
            chain.append(self._edges[chain[-1]].parent)
        return chain

    def _check_known(self, frame: str) -> None:
        known = set(self._edges) | {edge.parent for edge in self._edges.values()}
        if frame not in known:
            listing = ", ".join(sorted(known)) if known else "none (no transform received yet)"
            raise UnknownFrameError(f"frame {frame!r} does not exist in the TF tree; known frames: {listing}")

    def _path_to_common_ancestor(self, target: str, source: str) -> tuple[list[str], list[str]]:
        """The child frames whose edges lead from target and from source up to their common ancestor."""
        self._check_known(target)
        self._check_known(source)
        up_target, up_source = self._ancestors(target), self._ancestors(source)
        if up_target[-1] != up_source[-1]:
            raise ConnectivityError(
                f"cannot transform {source!r} into {target!r}: they are not connected; "
                f"{target!r} is in the tree rooted at {up_target[-1]!r} "
                f"and {source!r} in the tree rooted at {up_source[-1]!r}")
        source_set = set(up_source)
        ancestor = next(frame for frame in up_target if frame in source_set)
        return up_target[:up_target.index(ancestor)], up_source[:up_source.index(ancestor)]

    def _latest_common_time(self, children: list[str]) -> float:
        dynamic = [self._edges[child].stamps[-1] for child in children if not self._edges[child].static]
        return min(dynamic) if dynamic else 0.0

    def _chain(self, children: list[str], stamp_s: float, target: str, source: str) -> np.ndarray:
        """Product of the edges from the common ancestor down to ``children[0]``."""
        T = np.eye(4)
        for child in reversed(children):
            T = T @ self._edge_at(child, stamp_s, target, source)
        return T

    def _edge_at(self, child: str, stamp_s: float, target: str, source: str) -> np.ndarray:
        """``T_parent_child`` at ``stamp_s``: static as stored, dynamic interpolated (lerp + slerp)."""
        edge = self._edges[child]
        if edge.static:
            return transform_matrix(edge.translations[0], edge.quaternions[0])
        first, last = edge.stamps[0], edge.stamps[-1]
        if stamp_s < first or stamp_s > last:
            direction, gap = ("past", first - stamp_s) if stamp_s < first else ("future", stamp_s - last)
            raise ExtrapolationError(
                f"lookup of {source!r} in {target!r} would require extrapolation {gap:.3f} s into the {direction}: "
                f"requested time {stamp_s:.3f} but {edge.parent} -> {child} has data only for "
                f"[{first:.3f}, {last:.3f}]")
        at = bisect.bisect_left(edge.stamps, stamp_s)
        if edge.stamps[at] == stamp_s:
            return transform_matrix(edge.translations[at], edge.quaternions[at])
        t0, t1 = edge.stamps[at - 1], edge.stamps[at]
        ratio = (stamp_s - t0) / (t1 - t0)
        translation = (1.0 - ratio) * edge.translations[at - 1] + ratio * edge.translations[at]
        rotation = Slerp([0.0, 1.0], Rotation.from_quat([edge.quaternions[at - 1], edge.quaternions[at]]))(ratio)
        return transform_matrix(translation, rotation.as_quat())
