"""``tools.Geometry``: 3D measurements in metres, each tagged with the frame it is expressed in.

Points are in the TF world frame (REP 103: x forward, y left, z up) unless a method says otherwise.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import ConvexHull, QhullError, cKDTree

from ..frames import Frame
from ..grounding import SCALE, to_pixels
from ..image_types import VisualFeedback
from .bev import render_bev
from .measures import (
    Box3D, CameraMotion, Dimensions, Direction, Distance, Elevation, Gap, InstanceCount, Plane, as_points,
)
from .shared import Shared
from .timing import frame_lookup

if TYPE_CHECKING:
    from ..perception.reconstruction import Reconstruction, ViewGeometry
    from . import ToolContext

#: Stray filters cut values above median + max(STRAY_MADS scaled MADs, a share of the median).
#: Bulk: distance to the set's median point, with statistics over BULK_VOXEL-sized voxels so that dense near-camera
#: parts do not outweigh far ones (share BULK_MARGIN). Isolation: distance to the ISOLATION_NEIGHBOUR-th nearest
#: point of the same set (share ISOLATION_MARGIN), which catches sparse flying pixels next to an object.
STRAY_MADS = 3.0
BULK_VOXEL = 0.02
BULK_MARGIN = 0.5
ISOLATION_NEIGHBOUR = 8
ISOLATION_MARGIN = 2.0
#: Robust extents use these percentiles instead of the minimum and maximum.
EXTENT_PERCENTILES = (1.0, 99.0)
#: Robust closest distance: the minimum over supported points, those near their set's bulk (a mask bleeding onto the
#: other object is cut there) with SUPPORT_NEIGHBOURS others of their set within max(SUPPORT_RADIUS, SUPPORT_SPACING x
#: the set's median distance to its SUPPORT_NEIGHBOURS-th nearest point). Stray and flying pixels, and the sparse tails
#: of depth noise, lack support; a clean surface keeps its edges, so the gap is not biased upward (unlike a rank
#: statistic or drop_strays' isolation test, which thins sparsely seen parts). The spacing term keeps sparse (far or
#: downsampled) sets usable.
SUPPORT_NEIGHBOURS = 3
SUPPORT_RADIUS = 0.02
SUPPORT_SPACING = 1.5
#: count_instances compares detections on COUNT_VOXEL-sized voxels (speed; dense parts do not outweigh sparse ones)
#: and pools two groups when at least COUNT_OVERLAP of the smaller one's voxels lie near the other's. Best overlap
#: first, and a pooled group is compared anew, so one detection that also covers a neighbour (a box prompt around an
#: occluder) does not chain two objects together.
COUNT_VOXEL = 0.02
COUNT_OVERLAP = 0.5
#: count_instances with a reconstruction also pools two groups when no view sees through the straight gap between
#: their closest points (sampled every HIDDEN_STEP m, leaving HIDDEN_END m at each end) and HIDDEN_SHARE of it lies
#: behind a nearer surface in some view: one object hidden in the middle by something in front (a sofa behind a
#: cabinet). A gap lying on a surface (the floor between two boxes) is not hidden. Behind or beyond: the view's depth
#: differs by more than DEPTH_MARGIN_M plus DEPTH_MARGIN_SHARE of the range (3 sigma of 1 % range noise).
HIDDEN_STEP = 0.02
HIDDEN_END = 0.05
HIDDEN_SHARE = 0.9
DEPTH_MARGIN_M = 0.05
DEPTH_MARGIN_SHARE = 0.03
#: Angle (degrees) around a boundary inside which relative_direction says "center" / "beside" / "level".
DIRECTION_DEAD_BAND_DEG = 10.0
#: Yaw change (degrees) under which camera_motion says the turn is "none".
TURN_DEAD_BAND_DEG = 3.0
#: floor_plane with points: RANSAC on the lowest FLOOR_SLICE of points, normal within FLOOR_MAX_TILT_DEG of +z,
#: accepted when at least FLOOR_MIN_INLIERS of that slice are inliers.
FLOOR_SLICE = 0.3
FLOOR_MAX_TILT_DEG = 10.0
FLOOR_MIN_INLIERS = 0.5
FLOOR_INLIER_M = 0.02
FLOOR_ITERATIONS = 500
#: fit_ground_plane_ransac needs this many qualifying points (as in the reference kernel), else gives (None, None).
MIN_PLANE_POINTS = 100
#: RANSAC scores hypotheses on at most this many points (a random subset), then refits on all inliers.
RANSAC_SCORE_POINTS = 20000
AXES = {"x": np.array([1.0, 0.0, 0.0]), "y": np.array([0.0, 1.0, 0.0]), "z": np.array([0.0, 0.0, 1.0])}


def as_point(point, name: str = "point") -> np.ndarray:
    """(3,) point from a 3-vector, or the per-axis median of an (N, 3) / (H, W, 3) point set."""
    return np.median(as_points(point, name), axis=0)


def spread_limit(values: np.ndarray, margin: float) -> float:
    """median + max(STRAY_MADS scaled MADs, margin x median) of 1-D values."""
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    return median + max(STRAY_MADS * 1.4826 * mad, margin * median)


def voxel_centres(points: np.ndarray, size: float) -> np.ndarray:
    """Centres of the size-m voxels that hold at least one of the points."""
    return (np.unique(np.floor(points / size), axis=0) + 0.5) * size


def drop_far(points: np.ndarray) -> np.ndarray:
    """Remove the points far from the set's bulk (see STRAY_MADS)."""
    voxels = voxel_centres(points, BULK_VOXEL)
    if len(voxels) == 1:  # nothing is far; the test below could drop a point on a voxel corner by rounding
        return points
    centre = np.median(voxels, axis=0)
    limit = spread_limit(np.linalg.norm(voxels - centre, axis=1), BULK_MARGIN) + BULK_VOXEL * math.sqrt(3) / 2
    return points[np.linalg.norm(points - centre, axis=1) <= limit]


