"""Typed values of the spatial tools: point-set inputs, and results with their unit and frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def as_points(points, name: str = "points") -> np.ndarray:
    """(N, 3) float array of the finite rows of (N, 3), (H, W, 3) or (3,) input; ValueError if none is left."""
    array = np.asarray(points, dtype=float)
    if array.shape[-1:] != (3,):
        raise ValueError(f"{name} must be 3D points with a last axis of 3, got shape {array.shape}")
    array = array.reshape(-1, 3)
    array = array[np.isfinite(array).all(axis=1)]
    if len(array) == 0:
        raise ValueError(f"{name} has no finite 3D points (empty mask, or no valid depth under it?)")
    return array


def fmt_vec(v) -> str:
    """Compact ``[x, y, z]`` with 3 decimals for reprs."""
    return "[" + ", ".join(f"{float(x):.3f}" for x in np.ravel(v)) + "]"


@dataclass(frozen=True, repr=False)
class Distance:
    """Metres between witness points; float(d) works."""

    value_m: float
    point_a: np.ndarray
    point_b: np.ndarray
    frame: str
    method: str

    def __float__(self) -> float:
        return self.value_m

    def evidence(self) -> dict[str, np.ndarray]:
        """The two witness points, for ReturnAnswer(..., evidence=d)."""
        return {"a": self.point_a, "b": self.point_b}

    def __repr__(self) -> str:
        return (f"Distance({self.value_m:.3f} m, {self.method}, a={fmt_vec(self.point_a)}, "
                f"b={fmt_vec(self.point_b)}, frame={self.frame})")


@dataclass(frozen=True, repr=False)
class Gap:
    """first = "a" | "b": lower along axis."""

    value_m: float
    axis: str
    first: str  # "a" or "b": which object comes first (lower coordinate) along the axis
    frame: str

    def __float__(self) -> float:
        return self.value_m

    def __repr__(self) -> str:
        kind = "overlap" if self.value_m < 0 else "gap"
        return f"Gap({self.value_m:.3f} m {kind} along {self.axis}, {self.first} first, frame={self.frame})"


@dataclass(frozen=True, repr=False)
class Box3D:
    """Metres; size along the columns of rotation."""

    center: np.ndarray
    size: np.ndarray
    rotation: np.ndarray  # (3, 3), columns are the box axes in ``frame``
    frame: str

    @property
    def yaw_deg(self) -> float:
        """Heading of the box's first axis about z (degrees, counter-clockwise from +x)."""
        return float(np.degrees(np.arctan2(self.rotation[1, 0], self.rotation[0, 0])))

    @property
    def corners(self) -> np.ndarray:
        """(8, 3) corner points in ``frame``."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
        return self.center + (signs * (self.size / 2.0)) @ self.rotation.T

    def evidence(self) -> dict[str, np.ndarray]:
        """The box centre, for ReturnAnswer(..., evidence=box)."""
        return {"center": self.center}

    def __repr__(self) -> str:
        return (f"Box3D(center={fmt_vec(self.center)} m, size={fmt_vec(self.size)} m, "
                f"yaw={self.yaw_deg:.1f} deg, frame={self.frame})")


@dataclass(frozen=True, repr=False)
class Dimensions:
    """Metres."""

    length_m: float
    width_m: float
    height_m: float
    frame: str

    def __repr__(self) -> str:
        return (f"Dimensions(length={self.length_m:.3f} m, width={self.width_m:.3f} m, "
                f"height={self.height_m:.3f} m, frame={self.frame})")


@dataclass(frozen=True, repr=False)
class Elevation:
    """Metres above floor."""

    bottom_m: float
    center_m: float
    top_m: float
    floor: "Plane"
    frame: str

    def __repr__(self) -> str:
        return (f"Elevation(bottom={self.bottom_m:.3f} m, center={self.center_m:.3f} m, top={self.top_m:.3f} m "
                f"above floor ({self.floor.source}), frame={self.frame})")


@dataclass(frozen=True, repr=False)
class Direction:
    """offset = B - A as (forward, left, up) m."""

    left_right: str  # "left" | "right" | "center"
    front_behind: str  # "front" | "behind" | "beside"
    above_below: str  # "above" | "below" | "level"
    azimuth_deg: float  # counter-clockwise from forward, positive = left
    elevation_deg: float  # positive = up
    distance_m: float
    offset: np.ndarray  # B - A in ``frame`` axes (m)
    frame: str

    def __repr__(self) -> str:
        return (f"Direction({self.left_right}, {self.front_behind}, {self.above_below}; "
                f"azimuth={self.azimuth_deg:.1f} deg, elevation={self.elevation_deg:.1f} deg, "
                f"distance={self.distance_m:.3f} m, frame={self.frame})")


@dataclass(frozen=True, repr=False)
class CameraMotion:
    """turn = "left" | "right" | "none"."""

    translation_m: np.ndarray
    distance_m: float
    yaw_deg: float  # positive = counter-clockwise about world z = a left turn (REP 103)
    turn: str  # "left" | "right" | "none"
    frame: str

    def __repr__(self) -> str:
        return (f"CameraMotion(moved {self.distance_m:.3f} m {fmt_vec(self.translation_m)}, "
                f"yaw {self.yaw_deg:+.1f} deg = turn {self.turn}, frame={self.frame})")


@dataclass(frozen=True, repr=False)
class Plane:
    """normal . p + offset = 0; signed_distance(points) in m; unpacks as ``normal, inliers``."""

    normal: np.ndarray
    offset: float
    frame: str
    source: str  # "tf" or "ransac"
    inlier_ratio: float = 1.0
    inliers: np.ndarray | None = None  # bool, shaped like the points fitted (fit_ground_plane_ransac)

    def __iter__(self):
        return iter((self.normal, self.inliers))

    def signed_distance(self, points) -> np.ndarray:
        """Signed distance (m) of (N, 3) points to the plane, positive on the normal's side."""
        return np.asarray(points, dtype=float).reshape(-1, 3) @ self.normal + self.offset

    def __repr__(self) -> str:
        return (f"Plane(normal={fmt_vec(self.normal)}, offset={self.offset:.3f} m, source={self.source}, "
                f"inliers={self.inlier_ratio:.0%}, frame={self.frame})")


@dataclass(frozen=True, repr=False)
class InstanceCount:
    """groups: input indices per object."""

    count: int
    groups: list[list[int]]
    centers: np.ndarray  # (count, 3) per-axis median of each object's pooled voxels (m)
    frame: str

    def __int__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"InstanceCount({self.count} objects, groups={self.groups}, frame={self.frame})"
