"""``tools.Geometry``: 3D measurements in metres, each tagged with the frame it is expressed in.

Points are in the TF world frame (REP 103: x forward, y left, z up) unless a method says otherwise.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import ConvexHull, QhullError, cKDTree

from ..frames import Frame
from .bev import render_bev
from .measures import (
    Box3D, CameraMotion, Dimensions, Direction, Distance, Elevation, Gap, InstanceCount, Plane, as_points,
)
from .timing import frame_lookup

if TYPE_CHECKING:
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
#: Robust closest distance: per point, the distance to its CLOSEST_NEIGHBOUR-th nearest point of the other set;
#: the CLOSEST_RANK-th smallest of those (CLOSEST_SHARE of the points for small sets).
CLOSEST_NEIGHBOUR = 5
CLOSEST_RANK = 10
CLOSEST_SHARE = 0.01
#: Angle (degrees) around a boundary inside which relative_direction says "center" / "beside" / "level".
DIRECTION_DEAD_BAND_DEG = 10.0
#: Yaw change (degrees) under which camera_motion says the turn is "none".
TURN_DEAD_BAND_DEG = 3.0
#: floor_plane with points: RANSAC on the lowest FLOOR_SLICE of points, normal within FLOOR_MAX_TILT_DEG of +z,
#: accepted when at least FLOOR_MIN_INLIERS of that slice are inliers.
FLOOR_SLICE = 0.3
FLOOR_MAX_TILT_DEG = 10.0
FLOOR_MIN_INLIERS = 0.5
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


def drop_strays(points: np.ndarray) -> np.ndarray:
    """Remove stray points: far from the set's bulk, then isolated from their neighbours (see STRAY_MADS)."""
    voxels = (np.unique(np.floor(points / BULK_VOXEL), axis=0) + 0.5) * BULK_VOXEL
    centre = np.median(voxels, axis=0)
    limit = spread_limit(np.linalg.norm(voxels - centre, axis=1), BULK_MARGIN) + BULK_VOXEL * math.sqrt(3) / 2
    points = points[np.linalg.norm(points - centre, axis=1) <= limit]
    if len(points) <= ISOLATION_NEIGHBOUR:
        return points
    spacing = cKDTree(points).query(points, k=ISOLATION_NEIGHBOUR + 1)[0][:, -1]  # the first hit is the point itself
    return points[spacing <= spread_limit(spacing, ISOLATION_MARGIN)]


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


