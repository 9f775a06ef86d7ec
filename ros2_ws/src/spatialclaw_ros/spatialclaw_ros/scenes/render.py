"""Raycast a scene into frames: shaded RGB, metric z-depth and instance ids, plus an optional depth noise model.

Rays go through pixel centres at integer (u, v) (the ROS/OpenCV convention) with a unit z component in
the optical frame, so the ray parameter at a hit is the z-depth. RGB is shaded here from each object's
colour, the surface normal and a texture anchored in the world (so it looks the same from every view);
Open3D's OffscreenRenderer is not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from ..frames import Frame, FrameSet
from .build import add_mesh, object_meshes, slab_mesh
from .model import Intrinsics, Scene

LIGHT = np.array([0.35, 0.25, 0.9]) / np.linalg.norm([0.35, 0.25, 0.9])  # towards the light, world frame
AMBIENT = 0.4
BACKGROUND = np.array([185.0, 200.0, 220.0])  # where no surface is hit (depth invalid)
TEXTURE = ((0.05, 0.14), (0.012, 0.08))  # (cell size in metres, contrast) of each world-anchored noise layer
CHECKER_DARK = 0.82


@dataclass(frozen=True)
class DepthNoise:
    """Depth-sensor corruption: Gaussian noise with sigma = ``relative_sigma`` x depth, and ``dropout`` of pixels made invalid."""

    relative_sigma: float = 0.01
    dropout: float = 0.05
    seed: int = 0

    def apply(self, depth: np.ndarray, frame_index: int) -> np.ndarray:
        """A noisy copy of ``depth`` (metres, 0 = invalid), deterministic per (seed, frame index)."""
        rng = np.random.default_rng([self.seed, frame_index])
        noisy = depth + rng.standard_normal(depth.shape) * (self.relative_sigma * depth)
        noisy[(rng.random(depth.shape) < self.dropout) | ~(noisy > 0) | ~(depth > 0)] = 0.0
        return noisy.astype(np.float32)


@dataclass(frozen=True, eq=False)
class View:
    """One rendered image: RGB (H, W, 3) uint8, z-depth (H, W) float32 metres with 0 where nothing is hit, instance ids (H, W)."""

    rgb: np.ndarray
    depth: np.ndarray
    instance: np.ndarray  # int32; 0 = floor, walls or nothing


@dataclass(frozen=True, eq=False)
class RenderedFrame:
    """A pipeline-ready ``Frame`` and the true instance-id image that goes with it."""

    frame: Frame
    instance: np.ndarray


class SceneRenderer:
    """Raycaster for one scene: renders any camera pose and the scene's own frames."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self._raycaster = o3d.t.geometry.RaycastingScene()
        surfaces = [(slab_mesh(slab), 0, slab.colour, slab.tile) for slab in scene.slabs]
        surfaces += [(mesh, obj.instance_id, obj.colour, 0.0) for obj in scene.objects for mesh in object_meshes(obj)]
        self._instance = np.zeros(len(surfaces), dtype=np.int32)  # per Open3D geometry id
        self._colour = np.zeros((len(surfaces), 3))
        self._tile = np.zeros(len(surfaces))
        for mesh, instance_id, colour, tile in surfaces:
            geometry = add_mesh(self._raycaster, mesh)
            self._instance[geometry], self._colour[geometry], self._tile[geometry] = instance_id, colour, tile

    def render(self, T_world_camera: np.ndarray, intrinsics: Intrinsics) -> View:
        """Raycast the view of an optical frame at ``T_world_camera`` (4x4)."""
        u, v = np.meshgrid(np.arange(intrinsics.width), np.arange(intrinsics.height))
        in_camera = np.stack([(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, np.ones(u.shape)], -1)
        directions = in_camera @ T_world_camera[:3, :3].T
        origin = T_world_camera[:3, 3]
        rays = np.concatenate([np.broadcast_to(origin, directions.shape), directions], axis=-1).astype(np.float32)
        hits = self._raycaster.cast_rays(o3d.core.Tensor(rays))
        t_hit = hits["t_hit"].numpy().astype(np.float64)
        geometry = hits["geometry_ids"].numpy()
        hit = geometry != o3d.t.geometry.RaycastingScene.INVALID_ID
        geometry = np.where(hit, geometry, 0).astype(np.int64)
        depth = np.where(hit, t_hit, 0.0)
        points = origin + directions * depth[..., None]
        normals = hits["primitive_normals"].numpy().astype(np.float64)
        rgb = self._shade(points, normals, geometry)
        rgb[~hit] = BACKGROUND
        instance = np.where(hit, self._instance[geometry], 0).astype(np.int32)
        return View(rgb=np.clip(np.rint(rgb), 0, 255).astype(np.uint8), depth=depth.astype(np.float32), instance=instance)

    def _shade(self, points: np.ndarray, normals: np.ndarray, geometry: np.ndarray) -> np.ndarray:
        """Wrapped Lambert shading (faces turned away stay lit) times a world-anchored texture and the slabs' checkerboards."""
        light = AMBIENT + (1 - AMBIENT) * (0.5 + 0.5 * (normals @ LIGHT))
        inside = points - 5e-4 * normals  # just under the surface, so faces on a cell border pick one cell
        texture = 1.0 + sum(contrast * (cell_noise(inside, cell) - 0.5) for cell, contrast in TEXTURE)
        tile = self._tile[geometry]
        cells = np.floor(inside[..., :2] / np.where(tile > 0, tile, 1.0)[..., None]).astype(np.int64).sum(axis=-1)
        checker = np.where((tile > 0) & (cells % 2 == 1), CHECKER_DARK, 1.0)
        return self._colour[geometry] * (light * texture * checker)[..., None]

    def render_frame(self, index: int, noise: DepthNoise | None = None) -> RenderedFrame:
        """Frame ``index`` of the scene's path as a ``Frame`` (depth 0 -> NaN, i.e. invalid) with its instance image."""
        scene = self.scene
        T_world_camera = scene.T_world_camera(index)
        view = self.render(T_world_camera, scene.intrinsics)
        depth = view.depth if noise is None else noise.apply(view.depth, index)
        frame = Frame(index=index, rgb=view.rgb, stamp=scene.stamp(index), camera=scene.mount.name,
                      frame_id=scene.mount.optical_frame, K=scene.intrinsics.K, depth=depth, T_world_camera=T_world_camera,
                      poses={"base_link": scene.T_world_base(index)})
        return RenderedFrame(frame=frame, instance=view.instance)


def cell_noise(points: np.ndarray, cell: float) -> np.ndarray:
    """A deterministic value in [0, 1) per cubic cell of side ``cell`` containing each point (integer hashing)."""
    ijk = np.floor(points / cell).astype(np.int64).astype(np.uint64)
    primes = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)
    h = (ijk[..., 0] * primes[0]) ^ (ijk[..., 1] * primes[1]) ^ (ijk[..., 2] * primes[2])
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(29)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def render_scene(scene: Scene, noise: DepthNoise | None = None) -> list[RenderedFrame]:
    """Every frame of the scene's camera path."""
    renderer = SceneRenderer(scene)
    return [renderer.render_frame(i, noise) for i in range(scene.n_frames)]


def frame_set(scene: Scene, rendered: list[RenderedFrame]) -> FrameSet:
    """The rendered frames as the ``FrameSet`` of a question (a video at the scene's rate, world = its TF world frame)."""
    return FrameSet(frames=[r.frame for r in rendered], world_frame=scene.world_frame, is_video=True, fps=scene.rate,
                    extra={"scene": scene.name})
