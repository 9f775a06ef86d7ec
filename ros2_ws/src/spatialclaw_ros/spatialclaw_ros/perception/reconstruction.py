"""``Reconstruction``: per-frame metric depth, world point maps, confidence, intrinsics and camera poses.

Every reconstruction of one question is expressed in the same TF world frame (REP 103: z up) and
is metric, so results of several calls can be combined directly. Per-frame accessors take ABSOLUTE
frame indices. All arrays are read-only: they may be shared through the perception cache. A frame
given twice is held twice in the stacked arrays (as in the reference kernel); lookups find it once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, Iterator, TypeVar

import numpy as np

from .camera import project

V = TypeVar("V")


class FrameIndexError(KeyError):
    """An absolute frame index that the object does not hold; the message lists the valid ones."""

    def __str__(self) -> str:
        return str(self.args[0])


class FrameMap(Mapping[int, V], Generic[V]):
    """Read-only mapping from absolute frame index to a per-frame value, with helpful KeyErrors.

    ``order`` lists the frames as the caller gave them (a frame may repeat); stacking follows it.
    """

    def __init__(self, what: str, items: dict[int, V], order: list[int] | None = None) -> None:
        self._what = what
        self._items = items
        self._order = list(items) if order is None else list(order)

    def __getitem__(self, frame_index: int) -> V:
        if isinstance(frame_index, (bool, float, str)) or not hasattr(frame_index, "__index__"):
            raise TypeError(f"{self._what}s are indexed by an absolute frame index (int), got "
                            f"{type(frame_index).__name__}; valid frame indices: {list(self._items)}")
        try:
            return self._items[int(frame_index)]
        except KeyError:
            hint = "; did you mean InputImages[0].frame_index?" if frame_index == 0 else ""
            raise FrameIndexError(f"Frame {frame_index} not found: no {self._what} for frame index {frame_index}; "
                                  f"valid frame indices (absolute, as in InputImages[i].frame_index): "
                                  f"{list(self._items)}{hint}") from None

    def __iter__(self) -> Iterator[int]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<{self._what} of frames {list(self._items)}>"

    def stacked(self) -> np.ndarray:
        """All frames' arrays stacked along a new first axis (frames in order); the frames must share a size."""
        shapes = {np.shape(v) for v in self._items.values()}
        if len(shapes) > 1:
            raise ValueError(f"cannot stack {self._what}s: the frames differ in resolution ({sorted(shapes)}); "
                             f"index them per frame instead, e.g. [{next(iter(self._items))}]")
        return np.stack([self._items[fi] for fi in self._order])


