"""Random and named scenes: determinism, layout rules, the camera path, living_room's answer, and the CLI."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from scene_helpers import project
from spatialclaw_ros.frames import FrameSet
from spatialclaw_ros.scenes.bag import read_ground_truth
from spatialclaw_ros.scenes.generator import generate_scene, living_room
from spatialclaw_ros.scenes.measure import compute_ground_truth
from spatialclaw_ros.scenes.render import render_scene
from spatialclaw_ros.scenes.truth import GroundTruth


def test_scenes_are_deterministic_per_seed():
    assert generate_scene(7) == generate_scene(7)
    assert generate_scene(7) != generate_scene(8)
    assert generate_scene(7, n_objects=3, n_frames=5).n_frames == 5


@pytest.mark.parametrize("seed", range(12))
def test_layout_rules(seed):
    scene = generate_scene(seed)
    assert 2 <= len(scene.objects) <= 6
    assert len({o.label for o in scene.objects}) == len(scene.objects)
    assert sorted(o.instance_id for o in scene.objects) == list(range(1, len(scene.objects) + 1))
    camera = scene.T_world_camera(0)
    pixels, z = project(camera, scene.intrinsics.K, np.array([o.centre for o in scene.objects]))
    for obj, (u, _), depth in zip(scene.objects, pixels, z):
        assert 0.5 <= np.hypot(*(np.array(obj.centre[:2]) - camera[:2, 3])) <= 5.0
        assert depth > 0 and 0 <= u < scene.intrinsics.width, f"{obj.label} is not in front of the first camera"
        assert obj.corners()[:, 2].min() == pytest.approx(0.0, abs=1e-9)  # standing on the floor
    # inside the walls
    floor = next(s for s in scene.slabs if s.name == "floor")
    for obj in scene.objects:
        xy = obj.corners()[:, :2]
        assert (np.abs(xy - floor.centre[:2]) < np.array(floor.size[:2]) / 2).all()


@pytest.mark.parametrize("seed", [1, 4])
def test_objects_do_not_touch(seed):
    truth = compute_ground_truth(generate_scene(seed), points_per_object=10)
    assert min(p.closest for p in truth.pairs) > 0.05


@pytest.mark.parametrize("seed", range(8))
def test_camera_path_moves_and_turns_one_way(seed):
    scene = generate_scene(seed, n_frames=6)
    yaws = np.array([p.yaw for p in scene.path])
    turn = yaws[-1] - yaws[0]
    assert math.radians(15) - 1e-9 <= abs(turn) <= math.radians(45) + 1e-9
    assert (np.sign(np.diff(yaws)) == np.sign(turn)).all()
    steps = np.hypot(np.diff([p.x for p in scene.path]), np.diff([p.y for p in scene.path]))
    assert (steps > 0.04).all()
    # forward motion: each step goes roughly along the robot's heading
    headings = np.arctan2(np.diff([p.y for p in scene.path]), np.diff([p.x for p in scene.path]))
    assert np.abs(np.angle(np.exp(1j * (headings - yaws[:-1])))).max() < math.radians(10)


def test_living_room_chair_and_table():
    scene = living_room()
    assert {"chair", "table"} <= {o.label for o in scene.objects}
    truth = compute_ground_truth(scene, points_per_object=10)
    pair = truth.pair("chair", "table")
    # the chair's seat front edge (y = -0.5, top z = 0.45) and the table top's lower edge (y = 0, z = 0.71)
    assert pair.closest == pytest.approx(math.hypot(0.5, 0.75 - 0.04 - 0.45), abs=1e-3)
    assert pair.centre_distance == pytest.approx(math.hypot(1.15, 0.075), abs=1e-9)
    assert living_room() == scene
    # both stay in view along the whole path, for questions about them
    for rendered in render_scene(scene):
        for obj in ("chair", "table"):
            assert (rendered.instance == scene.object(obj).instance_id).sum() > 500, (rendered.frame.index, obj)


def test_cli_writes_frames_truth_and_bag(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "spatialclaw_ros.scenes.generator", "--seed", "3", "--out", str(out), "--bag",
                             "--frames", "3"], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr
    scene = generate_scene(3, n_frames=3)
    for obj in scene.objects:
        assert obj.label in result.stdout
    frames = FrameSet.load(out / "frames")
    assert [f.index for f in frames.frames] == [0, 1, 2]
    np.testing.assert_allclose(frames.frames[2].T_world_camera, scene.T_world_camera(2))
    with np.load(out / "instances.npz") as instances:
        assert sorted(instances.files) == ["instance_0", "instance_1", "instance_2"]
        assert set(np.unique(instances["instance_0"])) <= {0} | {o.instance_id for o in scene.objects}
    truth = GroundTruth.load(out / "ground_truth.json")
    assert [o.label for o in truth.objects] == [o.label for o in scene.objects]
    assert read_ground_truth(out / "bag").pairs[0].closest == truth.pairs[0].closest
    assert (out / "bag" / "metadata.yaml").is_file()


def test_objects_are_found_by_label_or_id_and_a_miss_lists_them():
    from spatialclaw_ros.scenes.generator import living_room
    from spatialclaw_ros.scenes.measure import compute_ground_truth

    scene = living_room(n_frames=2)
    truth = compute_ground_truth(scene)
    assert scene.object("chair").instance_id == 2 and truth.object(2).label == "chair"
    for lookup, owner in ((scene.object, "the scene"), (truth.object, "the ground truth")):
        with pytest.raises(KeyError, match=f"0 objects match 'lamp'; {owner} has 1:table, 2:chair"):
            lookup("lamp")
