"""Recent camera frames of a live robot, and the key-frame selection shared with the bag reader.

ROS-free. Per camera, a bounded buffer keeps colour frames (decoded only when kept) with their
registered depth image paired by stamp and the CameraInfo intrinsics in force; memory is bounded
by age and by frame count (when full, the frame whose removal leaves the smallest time gap goes,
so the buffer keeps spanning its window). A question's frames are chosen by ``select_keyframes``:
evenly spread in "progress", which grows with time, travel and turning alike, so a moving camera
contributes different viewpoints and a still one frames spread in time. Poses come from a
TransformBuffer at each image's stamp.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from .frames import Frame, FrameSet
from .tf_buffer import TransformBuffer, TransformError

#: TF frame whose pose is added to every frame's ``poses`` when the tree has it (REP 105).
BODY_FRAME = "base_link"
#: Depth messages that arrived before their colour image wait here (per camera) to be paired.
PENDING_DEPTH = 8
#: CameraInfo changes remembered per camera (intrinsics rarely change; each change is kept with its stamp).
INFO_HISTORY = 16

#: Progress differences below this are ties (float noise of nanosecond stamps near 1.7e9 s is ~1e-7 s).
PROGRESS_TIE = 1e-6

Decoder = Callable[[], np.ndarray]


class FrameSelectionError(ValueError):
    """The frames asked for cannot be given (the message says what the buffer holds)."""


class UnknownCameraError(FrameSelectionError):
    """A requested camera is not one the buffer holds."""


class NoFramesError(FrameSelectionError):
    """No buffered frame falls inside the requested window."""


@dataclass(frozen=True)
class BufferLimits:
    """How much one camera's buffer holds: frames at most ``seconds`` older than its newest, at most
    ``max_frames`` of them, at least ``min_interval_s`` apart (closer frames are dropped before decoding);
    depth is paired with colour when their stamps differ by at most ``sync_tolerance_s``."""

    seconds: float = 20.0
    max_frames: int = 48
    min_interval_s: float = 0.2
    sync_tolerance_s: float = 0.02

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"buffer seconds must be positive, got {self.seconds}")
        if self.max_frames < 1:
            raise ValueError(f"buffer max_frames must be at least 1, got {self.max_frames}")
        if self.min_interval_s < 0 or self.sync_tolerance_s < 0:
            raise ValueError(f"min_interval_s ({self.min_interval_s}) and sync_tolerance_s "
                             f"({self.sync_tolerance_s}) cannot be negative")


@dataclass(frozen=True)
class KeyframePolicy:
    """One unit of key-frame progress per ``spacing_s`` of time, ``translation_m`` of camera travel or
    ``rotation_deg`` of camera turn, whichever is largest between consecutive frames."""

    spacing_s: float = 0.5
    translation_m: float = 0.5
    rotation_deg: float = 20.0

    def __post_init__(self) -> None:
        if not (self.spacing_s > 0 and self.translation_m > 0 and self.rotation_deg > 0):
            raise ValueError(f"key-frame spacing, translation and rotation must be positive, got {self}")


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of one camera from its CameraInfo."""

    K: np.ndarray  # (3, 3)
    distortion: np.ndarray | None
    width: int
    height: int

    def same_as(self, other: "Intrinsics | None") -> bool:
        """Whether ``other`` holds the same calibration (so a repeated CameraInfo is not stored again)."""
        return (other is not None and (self.width, self.height) == (other.width, other.height)
                and np.array_equal(self.K, other.K)
                and np.array_equal(_or_empty(self.distortion), _or_empty(other.distortion)))


def _or_empty(values: np.ndarray | None) -> np.ndarray:
    return np.zeros(0) if values is None else np.asarray(values)


@dataclass
class BufferedFrame:
    """A kept colour frame; ``depth`` stays in its wire type (uint16 mm or float32 m) until a FrameSet is built."""

    index: int
    camera: str
    stamp: float
    frame_id: str
    rgb: np.ndarray
    depth: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        """Memory held by the frame's pixels."""
        return int(self.rgb.nbytes + (0 if self.depth is None else self.depth.nbytes))