@dataclass(frozen=True)
class ViewGeometry:
    """One frame's reconstruction at the frame's resolution (arrays read-only)."""

    frame_index: int
    depth: np.ndarray  # (H, W) float32 metres, camera z; NaN = no depth
    points: np.ndarray  # (H, W, 3) float32 world points; NaN where depth is NaN
    confidence: np.ndarray  # (H, W) float32 in [0, 1]
    K: np.ndarray  # (3, 3) pinhole intrinsics in pixels
    T_world_camera: np.ndarray  # (4, 4) camera optical frame -> world

    def __post_init__(self) -> None:
        height, width = self.depth.shape
        if self.points.shape != (height, width, 3) or self.confidence.shape != (height, width):
            raise ValueError(f"frame {self.frame_index}: depth {self.depth.shape}, points {self.points.shape} "
                             f"and confidence {self.confidence.shape} do not agree")
        for array in (self.depth, self.points, self.confidence, self.K, self.T_world_camera):
            array.setflags(write=False)

    @property
    def nbytes(self) -> int:
        """Memory the arrays take (bytes), for the cache's budget."""
        return self.depth.nbytes + self.points.nbytes + self.confidence.nbytes

    def depth_at(self, points_world: np.ndarray, distortion: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where (N, 3) world points land in this view: pixels (N, 2), their camera z (N,) and the view's depth at
        those pixels (N,), NaN where a point is behind the camera, outside the image or on a pixel without depth."""
        uv, z = project(points_world, self.K, self.T_world_camera, distortion)
        height, width = self.depth.shape
        with np.errstate(invalid="ignore"):
            pixel = np.round(uv).astype(int)
            inside = (z > 0) & (pixel[:, 0] >= 0) & (pixel[:, 1] >= 0) & (pixel[:, 0] < width) & (pixel[:, 1] < height)
        observed = np.full(z.shape, np.nan)
        observed[inside] = self.depth[pixel[inside, 1], pixel[inside, 0]]
        return uv, z, observed


def _per_frame(views: list[ViewGeometry], field: str) -> dict[int, np.ndarray]:
    """``{frame index: view.field}`` in order, each frame once."""
    return {v.frame_index: getattr(v, field) for v in views}


class WithConfidence(FrameMap[np.ndarray]):
    """A per-frame map that also stacks the frames' confidence maps as ``.confidence`` (N, H, W)."""

    def __init__(self, what: str, views: list[ViewGeometry], field: str, confidence: FrameMap[np.ndarray]) -> None:
        super().__init__(what, _per_frame(views, field), [v.frame_index for v in views])
        self._confidence = confidence

    @property
    def confidence(self) -> np.ndarray:
        """(N, H, W) float32 confidence in [0, 1], frames in order."""
        return self._confidence.stacked()


class PointMaps(WithConfidence):
    """``points[fi]``: (H, W, 3) world points of frame ``fi``; ``.points`` (N, H, W, 3), ``.confidence`` (N, H, W)."""

    def __init__(self, views: list[ViewGeometry], confidence: FrameMap[np.ndarray]) -> None:
        super().__init__("point map", views, "points", confidence)

    @property
    def points(self) -> np.ndarray:
        """(N, H, W, 3) float32 world points, frames in order."""
        return self.stacked()


class DepthMaps(WithConfidence):
    """``depth[fi]``: (H, W) camera z in metres of frame ``fi``; ``.depth`` (N, H, W), ``.confidence`` (N, H, W)."""

    def __init__(self, views: list[ViewGeometry], confidence: FrameMap[np.ndarray]) -> None:
        super().__init__("depth map", views, "depth", confidence)

    @property
    def depth(self) -> np.ndarray:
        """(N, H, W) float32 metres, frames in order."""
        return self.stacked()


class Intrinsics(FrameMap[dict]):
    """``intrinsics[fi]``: {fx, fy, cx, cy} in pixels; ``.fx .fy .cx .cy`` (N,) arrays and ``.K`` (N, 3, 3)."""

    def __init__(self, views: list[ViewGeometry]) -> None:
        super().__init__("intrinsics", {
            v.frame_index: {"fx": float(v.K[0, 0]), "fy": float(v.K[1, 1]), "cx": float(v.K[0, 2]), "cy": float(v.K[1, 2])}
            for v in views}, [v.frame_index for v in views])
        self.K = np.stack([v.K for v in views])
        self.K.setflags(write=False)
        self.fx, self.fy, self.cx, self.cy = (self.K[:, 0, 0], self.K[:, 1, 1], self.K[:, 0, 2], self.K[:, 1, 2])


class Extrinsics(FrameMap[np.ndarray]):
    """``extrinsics[fi]``: 4x4 camera-to-world pose of frame ``fi``; ``.camera_poses`` (N, 4, 4)."""

    def __init__(self, views: list[ViewGeometry]) -> None:
        super().__init__("camera pose", _per_frame(views, "T_world_camera"), [v.frame_index for v in views])
        self.camera_poses = np.stack([v.T_world_camera for v in views])
        self.camera_poses.setflags(write=False)


class Reconstruction:
    """Metric 3D of some of the question's frames in the TF world frame ``world_frame`` (z up). fi = ABSOLUTE index.

    ``points[fi]`` (H, W, 3) world points (NaN = unknown), ``.points.points`` (N, H, W, 3), ``.points.confidence``
    (N, H, W); ``depth[fi]`` (H, W) m (``.depth.depth``); ``confidence[fi]`` (H, W) in [0, 1]; ``intrinsics[fi]``
    {fx, fy, cx, cy} px (``.fx`` ... (N,)); ``extrinsics[fi]`` 4x4 camera-to-world, OpenCV axes (columns right,
    down, forward, position; ``.camera_poses``). ``metric_scale`` 1.0; ``gravity_direction`` points DOWN.
    """

    #: RMS camera-centre error (m) of a model reconstruction's alignment onto TF; None where nothing was aligned.
    alignment_residual_m: float | None = None
    _PROMPT_HIDDEN = ("subset", "nbytes", "to_arrays")

    def __init__(self, views: list[ViewGeometry], *, world_frame: str, source: str,
                 metric_scale: float = 1.0, gravity_direction=(0.0, 0.0, -1.0)) -> None:
        if not views:
            raise ValueError("a reconstruction needs at least one frame")
        order = [v.frame_index for v in views]
        unique = {}
        for view in views:
            if unique.setdefault(view.frame_index, view) is not view:
                raise ValueError(f"frame {view.frame_index} is given twice with different views")
        self.views = FrameMap("reconstructed view", unique)
        self._order = order
        self.world_frame = world_frame
        self.source = source
        self.metric_scale = float(metric_scale)
        self.gravity_direction = np.asarray(gravity_direction, dtype=np.float64)
        self.gravity_direction.setflags(write=False)
        self.confidence = FrameMap("confidence map", _per_frame(views, "confidence"), order)
        self.points = PointMaps(views, self.confidence)
        self.depth = DepthMaps(views, self.confidence)
        self.intrinsics = Intrinsics(views)
        self.extrinsics = Extrinsics(views)

    @property
    def frame_indices(self) -> list[int]:
        """Absolute indices of the reconstructed frames, in the order given (a repeated frame repeats)."""
        return list(self._order)

    @property
    def num_frames(self) -> int:
        """How many frames were reconstructed (``len(recon)`` too)."""
        return len(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def get_by_frame_index(self, frame_index: int) -> int:
        """Position (0..N-1) of absolute frame ``frame_index`` in the stacked arrays."""
        self.views[frame_index]  # KeyError listing the frames
        return self._order.index(int(frame_index))

    def validate_alignment(self, other, strict: bool = True) -> bool:
        """True if ``other`` (PerFrameMask, Reconstruction, index list) has the same frames (strict) or only
        frames this one holds; else ValueError."""
        theirs = list(other) if isinstance(other, (list, tuple)) else list(other.frame_indices)
        if strict and theirs != self.frame_indices:
            raise ValueError(f"frame indices differ: {theirs} vs this reconstruction's {self.frame_indices}")
        missing = [fi for fi in theirs if fi not in self.views]
        if missing:
            raise ValueError(f"frames {missing} are not in this reconstruction, which holds {self.frame_indices}")
        return True

    def subset(self, frame_indices: list[int]) -> Reconstruction:
        """The views of ``frame_indices`` (absolute, in that order) as a reconstruction in the same frame."""
        part = Reconstruction([self.views[fi] for fi in frame_indices], world_frame=self.world_frame,
                              source=self.source, metric_scale=self.metric_scale,
                              gravity_direction=self.gravity_direction)
        part.alignment_residual_m = self.alignment_residual_m
        return part

    @property
    def nbytes(self) -> int:
        """Memory the arrays take (bytes), for the cache's budget."""
        return sum(v.nbytes for v in self.views.values())

    def __repr__(self) -> str:
        return (f"Reconstruction({self.num_frames} frames {self.frame_indices}, source={self.source}, "
                f"world_frame={self.world_frame}, metric_scale={self.metric_scale})")

    def render_bev(self, masks=None, labels=None, prompts=None, conf_threshold: float = 0.1, ref_frame=None,
                   ego_trajectory: bool = True, *, title: str = "", size_px: int = 800):
        """Top-down VisualFeedback from above camera ``ref_frame`` (absolute; default the first), at the bottom
        looking up: x its right, y its forward (m). Still objects: footprint box; moving: red-to-blue track;
        ego_trajectory: the camera path. ``.description`` says where each object is. ``masks``: PerFrameMask
        (frames matched by index), (T, N, H, W) bool array (T = this reconstruction's frames), point sets or
        {label: points | Box3D}. ``prompts``: refused, segment first."""
        from ..tools.bev import render_bev  # tools imports this module: import at call time

        if prompts is not None:
            raise ValueError("render_bev(prompts=...) does not segment; segment first, e.g. seg = tools.SAM3."
                             "segment_video_by_text(prompts, frame_indices=recon.frame_indices), then "
                             "recon.render_bev(masks=seg)")
        reference = self.frame_indices[0] if ref_frame is None else ref_frame
        return render_bev(self._bev_objects(masks, labels, conf_threshold), dict(self.extrinsics),
                          reference=self.extrinsics[reference], reference_label=f"camera of frame {reference}",
                          ego_trajectory=ego_trajectory, title=title, size_px=size_px,
                          source="Reconstruction.render_bev")

    def _bev_objects(self, masks, labels, conf_threshold: float) -> dict:
        """``{label: per-frame point sets {fi: (K, 3)} or points or Box3D}`` for render_bev."""
        from .segmentation import PerFrameMask, masked_points

        if masks is None or isinstance(masks, Mapping):
            return dict(masks or {})
        if isinstance(masks, PerFrameMask):
            frames = [fi for fi in masks.frame_indices if fi in self.views]
            if not frames:
                raise ValueError(f"the masks' frames {masks.frame_indices} and this reconstruction's "
                                 f"{self.frame_indices} do not overlap")
            names = _names(labels, masks.labels)
            return {name: {fi: masks.get_masked_points(self, fi, n, conf_threshold) for fi in frames}
                    for n, name in enumerate(names)}
        if isinstance(masks, np.ndarray) and masks.dtype == bool:
            stack = masks[None] if masks.ndim == 3 else masks
            if stack.ndim != 4 or len(stack) != self.num_frames:
                raise ValueError(f"a mask array has no frame indices, so it needs one (N, H, W) stack per "
                                 f"reconstructed frame ({self.num_frames}: {self.frame_indices}), got shape "
                                 f"{masks.shape}; pass the PerFrameMask instead to match frames by index")
            names = _names(labels, [f"object_{n}" for n in range(stack.shape[1])])
            return {name: {fi: masked_points(self.points[fi], self.confidence[fi], stack[t, n], conf_threshold)
                           for t, fi in enumerate(self.frame_indices)} for n, name in enumerate(names)}
        names = _names(labels, [f"object {n}" for n in range(len(masks))], "point sets")
        return dict(zip(names, masks))

    def to_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-safe metadata and named arrays (no pickle), e.g. to carry it over a host call."""
        meta = {"frame_indices": self.frame_indices, "world_frame": self.world_frame, "source": self.source,
                "metric_scale": self.metric_scale, "gravity_direction": self.gravity_direction.tolist()}
        arrays = {}
        for v in self.views.values():
            for name in ("depth", "points", "confidence", "K", "T_world_camera"):
                arrays[f"{name}_{v.frame_index}"] = getattr(v, name)
        return meta, arrays

    @classmethod
    def from_arrays(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "Reconstruction":
        """Inverse of ``to_arrays``."""
        views = [ViewGeometry(frame_index=fi, **{name: np.array(arrays[f"{name}_{fi}"])
                                                 for name in ("depth", "points", "confidence", "K", "T_world_camera")})
                 for fi in meta["frame_indices"]]
        return cls(views, world_frame=meta["world_frame"], source=meta["source"],
                   metric_scale=meta["metric_scale"], gravity_direction=meta["gravity_direction"])


def _names(labels, default: list[str], what: str = "objects") -> list[str]:
    """``labels`` (one per object) or ``default``; ValueError when the counts differ."""
    names = list(default) if labels is None else [labels] if isinstance(labels, str) else [str(n) for n in labels]
    if len(names) != len(default):
        raise ValueError(f"{len(default)} {what} but {len(names)} labels")
    return names