class Geometry:
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

    def project_point_to_camera(self, point, c2w, fx, fy, cx, cy) -> tuple[float, float, float] | None:
        """World point -> (u, v) pixels and depth (m), or None if behind; c2w = 4x4 camera-to-world."""
        x, y, z = (np.linalg.inv(np.asarray(c2w, dtype=float).reshape(4, 4)) @ np.append(as_point(point), 1.0))[:3]
        if z <= 0:
            return None
        return float(fx * x / z + cx), float(fy * y / z + cy), float(z)

    def pixel_to_point(self, u, v, depth, c2w, fx, fy, cx, cy) -> np.ndarray:
        """Pixel and depth (m) -> (3,) world point."""
        ray = np.array([(u - cx) / fx * depth, (v - cy) / fy * depth, depth, 1.0])
        return (np.asarray(c2w, dtype=float).reshape(4, 4) @ ray)[:3]

    def camera(self, frame_index: int) -> dict:
        """{c2w, fx, fy, cx, cy} of a key frame, to pass as ** to the two above."""
        frame = frame_lookup(self._frames, frame_index)
        if frame.K is None or frame.T_world_camera is None:
            raise ValueError(f"frame {frame_index} has no {'intrinsics' if frame.K is None else 'camera pose'}")
        K = frame.K
        return {"c2w": frame.T_world_camera.copy(), "fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2]}

    def rotation_matrix_from_vectors(self, a, b) -> np.ndarray:
        """(3, 3) rotation turning direction a onto direction b."""
        a, b = unit(a, "a"), unit(b, "b")
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

    def transform_points(self, points, T) -> np.ndarray:
        """Apply a 4x4 transform to (3,) or (N, 3) points."""
        array = np.asarray(points, dtype=float)
        T = np.asarray(T, dtype=float).reshape(4, 4)
        return (array.reshape(-1, 3) @ T[:3, :3].T + T[:3, 3]).reshape(array.shape)

    def fit_ground_plane_ransac(self, points, distance_threshold: float = 0.02, iterations: int = 500,
                                max_tilt_deg: float | None = None, seed: int = 0) -> Plane:
        """RANSAC plane (inliers within distance_threshold m), n_z >= 0; max_tilt_deg bounds its tilt."""
        points = as_points(points)
        if len(points) < 3:
            raise ValueError(f"a plane needs at least 3 points, got {len(points)}")
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

    def normalized_to_pixel(self, coords_0_1000, w, h) -> list:
        """0-1000 (x, y) pairs (as vlm.locate gives) -> pixels of a w x h image."""
        array = np.asarray(coords_0_1000, dtype=float)
        if array.size % 2:
            raise ValueError(f"expected (x, y) pairs, got {array.size} numbers")
        return (array.reshape(-1, 2) * [w / 1000.0, h / 1000.0]).reshape(array.shape).tolist()

    # --- spatial measurements ------------------------------------------------------------------------------

    def closest_point_distance(self, points_a, points_b, *, robust: bool = True) -> Distance:
        """Nearest-surface gap (m) with witness points: the minimum, or if robust the 10th-smallest distance
        from a point to its 5th-nearest point in the other set."""
        a, b = self._points(points_a, robust, "points_a"), self._points(points_b, robust, "points_b")
        if not robust:
            distance, nearest = cKDTree(b).query(a)
            i = int(np.argmin(distance))
            return Distance(float(distance[i]), a[i], b[nearest[i]], self._world, "minimum over all point pairs")
        best = None
        for source, target, swap in ((a, b, False), (b, a, True)):
            k = min(CLOSEST_NEIGHBOUR, len(target))
            distance, neighbour = cKDTree(target).query(source, k=k)
            distance, neighbour = distance.reshape(len(source), k)[:, -1], neighbour.reshape(len(source), k)[:, -1]
            rank = min(CLOSEST_RANK, math.ceil(CLOSEST_SHARE * len(source)))
            i = int(np.argpartition(distance, rank - 1)[rank - 1])
            if best is None or distance[i] < best[0]:
                pair = (target[neighbour[i]], source[i]) if swap else (source[i], target[neighbour[i]])
                best = (float(distance[i]), *pair)
        method = f"robust: {CLOSEST_RANK}th-smallest distance to a {CLOSEST_NEIGHBOUR}th-nearest point, strays removed"
        return Distance(best[0], best[1], best[2], self._world, method)

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
            return self.fit_ground_plane_ransac(points)
        lowest = points[points[:, 2] <= np.quantile(points[:, 2], FLOOR_SLICE)]
        try:
            plane = self.fit_ground_plane_ransac(lowest, max_tilt_deg=FLOOR_MAX_TILT_DEG)
        except ValueError:
            return tf_floor
        return plane if plane.inlier_ratio >= FLOOR_MIN_INLIERS else tf_floor

    def height_above_floor(self, points, floor: Plane | None = None, *, robust: bool = True) -> Elevation:
        """Bottom, median and top height (m) above floor (default floor_plane())."""
        floor = self.floor_plane() if floor is None else floor
        heights = floor.signed_distance(self._points(points, robust))
        bottom, top = extent(heights, robust)
        return Elevation(bottom, float(np.median(heights)), top, floor, self._world)

    def relative_direction(self, point_a, point_b, frame: str = "base_link", frame_index: int | None = None,
                           facing=None) -> Direction:
        """Where B is from A in frame's axes at key frame frame_index (default latest): a TF frame, "camera[:index]"
        or "world"; facing=C: viewer at A looking at C. azimuth > 0 = left; 10 deg dead-band."""
        a, b = as_point(point_a, "point_a"), as_point(point_b, "point_b")
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

    def count_instances(self, point_sets, merge_distance: float = 0.3) -> InstanceCount:
        """Count objects among detections (point sets/points), merging median centres within merge_distance m."""
        if len(point_sets) == 0:
            return InstanceCount(0, [], np.zeros((0, 3)), self._world)
        centres = np.array([np.median(self._points(s, True, f"point_sets[{i}]"), axis=0)
                            for i, s in enumerate(point_sets)])
        pairs = cKDTree(centres).query_pairs(merge_distance, output_type="ndarray")
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(centres), len(centres)))
        count, labels = connected_components(graph, directed=False)
        order = list(dict.fromkeys(labels.tolist()))  # groups in order of their first detection
        groups = [np.flatnonzero(labels == label).tolist() for label in order]
        merged = np.array([centres[g].mean(axis=0) for g in groups])
        return InstanceCount(int(count), groups, merged, self._world)

    def render_bev(self, objects=None, frame_indices=None, title: str = "") -> Image.Image:
        """Top-down PIL image of {label: points | Box3D} and key-frame cameras, with scale bar."""
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
