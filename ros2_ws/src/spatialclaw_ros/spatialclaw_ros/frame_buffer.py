"""Assemble a question's frames from camera streams: the live node's topics and recorded bags take this one path.

ROS-free. Per camera, a buffer keeps colour frames, each with the registered depth image nearest in stamp
(within ``frames.sync_tolerance_s``, whichever arrives first) and the CameraInfo intrinsics in force at its
stamp; colour frames closer than ``frames.min_interval_s`` to a kept one are dropped before decoding. The live
node decodes a kept image when it arrives and bounds memory by age and count (``BufferConfig``: when full, the
frame whose removal leaves the smallest time gap goes); a bag keeps every frame as a reference and decodes only
the key frames chosen. ``FrameBuffer.frame_set`` chooses a question's key frames evenly in "progress", which
grows with time, travel and turning alike (``select_keyframes``), and looks up each one's camera pose, and the
body frame's, in the world frame at the image stamp through a ``TransformSource`` (tf2 live, a TransformBuffer
for bags).
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from .config import BufferConfig, FramesConfig, KeyframeConfig
from .frames import Frame, FrameSet
from .tf_buffer import TransformError, TransformSource

#: Depth messages that arrived before their colour image wait here (per camera) to be paired.
PENDING_DEPTH = 8
#: CameraInfo changes remembered per camera (intrinsics rarely change; each change is kept with its stamp).
INFO_HISTORY = 16

#: Progress differences below this are ties (float noise of nanosecond stamps near 1.7e9 s is ~1e-7 s).
PROGRESS_TIE = 1e-6

Decoder = Callable[[], np.ndarray]
#: Pixels as decoded, or the decoder that gives them (a bag's frames are decoded only once chosen).
Pixels = np.ndarray | Decoder


class FrameSelectionError(ValueError):
    """The frames asked for cannot be given (the message says what the buffer holds)."""


class UnknownCameraError(FrameSelectionError):
    """A requested camera is not one the buffer holds."""


class NoFramesError(FrameSelectionError):
    """No buffered frame falls inside the requested window."""


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

    def fits(self, width: int, height: int) -> bool:
        """Whether these intrinsics are for images of this size (a CameraInfo of size 0 fits any)."""
        return (self.width, self.height) in ((0, 0), (width, height))


def _or_empty(values: np.ndarray | None) -> np.ndarray:
    return np.zeros(0) if values is None else np.asarray(values)


def _pixels(value: Pixels) -> np.ndarray:
    return value() if callable(value) else value


@dataclass
class BufferedFrame:
    """A kept colour frame; ``depth`` stays in its wire type (uint16 mm or float32 m) until a FrameSet is built.
    Either may still be a decoder (a bag's frames); ``load`` decodes them."""

    index: int
    camera: str
    stamp: float
    frame_id: str
    rgb: Pixels
    depth: Pixels | None = None

    @property
    def nbytes(self) -> int:
        """Memory held by the frame's decoded pixels."""
        return sum(value.nbytes for value in (self.rgb, self.depth) if isinstance(value, np.ndarray))


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
    without_frame_id: int  # colour images dropped: no frame_id and no CameraInfo naming one


def keyframe_progress(stamps: Sequence[float], poses: Sequence[np.ndarray | None] | None,
                      policy: KeyframeConfig) -> np.ndarray:
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
                     policy: KeyframeConfig) -> list[int]:
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
    """One camera's kept frames (ascending stamps), pending depth images and intrinsics history; thread-safe.

    ``retention`` None keeps every frame (a bag); ``decode_on_arrival`` decodes a kept frame when it arrives
    (live: decoding is spread over the ingest thread) rather than when it is chosen (a bag)."""

    def __init__(self, name: str, settings: FramesConfig, retention: BufferConfig | None = None,
                 decode_on_arrival: bool = True) -> None:
        self.name = name
        self.sync_tolerance_s = settings.sync_tolerance_s
        self.min_interval_s = settings.min_interval_s
        self.seconds = math.inf if retention is None else retention.seconds
        self.max_frames = math.inf if retention is None else retention.max_frames
        self.decode_on_arrival = decode_on_arrival
        self._lock = threading.Lock()
        self._frames: list[BufferedFrame] = []
        self._stamps: list[float] = []  # stamps of _frames, for bisect
        self._pending_depth: deque[tuple[float, Decoder]] = deque(maxlen=PENDING_DEPTH)
        self._infos: deque[tuple[float, Intrinsics]] = deque(maxlen=INFO_HISTORY)
        self._info_frame_id = ""
        self._received: deque[float] = deque()  # colour stamps received within ``seconds`` of the newest
        self._counts = {"colour": 0, "depth": 0, "info": 0, "size_mismatch": 0, "no_frame_id": 0}

    # -- ingest -------------------------------------------------------------------------------

    def add_colour(self, index: int, stamp: float, frame_id: str, decode: Decoder) -> bool:
        """Offer a colour image; kept unless a kept frame lies within ``min_interval_s``. An image without a
        frame_id takes the one its CameraInfo names; ValueError when there is none."""
        with self._lock:
            self._counts["colour"] += 1
            frame_id = frame_id.lstrip("/") or self._info_frame_id
            if not frame_id:
                self._counts["no_frame_id"] += 1
                raise ValueError("its header has no frame_id and no CameraInfo has named one yet")
            if self._received and stamp < self._received[-1] - self.seconds:
                self._clear_locked()  # the clock jumped back (a replayed bag restarted): start afresh
            self._note_received(stamp)
            at = bisect.bisect_left(self._stamps, stamp)
            neighbours = self._stamps[max(at - 1, 0):at + 1]
            if any(abs(stamp - other) < self.min_interval_s or stamp == other for other in neighbours):
                return False
        rgb = decode() if self.decode_on_arrival else decode  # outside the lock: decoding is the expensive part
        frame = BufferedFrame(index=index, camera=self.name, stamp=stamp, frame_id=frame_id, rgb=rgb)
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
        """Offer a depth image; it is paired with the nearest kept colour frame within the tolerance that lacks
        depth (and decoded then, when decoding on arrival). A depth image newer than every kept frame waits (a
        few at most) for its colour image."""
        with self._lock:
            self._counts["depth"] += 1
            frame = self._unpaired_frame_near(stamp)
            if frame is None:
                if not self._stamps or stamp > self._stamps[-1] + self.sync_tolerance_s:
                    self._pending_depth.append((stamp, decode))
                return False
        return self._attach_depth(frame, decode)

    def add_info(self, stamp: float, intrinsics: Intrinsics, frame_id: str = "") -> None:
        """Record CameraInfo intrinsics (only changes are stored, each valid from its stamp on) and its frame."""
        with self._lock:
            self._counts["info"] += 1
            self._info_frame_id = frame_id.lstrip("/") or self._info_frame_id
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
                depth_size_mismatches=self._counts["size_mismatch"], without_frame_id=self._counts["no_frame_id"])

    def depth_of(self, frame: BufferedFrame, rgb: np.ndarray) -> np.ndarray | None:
        """The frame's depth decoded, or None (counted as a mismatch) when its size is not the colour image's."""
        return None if frame.depth is None else self._fitting(_pixels(frame.depth), rgb)

    # -- internals ----------------------------------------------------------------------------

    def _note_received(self, stamp: float) -> None:
        if not self._received or stamp >= self._received[-1]:
            self._received.append(stamp)
        else:
            self._received.insert(bisect.bisect_left(self._received, stamp), stamp)
        while self._received and self._received[0] < self._received[-1] - self.seconds:
            self._received.popleft()

    def _clear_locked(self) -> None:
        self._frames.clear()
        self._stamps.clear()
        self._pending_depth.clear()
        self._received.clear()

    def _unpaired_frame_near(self, stamp: float) -> BufferedFrame | None:
        tolerance = self.sync_tolerance_s
        lo = bisect.bisect_left(self._stamps, stamp - tolerance)
        hi = bisect.bisect_right(self._stamps, stamp + tolerance)
        candidates = [f for f in self._frames[lo:hi] if f.depth is None]
        return min(candidates, key=lambda f: abs(f.stamp - stamp), default=None)

    def _take_pending_depth(self, stamp: float) -> Decoder | None:
        best = min(self._pending_depth, key=lambda item: abs(item[0] - stamp), default=None)
        if best is None or abs(best[0] - stamp) > self.sync_tolerance_s:
            return None
        self._pending_depth.remove(best)
        return best[1]

    def _attach_depth(self, frame: BufferedFrame, decode: Decoder) -> bool:
        if not self.decode_on_arrival:
            frame.depth = decode
            return True
        depth = self._fitting(decode(), frame.rgb)
        if depth is None:
            return False
        frame.depth = depth
        return True

    def _fitting(self, depth: np.ndarray, rgb: np.ndarray) -> np.ndarray | None:
        """``depth`` when it is the colour image's size; otherwise None, counted."""
        if depth.shape[:2] == rgb.shape[:2]:
            return depth
        with self._lock:
            self._counts["size_mismatch"] += 1
        return None

    def _evict(self) -> None:
        """Drop frames older than ``seconds`` before the newest, then thin to ``max_frames``."""
        newest = self._stamps[-1]
        expired = bisect.bisect_left(self._stamps, newest - self.seconds)
        del self._stamps[:expired], self._frames[:expired]
        while len(self._frames) > self.max_frames:
            if len(self._frames) <= 2:
                drop = 0
            else:
                gaps = np.asarray(self._stamps[2:]) - np.asarray(self._stamps[:-2])
                drop = 1 + int(np.argmin(gaps))  # the interior frame whose removal leaves the smallest gap
            del self._stamps[drop], self._frames[drop]