@dataclass(frozen=True)
class CameraStats:
    """What one camera's buffer holds and how its inputs arrive (for /diagnostics)."""

    name: str
    colour_received: int
    depth_received: int
    info_received: int
    stored: int
    with_depth: int
    nbytes: int
    oldest_s: float | None  # stamp of the oldest kept frame
    newest_s: float | None  # stamp of the newest colour message received
    colour_rate_hz: float  # over the buffer's time span
    has_intrinsics: bool
    depth_size_mismatches: int  # depth images dropped because their size differs from the colour image


def keyframe_progress(stamps: Sequence[float], poses: Sequence[np.ndarray | None] | None,
                      policy: KeyframePolicy) -> np.ndarray:
    """Cumulative progress along ascending ``stamps``: each step adds the largest of time, travel and turn in
    policy units; a step with a missing pose on either side counts time only."""
    stamps = np.asarray(stamps, dtype=np.float64)
    steps = np.diff(stamps - stamps[0] if stamps.size else stamps) / policy.spacing_s
    if poses is not None and len(poses) != len(stamps):
        raise ValueError(f"{len(stamps)} stamps but {len(poses)} poses")
    if poses is not None and steps.size:
        posed = np.array([pose is not None for pose in poses])
        both = posed[:-1] & posed[1:]
        if both.any():
            matrices = np.stack([np.eye(4) if pose is None else np.asarray(pose, dtype=np.float64) for pose in poses])
            travel = np.linalg.norm(np.diff(matrices[:, :3, 3], axis=0), axis=1) / policy.translation_m
            relative = np.einsum("nji,njk->nik", matrices[:-1, :3, :3], matrices[1:, :3, :3])
            turn = np.degrees(Rotation.from_matrix(relative).magnitude()) / policy.rotation_deg
            steps = np.where(both, np.maximum(steps, np.maximum(travel, turn)), steps)
    return np.concatenate([[0.0], np.cumsum(steps)]) if stamps.size else np.zeros(0)


def nearest_indices(sorted_values: np.ndarray, targets: np.ndarray, tie_tolerance: float = 0.0) -> np.ndarray:
    """Index of the value nearest to each target in an ascending array; distances within ``tie_tolerance``
    of each other count as a tie, which goes to the earlier value."""
    sorted_values = np.asarray(sorted_values, dtype=np.float64)
    if len(sorted_values) == 1:
        return np.zeros(len(targets), dtype=int)
    right = np.clip(np.searchsorted(sorted_values, targets), 1, len(sorted_values) - 1)
    left = right - 1
    left_distance, right_distance = np.abs(sorted_values[left] - targets), np.abs(sorted_values[right] - targets)
    return np.where(left_distance <= right_distance + tie_tolerance, left, right)


