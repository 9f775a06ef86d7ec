"""Synthetic scenes with hand-known geometry for the tool tests: poses, box surfaces and frame sets."""

from __future__ import annotations

import math

import numpy as np

from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.tools import ToolContext


def rot_z(yaw_deg: float) -> np.ndarray:
    """3x3 rotation by yaw_deg counter-clockwise about +z."""
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def pose(rotation: np.ndarray, position) -> np.ndarray:
    """4x4 pose from a rotation and a translation."""
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = rotation, position
    return T


def base_pose(position, yaw_deg: float) -> np.ndarray:
    """base_link -> world for a robot at ``position`` heading yaw_deg (REP 103 body axes)."""
    return pose(rot_z(yaw_deg), position)


def level_camera(position, yaw_deg: float) -> np.ndarray:
    """Optical camera -> world for a level camera looking along heading yaw_deg (x right, y down, z forward)."""
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    rotation = np.column_stack([[s, -c, 0.0], [0.0, 0.0, -1.0], [c, s, 0.0]])
    return pose(rotation, position)


def box_surface(center, size, yaw_deg: float = 0.0, step: float = 0.01, faces: str = "xXyYzZ") -> np.ndarray:
    """Grid samples (spacing ``step`` m) of the chosen faces of a box (x/X = -x/+x face, ... in the box's axes)."""
    size = np.asarray(size, dtype=float)
    half = size / 2
    grids = [np.linspace(-h, h, max(2, int(round(2 * h / step)) + 1)) for h in half]
    points = []
    for axis, letter in enumerate("xyz"):
        for sign, name in ((-1.0, letter), (1.0, letter.upper())):
            if name not in faces:
                continue
            u, v = [grids[i] for i in range(3) if i != axis]
            uu, vv = np.meshgrid(u, v, indexing="ij")
            face = np.zeros((uu.size, 3))
            face[:, [i for i in range(3) if i != axis]] = np.column_stack([uu.ravel(), vv.ravel()])
            face[:, axis] = sign * half[axis]
            points.append(face)
    return np.vstack(points) @ rot_z(yaw_deg).T + np.asarray(center, dtype=float)


def make_context(frames: list[Frame] | None = None, **frame_set_kwargs) -> ToolContext:
    """ToolContext without a host over the given frames (default: one 64x48 frame with a level camera at the origin)."""
    frames = frames or [Frame(index=0, rgb=np.zeros((48, 64, 3), np.uint8), T_world_camera=level_camera([0, 0, 1], 0))]
    return ToolContext(frames=FrameSet(frames=frames, **frame_set_kwargs), host=None)


def blank_frame(index: int, **kwargs) -> Frame:
    """A 48x64 black frame with the given fields."""
    return Frame(index=index, rgb=np.zeros((48, 64, 3), np.uint8), **kwargs)
