"""Frames with analytic geometry for the perception tests: a camera facing a wall with a square panel before it.

World frame z up (REP 103). The camera sits at ``CAMERA_XYZ`` looking along +x (optical z = world x);
the wall is the plane x = WALL_X; the panel is the square x = PANEL_X, |y| <= PANEL_HALF, |z - 1| <= PANEL_HALF.
Depth is computed by intersecting each pixel's ray with those planes, so every point is known exactly.
"""

from __future__ import annotations

import numpy as np

from spatialclaw_ros.frames import Frame
from spatialclaw_ros.scenes.model import R_LINK_OPTICAL, rotation_z, transform

WIDTH, HEIGHT = 160, 120
K = np.array([[150.0, 0.0, 79.5], [0.0, 150.0, 59.5], [0.0, 0.0, 1.0]])
CAMERA_XYZ = (0.0, 0.0, 1.0)
WALL_X, PANEL_X, PANEL_HALF = 4.0, 2.0, 0.3
WALL_RGB, PANEL_RGB, SECOND_RGB = (200, 200, 190), (200, 40, 40), (40, 60, 200)


def camera_pose(yaw: float = 0.0, xyz=CAMERA_XYZ) -> np.ndarray:
    """T_world_camera of an optical frame at ``xyz`` whose forward axis is turned ``yaw`` rad from world +x."""
    return transform(rotation_z(yaw) @ R_LINK_OPTICAL, xyz)


def ray_directions(T_world_camera: np.ndarray, K: np.ndarray = K, shape=(HEIGHT, WIDTH)) -> np.ndarray:
    """(H, W, 3) world directions of the pixel rays, scaled so that the ray parameter is the z-depth."""
    v, u = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    camera = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    return camera @ T_world_camera[:3, :3].T


def panel_frame(index: int = 0, yaw: float = 0.0, xyz=CAMERA_XYZ, *, split_panel: bool = False, wall_rgb=WALL_RGB,
                seed: int = 0) -> tuple[Frame, np.ndarray]:
    """A frame of the wall and panel, and the panel's true (H, W) mask (id 1; id 2 = its right half if split).

    With ``split_panel`` the panel's right half (world y < 0) is painted SECOND_RGB: two touching
    objects on one depth surface, separable only by colour. ``wall_rgb=PANEL_RGB`` makes them
    separable only by depth.
    """
    T = camera_pose(yaw, xyz)
    directions = ray_directions(T)
    origin = T[:3, 3]
    t_wall = (WALL_X - origin[0]) / directions[..., 0]
    t_panel = (PANEL_X - origin[0]) / directions[..., 0]
    hit = origin + directions * t_panel[..., None]
    on_panel = (np.abs(hit[..., 1]) <= PANEL_HALF) & (np.abs(hit[..., 2] - 1.0) <= PANEL_HALF) & (t_panel > 0)
    depth = np.where(on_panel, t_panel, t_wall).astype(np.float32)
    ids = on_panel.astype(np.int32)
    if split_panel:
        ids[on_panel & (hit[..., 1] < 0)] = 2
    rng = np.random.default_rng(seed)
    colours = np.array([wall_rgb, PANEL_RGB, SECOND_RGB], dtype=float)[ids]
    rgb = np.clip(colours + rng.normal(0, 6, colours.shape), 0, 255).astype(np.uint8)
    frame = Frame(index=index, rgb=rgb, K=K, depth=depth, T_world_camera=T, camera="front",
                  poses={"base_link": transform(rotation_z(yaw), (xyz[0], xyz[1], 0.0))})
    return frame, ids