def select_keyframes(stamps: Sequence[float], poses: Sequence[np.ndarray | None] | None, count: int,
                     policy: KeyframePolicy) -> list[int]:
    """Positions (ascending) of ``min(count, len(stamps))`` frames spread evenly in key-frame progress.

    ``stamps`` ascend; ``poses`` are camera-to-world 4x4 matrices (None where unknown) or None for time
    only. The first and last frames are always chosen; where motion bunches the targets onto one frame,
    the remaining picks go to the frames farthest in progress from those already chosen.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    total = len(stamps)
    if total <= count:
        return list(range(total))
    progress = keyframe_progress(stamps, poses, policy)
    targets = np.linspace(progress[0], progress[-1], count)
    chosen = set(nearest_indices(progress, targets, PROGRESS_TIE).tolist())
    while len(chosen) < count:
        picked = np.array(sorted(chosen))
        gaps = np.min(np.abs(progress[:, None] - progress[picked][None, :]), axis=1)
        gaps[picked] = -1.0
        chosen.add(int(np.argmax(gaps)))
    return sorted(chosen)


class CameraBuffer:
    """One camera's kept frames (ascending stamps), pending depth images and intrinsics history; thread-safe."""

    def __init__(self, name: str, limits: BufferLimits) -> None:
        self.name = name
        self.limits = limits
        self._lock = threading.Lock()
        self._frames: list[BufferedFrame] = []
        self._stamps: list[float] = []  # stamps of _frames, for bisect
        self._pending_depth: deque[tuple[float, Decoder]] = deque(maxlen=PENDING_DEPTH)
        self._infos: deque[tuple[float, Intrinsics]] = deque(maxlen=INFO_HISTORY)
        self._received: deque[float] = deque()  # colour stamps received within ``seconds`` of the newest
        self._counts = {"colour": 0, "depth": 0, "info": 0, "size_mismatch": 0}

    # -- ingest -------------------------------------------------------------------------------

    def add_colour(self, index: int, stamp: float, frame_id: str, decode: Decoder) -> bool:
        """Offer a colour image; it is decoded and kept unless a kept frame lies within ``min_interval_s``."""
        with self._lock:
            self._counts["colour"] += 1
            if self._received and stamp < self._received[-1] - self.limits.seconds:
                self._clear_locked()  # the clock jumped back (a replayed bag restarted): start afresh
            self._note_received(stamp)
            at = bisect.bisect_left(self._stamps, stamp)
            neighbours = self._stamps[max(at - 1, 0):at + 1]
            if any(abs(stamp - other) < self.limits.min_interval_s or stamp == other for other in neighbours):
                return False
        rgb = decode()  # outside the lock: decoding is the expensive part
        frame = BufferedFrame(index=index, camera=self.name, stamp=stamp, frame_id=frame_id.lstrip("/"), rgb=rgb)
        with self._lock:
            at = bisect.bisect_left(self._stamps, stamp)
            self._stamps.insert(at, stamp)
            self._frames.insert(at, frame)
            match = self._take_pending_depth(stamp)
            self._evict()
        if match is not None:
            self._attach_depth(frame, match)
        return True

    def add_depth(self, stamp: float, decode: Decoder) -> bool:
        """Offer a depth image; it is decoded only when a kept colour frame within the tolerance lacks depth.

        A depth image newer than every kept frame waits (a few at most) for its colour image.
        """
        with self._lock:
            self._counts["depth"] += 1
            frame = self._unpaired_frame_near(stamp)
            if frame is None:
                if not self._stamps or stamp > self._stamps[-1] + self.limits.sync_tolerance_s:
                    self._pending_depth.append((stamp, decode))
                return False
        return self._attach_depth(frame, decode)

    def add_info(self, stamp: float, intrinsics: Intrinsics) -> None:
        """Record CameraInfo intrinsics; only changes are stored, each valid from its stamp on."""
        with self._lock:
            self._counts["info"] += 1
            if not self._infos or not intrinsics.same_as(self._infos[-1][1]):
                self._infos.append((stamp, intrinsics))

    def clear(self) -> None:
        """Forget every frame and pending depth image (intrinsics are kept)."""
        with self._lock:
            self._clear_locked()

    # -- queries ------------------------------------------------------------------------------

    def frames_between(self, start_s: float, end_s: float) -> list[BufferedFrame]:
        """Kept frames with ``start_s <= stamp <= end_s``, oldest first (the frames themselves, not copies)."""
        with self._lock:
            lo, hi = bisect.bisect_left(self._stamps, start_s), bisect.bisect_right(self._stamps, end_s)
            return list(self._frames[lo:hi])

    def received_between(self, start_s: float, end_s: float) -> list[float]:
        """Stamps of the colour messages received in the window (kept or not), as far back as the buffer remembers."""
        with self._lock:
            return [stamp for stamp in self._received if start_s <= stamp <= end_s]

    def intrinsics_at(self, stamp: float) -> Intrinsics | None:
        """The intrinsics in force at ``stamp`` (the first ones for earlier stamps); None before any CameraInfo."""
        with self._lock:
            if not self._infos:
                return None
            current = self._infos[0][1]
            for since, intrinsics in self._infos:
                if since <= stamp:
                    current = intrinsics
            return current

    def span(self) -> tuple[float, float] | None:
        """(oldest, newest) kept stamp, or None when empty."""
        with self._lock:
            return (self._stamps[0], self._stamps[-1]) if self._stamps else None

    def stats(self) -> CameraStats:
        """Counts, fill and rates of this camera (for /diagnostics)."""
        with self._lock:
            received = list(self._received)
            span = received[-1] - received[0] if len(received) > 1 else 0.0
            return CameraStats(
                name=self.name, colour_received=self._counts["colour"], depth_received=self._counts["depth"],
                info_received=self._counts["info"], stored=len(self._frames),
                with_depth=sum(1 for f in self._frames if f.depth is not None),
                nbytes=sum(f.nbytes for f in self._frames),
                oldest_s=self._stamps[0] if self._stamps else None, newest_s=received[-1] if received else None,
                colour_rate_hz=(len(received) - 1) / span if span > 0 else 0.0, has_intrinsics=bool(self._infos),
                depth_size_mismatches=self._counts["size_mismatch"])

    # -- internals ----------------------------------------------------------------------------

    def _note_received(self, stamp: float) -> None:
        if not self._received or stamp >= self._received[-1]:
            self._received.append(stamp)
        else:
            self._received.insert(bisect.bisect_left(self._received, stamp), stamp)
        while self._received and self._received[0] < self._received[-1] - self.limits.seconds:
            self._received.popleft()

    def _clear_locked(self) -> None:
        self._frames.clear()
        self._stamps.clear()
        self._pending_depth.clear()
        self._received.clear()

    def _unpaired_frame_near(self, stamp: float) -> BufferedFrame | None:
        tolerance = self.limits.sync_tolerance_s
        lo = bisect.bisect_left(self._stamps, stamp - tolerance)
        hi = bisect.bisect_right(self._stamps, stamp + tolerance)
        candidates = [f for f in self._frames[lo:hi] if f.depth is None]
        return min(candidates, key=lambda f: abs(f.stamp - stamp), default=None)

    def _take_pending_depth(self, stamp: float) -> Decoder | None:
        best = min(self._pending_depth, key=lambda item: abs(item[0] - stamp), default=None)
        if best is None or abs(best[0] - stamp) > self.limits.sync_tolerance_s:
            return None
        self._pending_depth.remove(best)
        return best[1]

    def _attach_depth(self, frame: BufferedFrame, decode: Decoder) -> bool:
        depth = decode()
        if depth.shape[:2] != frame.rgb.shape[:2]:
            with self._lock:
                self._counts["size_mismatch"] += 1
            return False
        frame.depth = depth
        return True

    def _evict(self) -> None:
        """Drop frames older than ``seconds`` before the newest, then thin to ``max_frames``."""
        newest = self._stamps[-1]
        expired = bisect.bisect_left(self._stamps, newest - self.limits.seconds)
        del self._stamps[:expired], self._frames[:expired]
        while len(self._frames) > self.limits.max_frames:
            if len(self._frames) <= 2:
                drop = 0
            else:
                gaps = np.asarray(self._stamps[2:]) - np.asarray(self._stamps[:-2])
                drop = 1 + int(np.argmin(gaps))  # the interior frame whose removal leaves the smallest gap
            del self._stamps[drop], self._frames[drop]


