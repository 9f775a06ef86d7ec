"""Writes cameras.json: intrinsics, depth scale and a gravity-aligned camera pose for each frame here.

The TUM RGB-D frames carry no pose we could keep (the benchmark's motion-capture frame is not
gravity-aligned, and the copies we took have no timestamps), so the pose is measured from the depth
itself: the largest plane that RANSAC (Open3D, 2 cm) finds within 35 degrees of the image's up
direction is the floor or table top; its normal becomes world z (up), the camera's optical axis
projected onto it world x, and the camera sits at its height above that plane. Yaw and the origin
in the plane are arbitrary, as they are for any single frame. Run from this folder:
``python derive_cameras.py`` (Open3D's RANSAC is seeded, so the file is reproducible).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d

HERE = Path(__file__).resolve().parent
#: TUM's parameters for its registered 16-bit depth PNGs (the ROS default Kinect calibration, no distortion).
TUM_K = [[525.0, 0.0, 319.5], [0.0, 525.0, 239.5], [0.0, 0.0, 1.0]]
TUM_DEPTH_SCALE = 5000.0  # PNG value per metre
FRAMES = ("office", "desk")
MAX_TILT_DEG = 35.0


def support_plane(points: np.ndarray) -> tuple[np.ndarray, float]:
    """(unit normal towards the camera's side, camera height above it) of the largest near-horizontal plane."""
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    up_in_image = np.array([0.0, -1.0, 0.0])
    for _ in range(6):
        (a, b, c, d), inliers = cloud.segment_plane(distance_threshold=0.02, ransac_n=3, num_iterations=2000)
        normal = np.array([a, b, c])
        if normal @ up_in_image < 0:
            normal, d = -normal, -d
        if np.degrees(np.arccos(normal @ up_in_image)) <= MAX_TILT_DEG:
            return normal, float(d)
        cloud = cloud.select_by_index(inliers, invert=True)
    raise RuntimeError("no near-horizontal plane found")


def camera(frame: str) -> dict:
    depth = cv2.imread(str(HERE / frame / "depth.png"), cv2.IMREAD_UNCHANGED).astype(np.float64) / TUM_DEPTH_SCALE
    K = np.array(TUM_K)
    rows, cols = np.nonzero(depth > 0)
    z = depth[rows, cols]
    points = np.stack([(cols - K[0, 2]) * z / K[0, 0], (rows - K[1, 2]) * z / K[1, 1], z], axis=1)
    up, height = support_plane(points)
    forward = np.array([0.0, 0.0, 1.0]) - up[2] * up
    forward /= np.linalg.norm(forward)
    rotation = np.stack([forward, np.cross(up, forward), up])  # rows: world x, y, z in camera coordinates
    T = np.eye(4)
    T[:3, :3] = rotation
    T[2, 3] = height
    return {"K": TUM_K, "depth_scale": TUM_DEPTH_SCALE, "T_world_camera": np.round(T, 6).tolist()}


if __name__ == "__main__":
    o3d.utility.random.seed(0)
    cameras = {frame: camera(frame) for frame in FRAMES}
    lines = [f'  "{frame}": {json.dumps(entry)}' for frame, entry in cameras.items()]
    (HERE / "cameras.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")
