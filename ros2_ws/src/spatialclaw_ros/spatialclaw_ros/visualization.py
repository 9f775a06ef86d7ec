"""What an answer looks like in RViz, as ROS-free specs: markers and coloured point clouds.

``build_markup`` turns an AgentResult and its frames into a ``Markup`` in a requested target frame:
the answer's evidence points grouped by label (a point or two: spheres; an object's points: a box,
and those points in the "objects" cloud coloured by label), two single points as a measured
segment (a line labelled with its length for length answers, else an arrow from the first to the
second, e.g. a direction), the answer text, and the "reconstruction" cloud: the reconstruction the
cells worked on (``used_reconstruction``: what a model backend served them, kept by a
``ReconstructionRecorder``, or the sensor backend's), coloured, voxel-downsampled and size-capped.
``ros/publishing.py`` turns the specs into messages.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from .config import PerceptionConfig
from .frames import Frame, FrameSet
from .kernel.host import HostHandler, HostReply, HostRequest
from .perception.model_service import SERVICE, reconstruction_from_reply
from .perception.reconstruction import Reconstruction, ViewGeometry
from .perception.sensor import SensorBackend
from .perception.service import BackendStatus, PerceptionService
from .tf_buffer import TransformSource

# Marker kinds (visualization_msgs/Marker type constants).
ARROW, CUBE, SPHERE, LINE_LIST, TEXT = 0, 1, 2, 5, 9

#: Label colours (RGB 0..1), assigned in order of first appearance.
PALETTE = ((0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16), (0.58, 0.4, 0.74),
           (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.5, 0.5, 0.5), (0.74, 0.74, 0.13), (0.09, 0.75, 0.81))
ANSWER_COLOUR = (1.0, 1.0, 1.0, 1.0)
SEGMENT_COLOUR = (1.0, 0.9, 0.1, 1.0)
POINT_DIAMETER_M = 0.06
LINE_WIDTH_M = 0.015
TEXT_HEIGHT_M = 0.12
LABEL_LIFT_M = 0.12  # labels float this far above what they name
MIN_BOX_SIZE_M = 0.02
#: An evidence group with at least this many points is an object: it gets a box and its points go to the objects cloud.
MIN_OBJECT_POINTS = 3
# Names of the two clouds: the reconstruction used, and every object's points coloured by label.
RECONSTRUCTION, OBJECTS = "reconstruction", "objects"
#: Where no evidence point anchors the answer text: this far in front of and above the newest camera.
ANSWER_AHEAD_M = 1.0
#: Reconstructed points less confident than this stay out of the cloud (the tools' default ``conf_threshold``).
CLOUD_MIN_CONFIDENCE = 0.3


@dataclass(frozen=True)
class MarkerSpec:
    """One RViz marker in ``Markup.frame_id``: ``kind`` is one of ARROW, CUBE, SPHERE, LINE_LIST, TEXT.

    ``position`` is the marker's centre (text: its anchor); LINE_LIST and ARROW use ``points`` (pairs;
    an arrow's tail then head) instead. ``scale`` follows Marker semantics for each kind.
    """

    id: int
    kind: int
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    colour: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    points: tuple[tuple[float, float, float], ...] = ()
    text: str = ""


@dataclass(frozen=True, eq=False)
class CloudSpec:
    """A coloured point cloud in ``Markup.frame_id``: ``points`` (N, 3) float32, ``colours`` (N, 3) uint8."""

    name: str
    points: np.ndarray
    colours: np.ndarray


@dataclass(eq=False)
class Markup:
    """Everything shown for one answer, in one frame, under one marker namespace."""

    namespace: str
    frame_id: str
    stamp_s: float
    markers: list[MarkerSpec] = field(default_factory=list)
    clouds: list[CloudSpec] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class Evidence:
    """The world points of one label the answer rests on, (N, 3)."""

    label: str
    points: np.ndarray


def evidence_groups(answer, world_frame: str, tf: TransformSource, stamp_s: float) -> list[Evidence]:
    """The answer's evidence points (``Answer.points``: dicts with ``label``, ``xyz`` and optionally the TF
    ``frame`` xyz is in, default the world frame) in the world frame, grouped by label in order of appearance.
    ``xyz`` may be one point or an (N, 3) array of an object's points."""
    grouped: dict[str, list[np.ndarray]] = {}
    for entry in answer.points:
        xyz = np.asarray(entry["xyz"], dtype=np.float64).reshape(-1, 3)
        frame = entry.get("frame")
        if isinstance(frame, str) and frame and frame.lstrip("/") != world_frame:
            xyz = apply(tf.lookup(world_frame, frame, stamp_s), xyz)
        grouped.setdefault(str(entry.get("label") or "point"), []).append(xyz[np.isfinite(xyz).all(axis=1)])
    return [Evidence(label, np.concatenate(parts)) for label, parts in grouped.items() if sum(map(len, parts))]


