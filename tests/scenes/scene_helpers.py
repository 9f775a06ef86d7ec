"""Hand-built scenes with known geometry for the scene tests, and independent projection / surface checks."""

from __future__ import annotations

import numpy as np
import open3d as o3d

from spatialclaw_ros.scenes import furniture
from spatialclaw_ros.scenes.build import add_mesh, object_meshes
from spatialclaw_ros.scenes.model import BasePose, CameraMount, Intrinsics, Scene, SceneObject, Slab

#: principal point on a pixel centre, so "straight ahead" is exactly pixel (160, 120)
INTRINSICS = Intrinsics(fx=250.0, fy=250.0, cx=160.0, cy=120.0, width=320, height=240)
#: optical centre 1 m above base_link, looking straight along the robot's x axis
LEVEL_MOUNT = CameraMount(name="front", xyz=(0.0, 0.0, 1.0), pitch=0.0)
FLOOR = Slab("floor", (4.0, 0.0, -0.05), (12.0, 12.0, 0.1), (150, 150, 140), tile=0.5)


def box(instance_id: int, centre, size, yaw: float = 0.0, label: str | None = None) -> SceneObject:
    """A plain box object (label ``box<id>`` unless given)."""
    return SceneObject(label or f"box{instance_id}", instance_id, tuple(centre), yaw, (200, 80, 40), furniture.block(*size))


def scene_of(objects, slabs=(FLOOR,), path=(BasePose(0.0, 0.0, 0.0),), mount=LEVEL_MOUNT, intrinsics=INTRINSICS) -> Scene:
    """A scene with the given objects seen by the level camera."""
    return Scene(name="test", objects=tuple(objects), slabs=tuple(slabs), intrinsics=intrinsics, path=tuple(path), mount=mount)


def project(T_world_camera: np.ndarray, K: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (N, 2) and z-depths (N,) of world points, by the pinhole model."""
    T_camera_world = np.linalg.inv(T_world_camera)
    in_camera = points @ T_camera_world[:3, :3].T + T_camera_world[:3, 3]
    z = in_camera[:, 2]
    return np.stack([K[0, 0] * in_camera[:, 0] / z + K[0, 2], K[1, 1] * in_camera[:, 1] / z + K[1, 2]], axis=1), z


def back_project(depth: np.ndarray, K: np.ndarray, T_world_camera: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """World points (N, 3) of the masked pixels of a z-depth image."""
    v, u = np.nonzero(mask)
    z = depth[v, u]
    in_camera = np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z], axis=1)
    return in_camera @ T_world_camera[:3, :3].T + T_world_camera[:3, 3]


def surface_distance(obj: SceneObject, points: np.ndarray) -> np.ndarray:
    """Distance of each world point to the surface of ``obj``."""
    raycaster = o3d.t.geometry.RaycastingScene()
    for mesh in object_meshes(obj):
        add_mesh(raycaster, mesh)
    return raycaster.compute_distance(o3d.core.Tensor(points.astype(np.float32))).numpy()
