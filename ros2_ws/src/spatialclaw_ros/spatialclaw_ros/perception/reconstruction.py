"""``Reconstruction``: per-frame metric depth, world point maps, confidence, intrinsics and camera poses.

Every reconstruction of one question is expressed in the same TF world frame (REP 103: z up) and
is metric, so results of several calls can be combined directly. Per-frame accessors take ABSOLUTE
frame indices. All arrays are read-only: they may be shared through the perception cache.
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
    """Read-only mapping from absolute frame index to a per-frame value, with helpful KeyErrors."""

    def __init__(self, what: str, items: dict[int, V]) -> None:
        self._what = what
        self._items = items

    def __getitem__(self, frame_index: int) -> V:
        try:
            return self._items[int(frame_index)]
        except (KeyError, TypeError, ValueError):
            raise FrameIndexError(f"no {self._what} for frame index {frame_index!r}; valid frame indices "
                                  f"(absolute, as in InputImages[i].frame_index): {list(self._items)}") from None

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
        return np.stack(list(self._items.values()))


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


class PointMaps(FrameMap[np.ndarray]):
    """``points[fi]``: (H, W, 3) world points of frame ``fi``; ``.points`` (N, H, W, 3), ``.confidence`` (N, H, W)."""

    def __init__(self, views: list[ViewGeometry], confidence: FrameMap[np.ndarray]) -> None:
        super().__init__("point map", {v.frame_index: v.points for v in views})
        self._confidence = confidence

    @property
    def points(self) -> np.ndarray:
        return self.stacked()

    @property
    def confidence(self) -> np.ndarray:
        return self._confidence.stacked()


class Intrinsics(FrameMap[dict]):
    """``intrinsics[fi]``: {fx, fy, cx, cy} in pixels; ``.fx .fy .cx .cy`` (N,) arrays and ``.K`` (N, 3, 3)."""

    def __init__(self, views: list[ViewGeometry]) -> None:
        super().__init__("intrinsics", {
            v.frame_index: {"fx": float(v.K[0, 0]), "fy": float(v.K[1, 1]), "cx": float(v.K[0, 2]), "cy": float(v.K[1, 2])}
            for v in views})
        self.K = np.stack([v.K for v in views])
        self.K.setflags(write=False)
        self.fx, self.fy, self.cx, self.cy = (self.K[:, 0, 0], self.K[:, 1, 1], self.K[:, 0, 2], self.K[:, 1, 2])


class Extrinsics(FrameMap[np.ndarray]):
    """``extrinsics[fi]``: 4x4 camera-to-world pose of frame ``fi``; ``.camera_poses`` (N, 4, 4)."""

    def __init__(self, views: list[ViewGeometry]) -> None:
        super().__init__("camera pose", {v.frame_index: v.T_world_camera for v in views})
        self.camera_poses = np.stack([v.T_world_camera for v in views])
        self.camera_poses.setflags(write=False)


class Reconstruction:
    """Metric 3D of some of the question's frames in the TF world frame ``world_frame`` (z up).

    ``points[fi]`` (H, W, 3) world points (NaN = unknown) with ``.points``/``.confidence`` stacked;
    ``depth[fi]`` (H, W) metres; ``confidence[fi]`` (H, W) in [0, 1]; ``intrinsics[fi]`` dict fx, fy,
    cx, cy (arrays ``.fx`` ...); ``extrinsics[fi]`` 4x4 camera-to-world (``.camera_poses``).
    ``metric_scale`` is 1.0 (already metric); ``gravity_direction`` is a world unit vector (down).
    """

    #: RMS camera-centre error (m) of a model reconstruction's alignment onto TF; None where nothing was aligned.
    alignment_residual_m: float | None = None

    def __init__(self, views: list[ViewGeometry], *, world_frame: str, source: str,
                 metric_scale: float = 1.0, gravity_direction=(0.0, 0.0, -1.0)) -> None:
        if not views:
            raise ValueError("a reconstruction needs at least one frame")
        indices = [v.frame_index for v in views]
        if len(set(indices)) != len(indices):
            raise ValueError(f"frame indices must be unique, got {indices}")
        self.views = FrameMap("reconstructed view", {v.frame_index: v for v in views})
        self.world_frame = world_frame
        self.source = source
        self.metric_scale = float(metric_scale)
        self.gravity_direction = np.asarray(gravity_direction, dtype=np.float64)
        self.gravity_direction.setflags(write=False)
        self.confidence = FrameMap("confidence map", {v.frame_index: v.confidence for v in views})
        self.points = PointMaps(views, self.confidence)
        self.depth = FrameMap("depth map", {v.frame_index: v.depth for v in views})
        self.intrinsics = Intrinsics(views)
        self.extrinsics = Extrinsics(views)

    @property
    def frame_indices(self) -> list[int]:
        """Absolute indices of the reconstructed frames, in order."""
        return list(self.views)

    def subset(self, frame_indices: list[int]) -> Reconstruction:
        """The views of ``frame_indices`` (absolute, in that order) as a reconstruction in the same frame."""
        part = Reconstruction([self.views[fi] for fi in frame_indices], world_frame=self.world_frame,
                              source=self.source, metric_scale=self.metric_scale,
                              gravity_direction=self.gravity_direction)
        part.alignment_residual_m = self.alignment_residual_m
        return part

    @property
    def num_frames(self) -> int:
        """How many frames were reconstructed."""
        return len(self.views)

    @property
    def nbytes(self) -> int:
        """Memory the arrays take (bytes), for the cache's budget."""
        return sum(v.nbytes for v in self.views.values())

    def __repr__(self) -> str:
        return (f"Reconstruction({self.num_frames} frames {self.frame_indices}, source={self.source}, "
                f"world_frame={self.world_frame}, metric_scale={self.metric_scale})")

    def render_bev(self, masks=None, labels=None, *, title: str = "", size_px: int = 800):
        """Top-down PIL image (world x/y, z up, metric scale bar) of objects and this reconstruction's cameras.

        ``masks``: a PerFrameMask (each object's points from every frame both hold), a list of (K, 3)
        world point sets named by ``labels``, or a {label: points or Box3D} dict; None draws cameras only.
        """
        from ..tools.bev import render_bev  # tools imports this module: import at call time

        from .segmentation import PerFrameMask

        if isinstance(masks, PerFrameMask):
            objects = {label: masks.get_all_masked_points(self, n) for n, label in enumerate(labels or masks.labels)}
        elif isinstance(masks, Mapping) or masks is None:
            objects = masks
        else:
            names = labels or [f"object {n}" for n in range(len(masks))]
            if len(names) != len(masks):
                raise ValueError(f"{len(masks)} point sets but {len(names)} labels")
            objects = dict(zip(names, masks))
        return render_bev(objects, dict(self.extrinsics), title=title, size_px=size_px)

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
