"""Rendering: depth, instance masks and optical-frame conventions against hand-computed geometry; noise; determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scene_helpers import INTRINSICS, LEVEL_MOUNT, back_project, box, project, scene_of, surface_distance
from spatialclaw_ros.scenes.generator import generate_scene
from spatialclaw_ros.scenes.model import BasePose
from spatialclaw_ros.scenes.render import DepthNoise, SceneRenderer, frame_set, render_scene

#: three boxes facing the level camera (optical centre at (0, 0, 1), looking along +x): ahead, left-low, right-high
BOXES = (
    box(1, (4.0, 0.0, 1.0), (0.4, 0.4, 0.4)),
    box(2, (5.0, 1.2, 0.45), (0.6, 0.5, 0.9)),
    box(3, (3.0, -0.8, 1.5), (0.3, 0.3, 0.3)),
)


def test_point_straight_ahead_lands_on_the_principal_point():
    rendered = SceneRenderer(scene_of(BOXES[:1])).render_frame(0)
    # the box's front face is at x = 3.8, 3.8 m ahead of the optical centre
    assert rendered.instance[120, 160] == 1
    assert rendered.frame.depth[120, 160] == pytest.approx(3.8, abs=1e-4)
    # its silhouette spans |u - cx| <= 250 * 0.2 / 3.8 = 13.16 px around pixel centres at integer u
    rows, cols = np.nonzero(rendered.instance == 1)
    assert (cols.min(), cols.max()) == (147, 173)
    assert (rows.min(), rows.max()) == (107, 133)


def test_depth_at_projected_centres_is_the_front_face_depth():
    scene = scene_of(BOXES)
    rendered = SceneRenderer(scene).render_frame(0)
    pixels, _ = project(scene.T_world_camera(0), INTRINSICS.K, np.array([o.centre for o in BOXES]))
    for obj, (u, v) in zip(BOXES, np.rint(pixels).astype(int)):
        assert rendered.instance[v, u] == obj.instance_id
        assert rendered.frame.depth[v, u] == pytest.approx(obj.centre[0] - obj.size[0] / 2, abs=1e-3)
    # REP 103 / optical frame: the box to the robot's left (+y) is left of centre, the raised box is above it
    rows, cols = np.nonzero(rendered.instance == 2)
    assert cols.max() < INTRINSICS.cx and rows.mean() > INTRINSICS.cy
    rows, cols = np.nonzero(rendered.instance == 3)
    assert cols.min() > INTRINSICS.cx and rows.max() < INTRINSICS.cy


def test_instance_masks_match_projected_box_extents():
    scene = scene_of(BOXES)
    rendered = SceneRenderer(scene).render_frame(0)
    for obj in BOXES:
        corners, _ = project(scene.T_world_camera(0), INTRINSICS.K, obj.corners())
        rows, cols = np.nonzero(rendered.instance == obj.instance_id)
        # pixel centres at integer coordinates inside the silhouette (the hull of the projected corners)
        assert (cols.min(), cols.max()) == (math.ceil(corners[:, 0].min()), math.floor(corners[:, 0].max()))
        assert (rows.min(), rows.max()) == (math.ceil(corners[:, 1].min()), math.floor(corners[:, 1].max()))


def test_frames_carry_poses_intrinsics_and_stamps():
    path = (BasePose(0.0, 0.0, 0.0), BasePose(0.3, 0.1, 0.2))
    scene = scene_of(BOXES, path=path)
    rendered = render_scene(scene)
    for i, r in enumerate(rendered):
        f = r.frame
        assert (f.index, f.camera, f.frame_id) == (i, "front", "front_optical_frame")
        assert f.stamp == pytest.approx(scene.start_stamp + i / scene.rate)
        np.testing.assert_allclose(f.K, [[250, 0, 160], [0, 250, 120], [0, 0, 1]])
        np.testing.assert_allclose(f.poses["base_link"], path[i].T_world_base)
        np.testing.assert_allclose(f.T_world_camera, path[i].T_world_base @ LEVEL_MOUNT.T_base_optical)
        assert f.depth.dtype == np.float32 and r.instance.shape == (240, 320)
    # the optical axis (z) of the level camera is the robot's heading; its x axis points to the robot's right
    T = rendered[1].frame.T_world_camera
    np.testing.assert_allclose(T[:3, 2], [math.cos(0.2), math.sin(0.2), 0.0], atol=1e-12)
    np.testing.assert_allclose(T[:3, 0], [math.sin(0.2), -math.cos(0.2), 0.0], atol=1e-12)
    np.testing.assert_allclose(T[:3, 3], [0.3, 0.1, 1.0])
    # nothing behind the floor's far edge above the horizon: invalid depth (NaN), background instance
    assert np.isnan(rendered[0].frame.depth[0]).all() and (rendered[0].instance[0] == 0).all()
    assert np.isfinite(rendered[0].frame.depth[-1]).all()
    frames = frame_set(scene, rendered)
    assert (frames.world_frame, frames.fps, frames.is_video, len(frames.frames)) == ("map", 2.0, True, 2)


@pytest.mark.parametrize("seed", [2, 9])
def test_generated_scene_depth_and_masks_fall_on_the_objects(seed):
    scene = generate_scene(seed, n_frames=4)
    renderer = SceneRenderer(scene)
    for index in (0, scene.n_frames - 1):
        rendered = renderer.render_frame(index)
        T = scene.T_world_camera(index)
        seen = 0
        for obj in scene.objects:
            mask = rendered.instance == obj.instance_id
            if not mask.any():
                continue
            seen += 1
            points = back_project(rendered.frame.depth, scene.intrinsics.K, T, mask)
            assert surface_distance(obj, points).max() < 1e-3, obj.label
            corners, z = project(T, scene.intrinsics.K, obj.corners())
            if (z > 0).all():
                rows, cols = np.nonzero(mask)
                assert cols.min() >= corners[:, 0].min() - 1 and cols.max() <= corners[:, 0].max() + 1
                assert rows.min() >= corners[:, 1].min() - 1 and rows.max() <= corners[:, 1].max() + 1
        assert seen >= 1


def test_depth_noise_statistics():
    scene = generate_scene(4, n_frames=1)
    clean = SceneRenderer(scene).render(scene.T_world_camera(0), scene.intrinsics).depth
    noise = DepthNoise(relative_sigma=0.01, dropout=0.05, seed=7)
    noisy = noise.apply(clean, 0)
    valid = clean > 0
    assert valid.sum() > 50_000
    dropped = valid & (noisy == 0)
    assert dropped.sum() / valid.sum() == pytest.approx(0.05, abs=0.005)
    kept = valid & (noisy > 0)
    relative = (noisy[kept] - clean[kept]) / clean[kept]
    assert relative.std() == pytest.approx(0.01, abs=0.0005)
    assert abs(relative.mean()) < 0.0005
    assert (noisy[~valid] == 0).all()
    np.testing.assert_array_equal(noise.apply(clean, 0), noisy)
    assert not np.array_equal(noise.apply(clean, 1), noisy)


def test_rendering_is_deterministic_and_textured():
    first = render_scene(generate_scene(6, n_frames=2))
    second = render_scene(generate_scene(6, n_frames=2))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.frame.rgb, b.frame.rgb)
        np.testing.assert_array_equal(a.frame.depth, b.frame.depth)
        np.testing.assert_array_equal(a.instance, b.instance)
    # not flat: the texture varies the colour within each object's mask
    instance, rgb = first[0].instance, first[0].frame.rgb.astype(float)
    large = [i for i in np.unique(instance[instance > 0]) if (instance == i).sum() > 100]
    assert large
    for obj_id in large:
        assert rgb[instance == obj_id].std(axis=0).max() > 3.0