def apply(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (N, 3) mapped by the 4x4 transform ``T``."""
    return np.asarray(points, dtype=np.float64) @ T[:3, :3].T + T[:3, 3]


def world_to_target(frames: FrameSet, tf: TransformSource, target_frame: str) -> np.ndarray:
    """4x4 map from the frames' world frame into ``target_frame`` at the newest frame's stamp (TransformError if none)."""
    if target_frame == frames.world_frame:
        return np.eye(4)
    return tf.lookup(target_frame, frames.world_frame, max(f.stamp for f in frames.frames))


def evidence_in(answer, frames: FrameSet, tf: TransformSource, target_frame: str) -> list[Evidence]:
    """The answer's evidence groups (``evidence_groups``) mapped into ``target_frame``."""
    if answer is None:
        return []
    newest = max(f.stamp for f in frames.frames)
    T = world_to_target(frames, tf, target_frame)
    return [Evidence(g.label, apply(T, g.points)) for g in evidence_groups(answer, frames.world_frame, tf, newest)]


def key_points(groups: Sequence[Evidence]) -> list[tuple[str, np.ndarray]]:
    """One (label, xyz) per evidence group: its point, or the centre of an object's points' bounds."""
    return [(g.label, (g.points.min(axis=0) + g.points.max(axis=0)) / 2) for g in groups]


def build_markup(result, frames: FrameSet, tf: TransformSource, target_frame: str, *, namespace: str,
                 reconstruction: Reconstruction | None = None, cloud_voxel_m: float = 0.05,
                 cloud_max_points: int = 50_000) -> Markup:
    """The markers and clouds of ``result`` (an AgentResult) over ``frames``, in ``target_frame``, with the cloud of
    ``reconstruction`` (see ``used_reconstruction``; None: no reconstruction cloud).

    Everything is placed at the time of the newest frame (``Markup.stamp_s``); ``tf`` must connect the
    frames' world frame with ``target_frame`` then (TransformError otherwise).
    """
    newest = max(frames.frames, key=lambda f: f.stamp)
    to_target = world_to_target(frames, tf, target_frame)
    markup = Markup(namespace=namespace, frame_id=target_frame, stamp_s=newest.stamp)
    groups = evidence_in(result.answer, frames, tf, target_frame)
    next_id = iter(range(1_000_000))
    objects = []
    for number, group in enumerate(groups):
        colour = PALETTE[number % len(PALETTE)]
        markup.markers += _object_markers(group, colour, next_id)
        if len(group.points) >= MIN_OBJECT_POINTS:
            objects.append((group.points, np.tile(np.round(np.multiply(colour, 255)).astype(np.uint8), (len(group.points), 1))))
    if len(groups) == 2 and all(len(g.points) == 1 for g in groups):
        markup.markers += _segment_markers(groups[0].points[0], groups[1].points[0], result.answer, next_id)
    anchor = _answer_anchor(groups, newest, to_target)
    markup.markers.append(MarkerSpec(next(next_id), TEXT, tuple(anchor), (0, 0, TEXT_HEIGHT_M * 1.5), ANSWER_COLOUR,
                                     text=answer_text(result)))
    if reconstruction is not None:
        points, colours = reconstruction_cloud(reconstruction, frames, to_target, cloud_voxel_m, cloud_max_points)
        if len(points):
            markup.clouds.append(CloudSpec(RECONSTRUCTION, points, colours))
    if objects:
        markup.clouds.append(CloudSpec(OBJECTS, np.concatenate([p for p, _ in objects]).astype(np.float32),
                                       np.concatenate([c for _, c in objects])))
    return markup


class ReconstructionRecorder:
    """A PerceptionService whose reconstruction host service keeps what it returns to the current question's
    cells, so the cloud shown is the one they used (``served``); ``handlers`` starts a new question."""

    def __init__(self, service: PerceptionService) -> None:
        self.service = service
        self._views: dict[int, ViewGeometry] = {}
        self._served: Reconstruction | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        self.service.load()

    def report(self) -> list[BackendStatus]:
        return self.service.report()

    def close(self) -> None:
        self.service.close()

    def handlers(self, frames: FrameSet) -> dict[str, HostHandler]:
        with self._lock:
            self._views, self._served = {}, None
        handlers = self.service.handlers(frames)
        if SERVICE in handlers:
            handlers[SERVICE] = self._recording(handlers[SERVICE])
        return handlers

    def _recording(self, handler: HostHandler) -> HostHandler:
        def handle(request: HostRequest) -> HostReply:
            reply = handler(request)
            served = reconstruction_from_reply(reply)
            with self._lock:
                self._views.update(served.views)
                self._served = Reconstruction(list(self._views.values()), world_frame=served.world_frame,
                                              source=served.source)
            return reply

        return handle

    def served(self) -> Reconstruction | None:
        """Every view the current question's cells were served (the newest per frame), or None."""
        with self._lock:
            return self._served


def used_reconstruction(frames: FrameSet, perception: PerceptionConfig,
                        served: Reconstruction | None = None) -> Reconstruction | None:
    """The reconstruction a question's cells worked on: what the model backend served them (``served``), or for the
    ``sensor`` backend (which runs in the kernel, per frame) that backend's views of every frame that has depth,
    intrinsics and a pose. None when a model backend served nothing."""
    if served is not None or perception.reconstruction != "sensor":
        return served
    usable = [f for f in frames.frames if f.depth is not None and f.K is not None and f.T_world_camera is not None]
    return SensorBackend(host=None, world_frame=frames.world_frame).reconstruct(usable) if usable else None


def answer_record(question: str, result, frame_id: str) -> dict:
    """The answer the node publishes on ``~/answer`` (and offline bags carry) for an answered result: the
    question, its frame, and the ``result.json`` record of the result."""
    return {"question": question, "frame": frame_id, **result.to_dict()}


def answer_text(result) -> str:
    """The text shown for a result: the answer (flagged when low confidence) or the failure."""
    if result.answer is None:
        return f"no answer: {result.error_code or result.status}" + (f" ({result.error_message})" if result.error_message else "")
    return result.answer.text + (" (low confidence)" if result.low_confidence else "")


def _object_markers(group: Evidence, colour: tuple[float, float, float], ids) -> list[MarkerSpec]:
    """A sphere per point (fewer than MIN_OBJECT_POINTS) or a translucent axis-aligned box, with the label above."""
    points = group.points
    low, high = points.min(axis=0), points.max(axis=0)
    centre = (low + high) / 2
    if len(points) < MIN_OBJECT_POINTS:
        shapes = [MarkerSpec(next(ids), SPHERE, tuple(p), (POINT_DIAMETER_M,) * 3, (*colour, 1.0)) for p in points]
    else:
        shapes = [MarkerSpec(next(ids), CUBE, tuple(centre), tuple(np.maximum(high - low, MIN_BOX_SIZE_M)), (*colour, 0.35))]
    label_at = (centre[0], centre[1], high[2] + LABEL_LIFT_M)
    return shapes + [MarkerSpec(next(ids), TEXT, tuple(label_at), (0, 0, TEXT_HEIGHT_M), (*colour, 1.0), text=group.label)]


def _segment_markers(a: np.ndarray, b: np.ndarray, answer, ids) -> list[MarkerSpec]:
    """Between two single evidence points: a line labelled with the length, or an arrow from a to b."""
    if answer is not None and answer.unit == "m":
        middle = (a + b) / 2
        return [MarkerSpec(next(ids), LINE_LIST, scale=(LINE_WIDTH_M, 0, 0), colour=SEGMENT_COLOUR,
                           points=(tuple(a), tuple(b))),
                MarkerSpec(next(ids), TEXT, (middle[0], middle[1], middle[2] + LABEL_LIFT_M), (0, 0, TEXT_HEIGHT_M),
                           SEGMENT_COLOUR, text=f"{float(np.linalg.norm(b - a)):.2f} m")]
    return [MarkerSpec(next(ids), ARROW, scale=(LINE_WIDTH_M * 2, LINE_WIDTH_M * 4, LINE_WIDTH_M * 6),
                       colour=SEGMENT_COLOUR, points=(tuple(a), tuple(b)))]


def _answer_anchor(groups: Sequence[Evidence], newest: Frame, world_to_target: np.ndarray) -> np.ndarray:
    """Above the evidence, or in front of the newest camera when there is none."""
    if groups:
        points = np.concatenate([g.points for g in groups])
        return np.array([*points[:, :2].mean(axis=0), points[:, 2].max() + 2.5 * LABEL_LIFT_M])
    if newest.T_world_camera is None:
        return np.zeros(3)
    ahead = newest.T_world_camera @ np.array([0.0, 0.0, ANSWER_AHEAD_M, 1.0])
    return apply(world_to_target, ahead[None, :3])[0]


def reconstruction_cloud(reconstruction: Reconstruction, frames: FrameSet, world_to_target: np.ndarray,
                         voxel_m: float, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Coloured points of ``reconstruction`` (confidence at least CLOUD_MIN_CONFIDENCE) in the target frame, coloured
    by their frames' pixels: one point per ``voxel_m`` cube (the first seen), at most ``max_points`` (evenly
    thinned). (N, 3) float32, (N, 3) uint8."""
    by_index = {f.index: f for f in frames.frames}
    views = [view for fi, view in reconstruction.views.items() if fi in by_index]
    if not views or max_points < 1:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
    pixels = sum(view.points.shape[0] * view.points.shape[1] for view in views)
    stride = max(1, math.isqrt(max(1, pixels // (4 * max_points))))
    clouds, colours = [], []
    for view in views:
        points = view.points[::stride, ::stride]
        rgb = by_index[view.frame_index].rgb
        if rgb.shape[:2] != view.points.shape[:2]:  # a model's maps at its own resolution
            rgb = cv2.resize(rgb, view.points.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        keep = np.isfinite(points).all(axis=2) & (view.confidence[::stride, ::stride] >= CLOUD_MIN_CONFIDENCE)
        clouds.append(apply(world_to_target, points[keep]))
        colours.append(rgb[::stride, ::stride][keep])
    points, colours = np.concatenate(clouds), np.concatenate(colours)
    if voxel_m > 0 and len(points):
        keys = np.floor(points / voxel_m).astype(np.int64)
        _, first = np.unique(keys, axis=0, return_index=True)
        first.sort()
        points, colours = points[first], colours[first]
    if len(points) > max_points:
        keep = np.linspace(0, len(points) - 1, max_points).round().astype(int)
        points, colours = points[keep], colours[keep]
    return points.astype(np.float32), colours.astype(np.uint8)