@dataclass
class FrameRequest:
    """Which frames a question wants: cameras (None = all), the window ``[end_s - window_s, end_s]`` and how many."""

    end_s: float
    window_s: float
    max_frames: int
    cameras: list[str] | None = None

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValueError(f"window_s must be positive, got {self.window_s}")
        if self.max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {self.max_frames}")


@dataclass
class FrameBuffer:
    """Buffers of every configured camera; ``frame_set`` turns a FrameRequest into a posed FrameSet."""

    cameras: Sequence[str]
    limits: BufferLimits = field(default_factory=BufferLimits)
    policy: KeyframePolicy = field(default_factory=KeyframePolicy)

    def __post_init__(self) -> None:
        if not self.cameras:
            raise ValueError("a frame buffer needs at least one camera")
        if len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"camera names must be unique, got {list(self.cameras)}")
        self._buffers = {name: CameraBuffer(name, self.limits) for name in self.cameras}
        self._index_lock = threading.Lock()
        self._next_index = 0

    def camera(self, name: str) -> CameraBuffer:
        """The buffer of camera ``name``; UnknownCameraError lists the configured ones."""
        try:
            return self._buffers[name]
        except KeyError:
            raise UnknownCameraError(f"unknown camera {name!r}; configured cameras: {', '.join(self.cameras)}") from None

    def add_colour(self, camera: str, stamp: float, frame_id: str, decode: Decoder) -> bool:
        """Offer a colour image of ``camera``; every offered image takes the next absolute frame index."""
        with self._index_lock:
            index = self._next_index
            self._next_index += 1
        return self.camera(camera).add_colour(index, stamp, frame_id, decode)

    def add_depth(self, camera: str, stamp: float, decode: Decoder) -> bool:
        """Offer a depth image of ``camera`` (see CameraBuffer.add_depth)."""
        return self.camera(camera).add_depth(stamp, decode)

    def add_info(self, camera: str, stamp: float, intrinsics: Intrinsics) -> None:
        """Record the CameraInfo intrinsics of ``camera``."""
        self.camera(camera).add_info(stamp, intrinsics)

    def clear(self) -> None:
        """Forget every camera's frames."""
        for buffer in self._buffers.values():
            buffer.clear()

    def stats(self) -> list[CameraStats]:
        """CameraStats of every camera, in configuration order."""
        return [self._buffers[name].stats() for name in self.cameras]

    def frame_set(self, request: FrameRequest, tf: TransformBuffer, world_frame: str) -> FrameSet:
        """Key frames of the requested cameras in the window, with intrinsics and poses at their stamps.

        Frames without a pose (TF not yet received, or too old) are left out; when a camera has frames in
        the window but none with a pose, the TransformError of its newest frame is raised. NoFramesError
        when the window holds no frame; UnknownCameraError for an unknown camera.
        """
        names = list(dict.fromkeys(request.cameras)) if request.cameras else list(self.cameras)
        buffers = [self.camera(name) for name in names]
        start = request.end_s - request.window_s
        in_window = {buffer.name: buffer.frames_between(start, request.end_s) for buffer in buffers}
        if not any(in_window.values()):
            raise NoFramesError(f"no frames in the window [{start:.3f}, {request.end_s:.3f}] s; "
                                + "; ".join(self._describe_span(buffer) for buffer in buffers))
        posed: dict[str, list[tuple[BufferedFrame, np.ndarray]]] = {}
        for name, candidates in in_window.items():
            if not candidates:
                continue
            posed[name], error = [], None
            for frame in candidates:
                try:
                    posed[name].append((frame, tf.lookup(world_frame, frame.frame_id, frame.stamp)))
                except TransformError as failure:
                    error = failure
            if not posed[name]:
                raise type(error)(f"camera {name}: none of its {len(candidates)} frames in the window has a pose in "
                                  f"{world_frame!r}; newest frame: {error}")
        quotas = share_frames(request.max_frames, list(posed))
        frames = []
        for name, quota in quotas.items():
            chosen = posed[name]
            picks = select_keyframes([f.stamp for f, _ in chosen], [T for _, T in chosen], quota, self.policy)
            frames += [self._frame(chosen[i][0], chosen[i][1], tf, world_frame) for i in picks]
        frames.sort(key=lambda f: (f.stamp, f.index))
        received = [s for name in posed for s in self._buffers[name].received_between(start, request.end_s)]
        span = max(received) - min(received) if received else 0.0
        return FrameSet(frames=frames, world_frame=world_frame, is_video=True,
                        fps=(len(received) - 1) / span if span > 0 else 0.0, total_frames=max(len(received), len(frames)),
                        extra={"window": [start, request.end_s], "cameras_used": sorted(posed)})

    def _frame(self, frame: BufferedFrame, T_world_camera: np.ndarray, tf: TransformBuffer, world_frame: str) -> Frame:
        intrinsics = self._buffers[frame.camera].intrinsics_at(frame.stamp)
        depth, K, distortion = frame.depth, None, None
        if intrinsics is not None and (intrinsics.width, intrinsics.height) in ((0, 0), frame.rgb.shape[1::-1]):
            K, distortion = intrinsics.K, intrinsics.distortion
        poses = {}
        if frame.frame_id != BODY_FRAME and tf.can_transform(world_frame, BODY_FRAME, frame.stamp):
            poses[BODY_FRAME] = tf.lookup(world_frame, BODY_FRAME, frame.stamp)
        return Frame(index=frame.index, rgb=frame.rgb, stamp=frame.stamp, camera=frame.camera, frame_id=frame.frame_id,
                     K=K, distortion=distortion, depth=depth, T_world_camera=T_world_camera, poses=poses)

    def _describe_span(self, buffer: CameraBuffer) -> str:
        span = buffer.span()
        if span is None:
            return f"camera {buffer.name}: nothing buffered ({buffer.stats().colour_received} images received)"
        return f"camera {buffer.name}: frames from {span[0]:.3f} to {span[1]:.3f} s"


def share_frames(total: int, names: Sequence[str]) -> dict[str, int]:
    """Split ``total`` key frames over cameras as evenly as possible (the first ones get the remainder)."""
    if total < len(names):
        raise FrameSelectionError(f"max_frames={total} is fewer than the {len(names)} selected cameras "
                                  f"({', '.join(names)}); ask for at least one frame per camera")
    base, extra = divmod(total, len(names))
    return {name: base + (1 if i < extra else 0) for i, name in enumerate(names)}