def drop_strays(points: np.ndarray) -> np.ndarray:
    """Remove stray points: far from the set's bulk, then isolated from their neighbours (see STRAY_MADS)."""
    points = drop_far(points)
    if len(points) <= ISOLATION_NEIGHBOUR:
        return points
    spacing = cKDTree(points).query(points, k=ISOLATION_NEIGHBOUR + 1)[0][:, -1]  # the first hit is the point itself
    return points[spacing <= spread_limit(spacing, ISOLATION_MARGIN)]


def supported(points: np.ndarray) -> np.ndarray:
    """The points with SUPPORT_NEIGHBOURS others of the set within the support radius (see SUPPORT_NEIGHBOURS); all
    of them when there are too few to tell."""
    if len(points) <= SUPPORT_NEIGHBOURS:
        return points
    spacing = cKDTree(points).query(points, k=SUPPORT_NEIGHBOURS + 1)[0][:, -1]  # the first hit is the point itself
    return points[spacing <= max(SUPPORT_RADIUS, SUPPORT_SPACING * float(np.median(spacing)))]


def overlap(a: np.ndarray, b: np.ndarray, distance: float) -> float:
    """Share of the smaller set's points within ``distance`` of the other set's points."""
    small, large = sorted((a, b), key=len)
    return float(np.mean(cKDTree(large).query(small, distance_upper_bound=distance)[0] <= distance))


def hidden_share(a: np.ndarray, b: np.ndarray, views: list[tuple[ViewGeometry, np.ndarray | None]]) -> float:
    """Share of the gap between the closest points of a and b that some view shows behind a nearer surface; 0 if any
    view sees through it or it is too short to sample (see HIDDEN_SHARE)."""
    distance, nearest = cKDTree(b).query(a)
    i = int(np.argmin(distance))
    steps = np.arange(HIDDEN_END, distance[i] - HIDDEN_END, HIDDEN_STEP)
    if steps.size == 0:
        return 0.0
    samples = a[i] + np.outer(steps / distance[i], b[nearest[i]] - a[i])
    hidden = np.zeros(len(samples), dtype=bool)
    for view, distortion in views:
        _, z, observed = view.depth_at(samples, distortion)
        margin = DEPTH_MARGIN_M + DEPTH_MARGIN_SHARE * z
        with np.errstate(invalid="ignore"):  # NaN: out of this view or no depth there, which tells nothing
            if np.any(observed > z + margin):
                return 0.0
            hidden |= observed < z - margin
    return float(hidden.mean())