@dataclass
class FrameRequest:
    """Which frames a question wants: cameras (None = all), the window ``[end_s - window_s, end_s]`` (``window_s``
    may be infinite: everything up to ``end_s``) and how many."""

    end_s: float
    window_s: float
    max_frames: int
    cameras: list[str] | None = None

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValueError(f"window_s must be positive, got {self.window_s}")
        if self.max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {self.max_frames}")


class _TfBudget:
    """One wait for transforms per question, shared by all its lookups (see ``FrameBuffer.frame_set``)."""

    def __init__(self, timeout_s: float) -> None:
        self._deadline = time.monotonic() + timeout_s

    def left(self) -> float:
        return max(0.0, self._deadline - time.monotonic())


class FrameBuffer:
    """Buffers of every camera; ``frame_set`` turns a FrameRequest into a posed FrameSet of key frames.

    ``retention`` and ``decode_on_arrival`` as for CameraBuffer: the live node passes its BufferConfig and
    decodes on arrival, a bag keeps everything and decodes only the chosen frames."""

    def __init__(self, cameras: Sequence[str], settings: FramesConfig, retention: BufferConfig | None = None,
                 decode_on_arrival: bool = True) -> None:
        if not cameras:
            raise ValueError("a frame buffer needs at least one camera")
        if len(set(cameras)) != len(cameras):
            raise ValueError(f"camera names must be unique, got {list(cameras)}")
        self.cameras = list(cameras)
        self._buffers = {name: CameraBuffer(name, settings, retention, decode_on_arrival) for name in self.cameras}
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

    def add_info(self, camera: str, stamp: float, intrinsics: Intrinsics, frame_id: str = "") -> None:
        """Record the CameraInfo intrinsics (and frame) of ``camera``."""
        self.camera(camera).add_info(stamp, intrinsics, frame_id)

    def clear(self) -> None:
        """Forget every camera's frames."""
        for buffer in self._buffers.values():
            buffer.clear()

    def stats(self) -> list[CameraStats]:
        """CameraStats of every camera, in configuration order."""
        return [self._buffers[name].stats() for name in self.cameras]

    def frame_set(self, request: FrameRequest, tf: TransformSource, settings: FramesConfig, *,
                  tf_timeout_s: float = 0.0,
                  prefetch: Callable[[list[BufferedFrame]], None] | None = None) -> FrameSet:
        """Key frames of the requested cameras in the window, with intrinsics and poses at their stamps.

        The world frame is ``settings.world_frame``, or the root of the TF tree of the first camera with frames;
        with neither a world frame set nor any transform known, the frames have no poses.
        Each camera's newest frame may wait for its transform up to what is left of ``tf_timeout_s`` (one budget
        for the question); older frames' transforms have arrived or never will. Frames without a pose are left
        out; when a camera has frames but none with a pose, the TransformError of its newest frame is raised.
        NoFramesError when the window holds no frame; UnknownCameraError for an unknown camera. ``prefetch``
        gets the chosen frames before they are decoded (a bag reads them in one pass).
        """
        names = list(dict.fromkeys(request.cameras)) if request.cameras else list(self.cameras)
        buffers = [self.camera(name) for name in names]
        start = request.end_s - request.window_s
        in_window = {buffer.name: buffer.frames_between(start, request.end_s) for buffer in buffers}
        if not any(in_window.values()):
            raise NoFramesError(f"no frames in the window [{start:.3f}, {request.end_s:.3f}] s; "
                                + "; ".join(self._describe_span(buffer) for buffer in buffers))
        budget = _TfBudget(tf_timeout_s)
        world = settings.world_frame.strip().lstrip("/")
        unposed = not world and not tf.frames()  # no TF at all: image-only questions still work
        if not world and not unposed:
            world = self._root(in_window, tf)
        posed: dict[str, list[tuple[BufferedFrame, np.ndarray | None]]] = {}
        for name, candidates in in_window.items():
            if candidates:
                posed[name] = ([(frame, None) for frame in candidates] if unposed
                               else self._posed(name, candidates, tf, world, budget))
        quotas = share_frames(request.max_frames, list(posed))
        chosen: list[tuple[BufferedFrame, np.ndarray | None]] = []
        for name, quota in quotas.items():
            frames = posed[name]
            poses = None if unposed else [T for _, T in frames]
            picks = select_keyframes([f.stamp for f, _ in frames], poses, quota, settings.keyframes)
            chosen += [frames[i] for i in picks]
        if prefetch is not None:
            prefetch([frame for frame, _ in chosen])
        body_frame = "" if unposed else settings.body_frame.strip().lstrip("/")
        frames = [self._frame(frame, T, tf, world, body_frame) for frame, T in chosen]
        frames.sort(key=lambda f: (f.stamp, f.index))
        received = [s for name in posed for s in self._buffers[name].received_between(start, request.end_s)]
        span = max(received) - min(received) if received else 0.0
        window = [start if math.isfinite(start) else min(f.stamp for f in frames), request.end_s]
        return FrameSet(frames=frames, world_frame=world or "world", body_frame=body_frame, is_video=True,
                        fps=(len(received) - 1) / span if span > 0 else 0.0, total_frames=max(len(received), len(frames)),
                        extra={"window": window, "cameras_used": sorted(posed)})

    @staticmethod
    def _root(in_window: dict[str, list[BufferedFrame]], tf: TransformSource) -> str:
        """The root of the TF tree of the first camera whose newest frame's frame TF knows."""
        errors = []
        for name, frames in in_window.items():
            if frames:
                try:
                    return tf.root(frames[-1].frame_id)
                except TransformError as error:
                    errors.append(error)
        raise type(errors[0])("no camera's frame is in the TF tree, so there is no world frame (frames.world_frame "
                              f"empty: the root of the first camera's tree): {'; '.join(map(str, errors))}")

    @staticmethod
    def _posed(name: str, candidates: list[BufferedFrame], tf: TransformSource, world: str,
               budget: _TfBudget) -> list[tuple[BufferedFrame, np.ndarray]]:
        """(frame, T_world_camera) of the candidates with a pose, oldest first; the newest may wait for TF."""
        posed, error = [], None
        for number, frame in enumerate(reversed(candidates)):
            try:
                posed.append((frame, tf.lookup(world, frame.frame_id, frame.stamp, budget.left() if number == 0 else 0.0)))
            except TransformError as failure:
                error = error or failure
        if not posed:
            raise type(error)(f"camera {name}: none of its {len(candidates)} frames in the window has a pose in "
                              f"{world!r}; newest frame: {error}")
        return posed[::-1]

    def _frame(self, frame: BufferedFrame, T_world_camera: np.ndarray | None, tf: TransformSource, world: str,
               body_frame: str) -> Frame:
        buffer = self._buffers[frame.camera]
        rgb = _pixels(frame.rgb)
        intrinsics = buffer.intrinsics_at(frame.stamp)
        K = distortion = None
        if intrinsics is not None and intrinsics.fits(rgb.shape[1], rgb.shape[0]):
            K, distortion = intrinsics.K, intrinsics.distortion
        poses = {}
        if body_frame and body_frame != frame.frame_id:
            try:
                poses[body_frame] = tf.lookup(world, body_frame, frame.stamp)
            except TransformError:
                pass  # a robot without that frame: tools say they need it when asked for directions
        return Frame(index=frame.index, rgb=rgb, stamp=frame.stamp, camera=frame.camera, frame_id=frame.frame_id,
                     K=K, distortion=distortion, depth=buffer.depth_of(frame, rgb), T_world_camera=T_world_camera,
                     poses=poses)

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
