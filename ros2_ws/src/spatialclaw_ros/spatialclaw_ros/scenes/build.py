"""Open3D triangle meshes of a scene's parts and slabs, in the world frame, and surface sampling on them."""

from __future__ import annotations

import numpy as np
import open3d as o3d

from .model import Part, SceneObject, Slab, transform

CYLINDER_RESOLUTION = 48  # segments around a cylinder: chord error 0.2 % of the radius
SPHERE_RESOLUTION = 16


def part_mesh(part: Part, T_world_object: np.ndarray) -> o3d.geometry.TriangleMesh:
    """The closed, outward-facing mesh of one part placed in the world."""
    if part.shape == "box":
        mesh = o3d.geometry.TriangleMesh.create_box(*part.size)
        mesh.translate(-np.asarray(part.size) / 2)
    elif part.shape == "cylinder":
        mesh = o3d.geometry.TriangleMesh.create_cylinder(part.size[0] / 2, part.size[2], CYLINDER_RESOLUTION, split=1)
    else:
        mesh = o3d.geometry.TriangleMesh.create_sphere(part.size[0] / 2, SPHERE_RESOLUTION)
    mesh.translate(part.offset)
    mesh.transform(T_world_object)
    return mesh


def object_meshes(obj: SceneObject) -> list[o3d.geometry.TriangleMesh]:
    """One world mesh per part of ``obj`` (each closed and convex)."""
    return [part_mesh(part, obj.pose) for part in obj.parts]


def slab_mesh(slab: Slab) -> o3d.geometry.TriangleMesh:
    """The world mesh of a floor or wall slab."""
    return part_mesh(Part("box", slab.size), transform(np.eye(3), slab.centre))


def mesh_arrays(mesh: o3d.geometry.TriangleMesh) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 vertices and (T, 3) int64 triangles."""
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.triangles, dtype=np.int64)


def add_mesh(raycaster: o3d.t.geometry.RaycastingScene, mesh: o3d.geometry.TriangleMesh) -> int:
    """Add a mesh to an Open3D raycasting scene (float32, as it requires); returns its geometry id."""
    vertices, triangles = mesh_arrays(mesh)
    return raycaster.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(triangles.astype(np.uint32)))


def sample_surface(meshes: list[o3d.geometry.TriangleMesh], count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points drawn uniformly by area over the union of the meshes' triangles."""
    corners = np.concatenate([vertices[triangles] for vertices, triangles in map(mesh_arrays, meshes)])  # (T, 3, 3)
    areas = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1) / 2
    chosen = rng.choice(len(corners), size=count, p=areas / areas.sum())
    r1, r2 = rng.random(count), rng.random(count)
    flip = r1 + r2 > 1  # fold the unit square onto the triangle
    r1, r2 = np.where(flip, 1 - r1, r1), np.where(flip, 1 - r2, r2)
    tri = corners[chosen]
    return tri[:, 0] + r1[:, None] * (tri[:, 1] - tri[:, 0]) + r2[:, None] * (tri[:, 2] - tri[:, 0])