def pool_best_first(clouds: list[np.ndarray], labels: list, score: Callable[[np.ndarray, np.ndarray], float],
                    threshold: float) -> tuple[list[list[int]], list[np.ndarray], list]:
    """Greedy grouping of (N, 3) clouds: pool the same-label pair with the highest score(a, b) while it is at least
    ``threshold``, scoring the pooled cloud anew (so one cloud covering two objects cannot chain them). Returns the
    groups (input indices, sorted, in order of their first member), their pooled clouds and labels."""
    groups, clouds = [[i] for i in range(len(clouds))], list(clouds)
    scores = {(i, j): score(clouds[i], clouds[j]) for i, j in combinations(range(len(clouds)), 2) if labels[i] == labels[j]}
    while scores and max(scores.values()) >= threshold:
        i, j = max(scores, key=scores.get)  # i < j: the pooled group keeps the earlier place
        groups[i], groups[j] = groups[i] + groups[j], []
        clouds[i] = np.unique(np.vstack([clouds[i], clouds[j]]), axis=0)
        scores = {pair: value for pair, value in scores.items() if i not in pair and j not in pair}
        scores.update({(min(i, k), max(i, k)): score(clouds[i], clouds[k])
                       for k in range(len(groups)) if groups[k] and k != i and labels[k] == labels[i]})
    kept = [k for k in range(len(groups)) if groups[k]]
    return [sorted(groups[k]) for k in kept], [clouds[k] for k in kept], [labels[k] for k in kept]


def extent(values: np.ndarray, robust: bool) -> tuple[float, float]:
    """(low, high) of 1-D values: EXTENT_PERCENTILES if robust, else min and max."""
    if robust:
        low, high = np.percentile(values, EXTENT_PERCENTILES)
        return float(low), float(high)
    return float(values.min()), float(values.max())


def unit(vector, name: str) -> np.ndarray:
    """``vector`` scaled to length 1; ValueError for a zero vector."""
    vector = np.asarray(vector, dtype=float).ravel()
    norm = float(np.linalg.norm(vector))
    if vector.size != 3 or norm == 0.0:
        raise ValueError(f"{name} must be a non-zero 3-vector, got {vector.tolist()}")
    return vector / norm


def footprint_yaw(xy: np.ndarray) -> float:
    """Yaw (radians) of the minimum-area rectangle around 2D points (via their convex hull edges)."""
    try:
        hull = xy[ConvexHull(xy).vertices]
    except (QhullError, ValueError):  # fewer than 3 points, or all collinear: use the principal direction
        centred = xy - xy.mean(axis=0)
        direction = np.linalg.svd(centred, full_matrices=False)[2][0]
        return float(np.arctan2(direction[1], direction[0]))
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2)
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    along = cos * hull[:, 0] + sin * hull[:, 1]
    across = -sin * hull[:, 0] + cos * hull[:, 1]
    areas = np.ptp(along, axis=1) * np.ptp(across, axis=1)
    return float(angles[int(np.argmin(areas))])


