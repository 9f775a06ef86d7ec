"""Pinhole camera geometry on depth images: back-projection, projection and depth discontinuities.

Conventions: OpenCV optical frame (x right, y down, z forward), pixel (u, v) = (column, row) with
integer coordinates at pixel centres, depth = z in metres (NaN = invalid), ``T_world_camera`` 4x4.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Two neighbouring depth pixels whose depths differ by more than this fraction of the nearer one
#: are on different surfaces. 5 % stays clear of 1 %-of-range sensor noise (3.5 sigma for a pixel
#: pair) and of floors seen at grazing angles (about 1-2 % per pixel at 5 m for fx = 500 px).
DEPTH_EDGE_RATIO = 0.05


def _has_distortion(distortion: np.ndarray | None) -> bool:
    return distortion is not None and bool(np.any(np.asarray(distortion, dtype=float) != 0.0))


def pixel_rays(K: np.ndarray, shape: tuple[int, int], distortion: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 2) normalised image coordinates (x/z, y/z) of every pixel centre, undistorted if needed."""
    height, width = shape
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    if _has_distortion(distortion):
        pixels = np.stack([u.ravel(), v.ravel()], axis=1).reshape(-1, 1, 2)
        normalised = cv2.undistortPoints(pixels, K, np.asarray(distortion, dtype=np.float64))
        return normalised.reshape(height, width, 2)
    return np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]], axis=2)


def backproject(depth: np.ndarray, K: np.ndarray, T_world_camera: np.ndarray,
                distortion: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) float32 world points of a z-depth image; NaN where the depth is invalid."""
    rays = pixel_rays(K, depth.shape, distortion)
    z = depth.astype(np.float64)
    camera_points = np.stack([rays[..., 0] * z, rays[..., 1] * z, z], axis=2)
    world = camera_points @ T_world_camera[:3, :3].T + T_world_camera[:3, 3]
    return world.astype(np.float32)


def project(points_world: np.ndarray, K: np.ndarray, T_world_camera: np.ndarray,
            distortion: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (N, 2) and camera z-depths (N,) of (N, 3) world points (z <= 0: behind the camera)."""
    points = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    T_camera_world = np.linalg.inv(T_world_camera)
    camera_points = points @ T_camera_world[:3, :3].T + T_camera_world[:3, 3]
    z = camera_points[:, 2]
    if _has_distortion(distortion):
        pixels, _ = cv2.projectPoints(camera_points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K,
                                      np.asarray(distortion, dtype=np.float64))
        return pixels.reshape(-1, 2), z
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K[0, 0] * camera_points[:, 0] / z + K[0, 2]
        v = K[1, 1] * camera_points[:, 1] / z + K[1, 2]
    return np.stack([u, v], axis=1), z


def depth_edges(depth: np.ndarray, ratio: float = DEPTH_EDGE_RATIO) -> np.ndarray:
    """(H, W) bool: pixels lying behind a 4-neighbour by more than ``ratio`` of the neighbour's depth.

    Only the far side of a jump is marked: that is where mixed ("flying") pixels land, it is enough to
    cut surfaces apart, and thin near structures (chair legs) keep every pixel.
    """
    edges = np.zeros(depth.shape, dtype=bool)
    with np.errstate(invalid="ignore"):  # NaN neighbours never count as a jump
        for axis in (0, 1):
            a = depth.take(np.arange(depth.shape[axis] - 1), axis=axis)
            b = depth.take(np.arange(1, depth.shape[axis]), axis=axis)
            a_behind, b_behind = a - b > ratio * b, b - a > ratio * a
            if axis == 0:
                edges[:-1] |= a_behind
                edges[1:] |= b_behind
            else:
                edges[:, :-1] |= a_behind
                edges[:, 1:] |= b_behind
    return edges


def clip_box(box, width: int, height: int) -> tuple[int, int, int, int]:
    """Pixel box [x1, y1, x2, y2] (x2, y2 exclusive) rounded outwards and clipped to a width x height image;
    ValueError if it is empty or lies outside the image."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"box must be [x1, y1, x2, y2] pixels with x2 > x1 and y2 > y1, got {list(box)}")
    clipped = (max(0, int(np.floor(x1))), max(0, int(np.floor(y1))), min(width, int(np.ceil(x2))), min(height, int(np.ceil(y2))))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        raise ValueError(f"box {list(box)} lies outside the {width}x{height} image")
    return clipped