def plane_through(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares plane (unit normal with n_z >= 0, offset) through (N >= 3, 3) points."""
    centre = points.mean(axis=0)
    normal = np.linalg.svd(points - centre, full_matrices=False)[2][2]
    if normal[2] < 0:
        normal = -normal
    return normal, float(-normal @ centre)


def yaw_of_camera(T_world_camera: np.ndarray) -> float:
    """Heading (radians, CCW about world z from +x) of a camera's viewing direction, from its horizontal x axis."""
    right = T_world_camera[:3, 0]
    return float(np.arctan2(right[0], -right[1]))


class Geometry(Shared):
    """Metres in the TF world frame (x forward, y left, z up); degrees. points: (N, 3) or (H, W, 3), NaN rows
    dropped; robust=True drops strays (far from the bulk or isolated) and uses 1-99th percentile extents."""

    def __init__(self, context: ToolContext) -> None:
        self._frames = context.frames
        self._world = context.frames.world_frame

    # --- reference helpers ---------------------------------------------------------------------------------

    def euclidean_distance(self, p1, p2) -> float:
        """Distance (m) between two points."""
        return float(np.linalg.norm(np.asarray(p1, dtype=float) - np.asarray(p2, dtype=float)))

    def angle_between_vectors(self, v1, v2) -> float:
        """Angle between two vectors, degrees in [0, 180]."""
        cosine = float(unit(v1, "v1") @ unit(v2, "v2"))
        return math.degrees(math.acos(min(1.0, max(-1.0, cosine))))

    def project_point_to_camera(self, point_3d, extrinsic_c2w, fx, fy, cx, cy) -> tuple[float, float] | None:
        """World point -> (u, v) pixels, or None if behind; extrinsic_c2w: 4x4 camera-to-world."""
        T = np.asarray(extrinsic_c2w, dtype=float).reshape(4, 4)
        x, y, z = (np.linalg.inv(T) @ np.append(as_point(point_3d, "point_3d"), 1.0))[:3]
        if z <= 0:
            return None
        return float(fx * x / z + cx), float(fy * y / z + cy)

    def pixel_to_point(self, u, v, depth, extrinsic_c2w, fx, fy, cx, cy) -> np.ndarray:
        """Pixel and depth (m, camera z) -> (3,) world point."""
        ray = np.array([(u - cx) / fx * depth, (v - cy) / fy * depth, depth, 1.0])
        return (np.asarray(extrinsic_c2w, dtype=float).reshape(4, 4) @ ray)[:3]

    def camera(self, frame_index: int) -> dict:
        """{extrinsic_c2w, fx, fy, cx, cy} of a key frame, to pass as ** to the two above."""
        frame = frame_lookup(self._frames, frame_index)
        if frame.K is None or frame.T_world_camera is None:
            raise ValueError(f"frame {frame_index} has no {'intrinsics' if frame.K is None else 'camera pose'}")
        K = frame.K
        return {"extrinsic_c2w": frame.T_world_camera.copy(), "fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2],
                "cy": K[1, 2]}

    def rotation_matrix_from_vectors(self, v_from, v_to) -> np.ndarray:
        """(3, 3) rotation turning direction v_from onto direction v_to."""
        a, b = unit(v_from, "v_from"), unit(v_to, "v_to")
        axis = np.cross(a, b)
        sin, cos = float(np.linalg.norm(axis)), float(a @ b)
        if sin < 1e-12:
            if cos > 0:
                return np.eye(3)
            perpendicular = unit(np.cross(a, AXES["x"] if abs(a[0]) < 0.9 else AXES["y"]), "axis")
            return 2.0 * np.outer(perpendicular, perpendicular) - np.eye(3)
        k = axis / sin
        skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        return np.eye(3) + sin * skew + (1.0 - cos) * skew @ skew

    def transform_points(self, points, matrix) -> np.ndarray:
        """Apply a 4x4 transform to (..., 3) points."""
        array = np.asarray(points, dtype=float)
        T = np.asarray(matrix, dtype=float).reshape(4, 4)
        return (array.reshape(-1, 3) @ T[:3, :3].T + T[:3, 3]).reshape(array.shape)

    def fit_ground_plane_ransac(self, points, confidence=None, conf_threshold: float = 0.3, n_iterations: int = 1000,
                                inlier_threshold: float = 0.05) -> Plane | tuple[None, None]:
        """RANSAC plane of (..., 3) points with confidence >= conf_threshold (None: all), n_z >= 0. Unpacks as
        ``normal, inlier_mask`` (mask shaped like ALL the points given). (None, None) if < 100 points qualify."""
        array = np.asarray(points, dtype=float)
        if array.shape[-1:] != (3,):
            raise ValueError(f"points must be 3D points with a last axis of 3, got shape {array.shape}")
        flat = array.reshape(-1, 3)
        usable = np.isfinite(flat).all(axis=1)
        if confidence is not None:
            weights = np.asarray(confidence, dtype=float).reshape(-1)
            if weights.size != len(flat):
                raise ValueError(f"confidence has {weights.size} values for {len(flat)} points")
            usable &= weights >= conf_threshold
        if np.count_nonzero(usable) < MIN_PLANE_POINTS:
            print(f"fit_ground_plane_ransac: only {np.count_nonzero(usable)} points qualify (at least "
                  f"{MIN_PLANE_POINTS} needed); returning (None, None)")
            return None, None
        plane = self._ransac(flat[usable], inlier_threshold, n_iterations, None, 0)
        inliers = np.zeros(len(flat), dtype=bool)
        inliers[usable] = np.abs(plane.signed_distance(flat[usable])) < inlier_threshold
        return dataclasses.replace(plane, inliers=inliers.reshape(array.shape[:-1]))

    def normalized_to_pixel(self, coords, width, height) -> list:
        """0-1000 x, y alternating (point, box or a list of them, as vlm.locate gives) -> pixels of a width x height
        image, unrounded. A str raises TypeError (parse it first), but a vlm.locate answer is read for you."""
        if isinstance(coords, str):
            if not hasattr(coords, "grounding"):
                raise TypeError("normalized_to_pixel takes numbers, not a str: parse them first, e.g. "
                                "[float(v) for v in re.findall(r'-?\\d+\\.?\\d*', answer)]")
            if not coords.grounding.visible:
                raise ValueError(f"the vlm.locate answer says the object is not visible: {str(coords)[:200]!r}")
            coords = list(coords.grounding.numbers)
        array = np.asarray(coords, dtype=float)
        if array.size and (np.nanmax(array) > SCALE or np.nanmin(array) < 0):
            print(f"normalized_to_pixel: values outside 0-{SCALE:g} ({array.ravel().tolist()[:8]}): are they pixels "
                  f"already?")
        return to_pixels(array, width, height).tolist()

    def _ransac(self, points: np.ndarray, distance_threshold: float, iterations: int, max_tilt_deg: float | None,
                seed: int) -> Plane:
        """RANSAC plane through (N >= 3, 3) finite points (inliers within distance_threshold m), n_z >= 0;
        max_tilt_deg bounds its tilt; ValueError when no plane qualifies."""
        rng = np.random.default_rng(seed)
        sample = points[rng.choice(len(points), min(len(points), RANSAC_SCORE_POINTS), replace=False)]
        min_nz = -1.0 if max_tilt_deg is None else math.cos(math.radians(max_tilt_deg))
        best, best_count = None, 0
        for i, j, k in rng.integers(0, len(sample), size=(iterations, 3)):
            normal = np.cross(sample[j] - sample[i], sample[k] - sample[i])
            norm = float(np.linalg.norm(normal))
            if norm < 1e-12 or abs(normal[2]) / norm < min_nz:
                continue
            normal /= norm
            count = int(np.count_nonzero(np.abs((sample - sample[i]) @ normal) < distance_threshold))
            if count > best_count:
                best, best_count = (normal, float(-normal @ sample[i])), count
        if best is None:
            tilt = "" if max_tilt_deg is None else f" within {max_tilt_deg} deg of horizontal"
            raise ValueError(f"no plane{tilt} found in {len(points)} points")
        inliers = np.abs(points @ best[0] + best[1]) < distance_threshold
        normal, offset = plane_through(points[inliers])
        inliers = np.abs(points @ normal + offset) < distance_threshold
        return Plane(normal=normal, offset=offset, frame=self._world, source="ransac",
                     inlier_ratio=float(inliers.mean()))

    # --- spatial measurements ------------------------------------------------------------------------------

    def closest_point_distance(self, points_a, points_b, *, robust: bool = True) -> Distance:
        """Nearest-surface gap (m), min over point pairs; robust: only points near their set's bulk with 3 close
        neighbours."""
        a, b = as_points(points_a, "points_a"), as_points(points_b, "points_b")
        if robust:
            a, b = supported(drop_far(a)), supported(drop_far(b))
        distance, nearest = cKDTree(b).query(a)
        i = int(np.argmin(distance))
        method = f"robust: minimum over points with {SUPPORT_NEIGHBOURS} close neighbours" if robust else (
            "minimum over all point pairs")
        return Distance(float(distance[i]), a[i], b[nearest[i]], self._world, method)

    def centroid_distance(self, points_a, points_b, *, robust: bool = True) -> Distance:
        """Distance (m) between the per-axis median points."""
        a = np.median(self._points(points_a, robust, "points_a"), axis=0)
        b = np.median(self._points(points_b, robust, "points_b"), axis=0)
        return Distance(float(np.linalg.norm(b - a)), a, b, self._world, "per-axis median centres")

    def gap_along_axis(self, points_a, points_b, axis="x", *, robust: bool = True) -> Gap:
        """Gap (m) between extents along "x" | "y" | "z" or a vector; negative = overlap."""
        if isinstance(axis, str) and axis not in AXES:
            raise ValueError(f"axis must be 'x', 'y', 'z' or a 3-vector, got {axis!r}")
        direction = AXES[axis] if isinstance(axis, str) else unit(axis, "axis")
        label = axis if isinstance(axis, str) else f"direction {np.round(direction, 3).tolist()}"
        a_low, a_high = extent(self._points(points_a, robust, "points_a") @ direction, robust)
        b_low, b_high = extent(self._points(points_b, robust, "points_b") @ direction, robust)
        first = "a" if a_low + a_high <= b_low + b_high else "b"
        return Gap(max(b_low - a_high, a_low - b_high), label, first, self._world)

    def axis_aligned_box(self, points, *, robust: bool = True) -> Box3D:
        """World-axis-aligned box around the points."""
        points = self._points(points, robust)
        low, high = np.array([extent(points[:, i], robust) for i in range(3)]).T
        return Box3D(center=(low + high) / 2, size=high - low, rotation=np.eye(3), frame=self._world)

    def oriented_box(self, points, *, robust: bool = True) -> Box3D:
        """Z-up box on the minimum-area footprint rectangle; size = (length >= width, height) m."""
        points = self._points(points, robust)
        yaw = footprint_yaw(points[:, :2])
        cos, sin = math.cos(yaw), math.sin(yaw)
        rotation = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
        local = points @ rotation
        low, high = np.array([extent(local[:, i], robust) for i in range(3)]).T
        centre, size = rotation @ ((low + high) / 2), high - low
        if size[1] > size[0]:  # make the first axis the long one: rotate the box frame by +90 deg about z
            rotation = rotation[:, [1, 0, 2]] * [1.0, -1.0, 1.0]
            size = size[[1, 0, 2]]
        if rotation[0, 0] < 0 or (rotation[0, 0] == 0 and rotation[1, 0] < 0):  # yaw into (-90, 90]
            rotation = rotation * [-1.0, -1.0, 1.0]
        return Box3D(center=centre, size=size, rotation=rotation, frame=self._world)

    def dimensions(self, points, *, robust: bool = True) -> Dimensions:
        """Length, width, height (m) of oriented_box."""
        size = self.oriented_box(points, robust=robust).size
        return Dimensions(float(size[0]), float(size[1]), float(size[2]), self._world)

    def floor_plane(self, points=None) -> Plane:
        """Floor: z = 0, or a near-level RANSAC plane fitting half of the lowest 30% of given scene points."""
        has_tf = all(f.T_world_camera is not None for f in self._frames.frames)
        tf_floor = Plane(normal=AXES["z"].copy(), offset=0.0, frame=self._world, source="tf")
        if points is None:
            if not has_tf:
                raise ValueError("the frames have no TF camera poses, so world z is not known to be up: "
                                 "pass scene points, floor_plane(points)")
            return tf_floor
        points = as_points(points)
        if not has_tf:
            if len(points) < 3:
                raise ValueError(f"a plane needs at least 3 points, got {len(points)}")
            return self._ransac(points, FLOOR_INLIER_M, FLOOR_ITERATIONS, None, 0)
        lowest = points[points[:, 2] <= np.quantile(points[:, 2], FLOOR_SLICE)]
        if len(lowest) < 3:
            return tf_floor
        try:
            plane = self._ransac(lowest, FLOOR_INLIER_M, FLOOR_ITERATIONS, FLOOR_MAX_TILT_DEG, 0)
        except ValueError:
            return tf_floor
        return plane if plane.inlier_ratio >= FLOOR_MIN_INLIERS else tf_floor

    def height_above_floor(self, points, floor: Plane | None = None, *, robust: bool = True) -> Elevation:
        """Bottom, median and top height (m) above floor (default floor_plane())."""
        floor = self.floor_plane() if floor is None else floor
        heights = floor.signed_distance(self._points(points, robust))
        bottom, top = extent(heights, robust)
        return Elevation(bottom, float(np.median(heights)), top, floor, self._world)

    def relative_direction(self, point_a, point_b, frame: str | None = None, frame_index: int | None = None,
                           facing=None) -> Direction:
        """Where B is from A in frame's axes at key frame frame_index (default latest): a TF frame (default the robot's
        body, Metadata.body_frame), "camera[:index]" or "world"; facing=C: viewer at A looking at C. azimuth > 0 =
        left; 10 deg dead-band."""
        a, b = as_point(point_a, "point_a"), as_point(point_b, "point_b")
        frame = frame or self._frames.body_frame or "camera"
        forward, left, up, label = self._axes(a, frame, frame_index, facing)
        offset = b - a
        x, y, z = float(offset @ forward), float(offset @ left), float(offset @ up)
        horizontal = math.hypot(x, y)
        azimuth, elevation = math.degrees(math.atan2(y, x)), math.degrees(math.atan2(z, horizontal))
        band = DIRECTION_DEAD_BAND_DEG
        flat = horizontal < 1e-9
        left_right = "center" if flat or abs(azimuth) < band or abs(azimuth) > 180 - band else (
            "left" if azimuth > 0 else "right")
        front_behind = "beside" if flat or abs(abs(azimuth) - 90) <= band else (
            "front" if abs(azimuth) < 90 else "behind")
        above_below = "level" if abs(elevation) <= band else ("above" if elevation > 0 else "below")
        return Direction(left_right, front_behind, above_below, azimuth, elevation, float(np.linalg.norm(offset)),
                         np.array([x, y, z]), label)

    def camera_motion(self, frame_a: int, frame_b: int) -> CameraMotion:
        """Camera move between key frames: translation (m) and yaw (deg, + = left turn)."""
        poses = []
        for index in (frame_a, frame_b):
            pose = frame_lookup(self._frames, index).T_world_camera
            if pose is None:
                raise ValueError(f"frame {index} has no camera pose")
            poses.append(pose)
        translation = poses[1][:3, 3] - poses[0][:3, 3]
        yaw = math.degrees(yaw_of_camera(poses[1]) - yaw_of_camera(poses[0]))
        yaw = (yaw + 180.0) % 360.0 - 180.0
        turn = "none" if abs(yaw) < TURN_DEAD_BAND_DEG else ("left" if yaw > 0 else "right")
        return CameraMotion(translation, float(np.linalg.norm(translation)), yaw, turn, self._world)

    def count_instances(self, point_sets, merge_distance: float = 0.05, *, labels=None,
                        reconstruction: Reconstruction | None = None) -> InstanceCount:
        """Count objects in point-set detections, pooling overlaps (merge_distance m) and, given a
        reconstruction, gaps no view sees into; only equal labels pool (one per set)."""
        clouds = [voxel_centres(as_points(s, f"point_sets[{i}]"), COUNT_VOXEL) for i, s in enumerate(point_sets)]
        labels = [None] * len(clouds) if labels is None else list(labels)
        if len(labels) != len(clouds):
            raise ValueError(f"labels has {len(labels)} entries for {len(clouds)} point sets")
        groups, clouds, labels = pool_best_first(clouds, labels, lambda a, b: overlap(a, b, merge_distance),
                                                 COUNT_OVERLAP)
        if reconstruction is not None:
            if reconstruction.world_frame != self._world:
                raise ValueError(f"the reconstruction is in {reconstruction.world_frame!r}, the points in {self._world!r}")
            views = [(view, frame_lookup(self._frames, index).distortion) for index, view in reconstruction.views.items()]
            hidden, clouds, labels = pool_best_first(clouds, labels, lambda a, b: hidden_share(a, b, views), HIDDEN_SHARE)
            groups = [sorted(i for k in group for i in groups[k]) for group in hidden]
        centres = np.array([np.median(cloud, axis=0) for cloud in clouds]).reshape(-1, 3)
        return InstanceCount(len(groups), groups, centres, self._world)

    def render_bev(self, objects=None, frame_indices=None, title: str = "") -> VisualFeedback:
        """Top-down VisualFeedback in WORLD x/y of {label: points | Box3D} and key-frame cameras."""
        indices = [f.index for f in self._frames.frames] if frame_indices is None else list(frame_indices)
        frames = [frame_lookup(self._frames, i) for i in indices]
        poses = {f.index: f.T_world_camera for f in frames if f.T_world_camera is not None}
        return render_bev(objects, poses, title=title)

    # --- internals -----------------------------------------------------------------------------------------

    def _points(self, points, robust: bool, name: str = "points") -> np.ndarray:
        """Finite (N, 3) points, strays removed when ``robust``."""
        points = as_points(points, name)
        return drop_strays(points) if robust else points

    def _axes(self, origin: np.ndarray, frame: str, frame_index: int | None, facing) -> tuple:
        """(forward, left, up, label): world unit vectors of the named frame's body axes."""
        if facing is not None:
            forward = as_point(facing, "facing") - origin
            forward[2] = 0.0
            forward = unit(forward, "the horizontal direction from point_a to facing")
            return forward, np.cross(AXES["z"], forward), AXES["z"].copy(), "viewer at point_a facing 'facing' (z up)"
        if frame == "world":
            return AXES["x"].copy(), AXES["y"].copy(), AXES["z"].copy(), self._world
        name, _, index_text = frame.partition(":")
        if name == "camera" and index_text:
            if not index_text.isdigit():
                raise ValueError(f"camera frames are named 'camera' or 'camera:<frame index>', got {frame!r}")
            frame_index = int(index_text)
        if frame_index is None:
            key_frame = max(self._frames.frames, key=lambda f: (f.stamp, f.index))  # the latest
        else:
            key_frame = frame_lookup(self._frames, frame_index)
        if name == "camera" and key_frame.T_world_camera is not None:
            R = key_frame.T_world_camera[:3, :3]
            return R[:, 2], -R[:, 0], -R[:, 1], f"camera:{key_frame.index}"
        if frame in key_frame.poses:
            R = key_frame.poses[frame][:3, :3]
            return R[:, 0], R[:, 1], R[:, 2], f"{frame}@{key_frame.index}"
        raise ValueError(f"no frame {frame!r} at key frame {key_frame.index}; available: {available_frames(key_frame)}")


def available_frames(frame: Frame) -> list[str]:
    """Frame names relative_direction accepts at one key frame."""
    cameras = ["camera", f"camera:{frame.index}"] if frame.T_world_camera is not None else []
    return ["world", *cameras, *sorted(frame.poses)]
