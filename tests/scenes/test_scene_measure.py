"""Ground truth: closest distances between objects with known gaps, surface samples, lookups and the JSON round trip."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial import cKDTree

from scene_helpers import box, scene_of, surface_distance
from spatialclaw_ros.scenes import furniture
from spatialclaw_ros.scenes.build import object_meshes, sample_surface
from spatialclaw_ros.scenes.generator import CATALOGUE
from spatialclaw_ros.scenes.measure import ConvexPart, compute_ground_truth, object_distance, segment_distances
from spatialclaw_ros.scenes.model import SceneObject
from spatialclaw_ros.scenes.truth import GroundTruth


def distance(a: SceneObject, b: SceneObject) -> tuple[float, np.ndarray, np.ndarray]:
    return object_distance([ConvexPart(m) for m in object_meshes(a)], [ConvexPart(m) for m in object_meshes(b)])


def test_face_to_face_gap():
    d, on_a, on_b = distance(box(1, (0, 0, 0.5), (1, 1, 1)), box(2, (1.37, 0.2, 0.5), (1, 1, 1)))
    assert d == pytest.approx(0.37, abs=0.005)
    assert on_a[0] == pytest.approx(0.5, abs=1e-6) and on_b[0] == pytest.approx(0.87, abs=1e-6)
    assert np.linalg.norm(on_b - on_a) == pytest.approx(d, abs=1e-9)


def test_corner_to_corner_gap_in_three_axes():
    # b is beyond a's (+x, +y, +z) corner by (0.3, 0.2, 0.1)
    d, on_a, on_b = distance(box(1, (0, 0, 0.5), (1, 1, 1)), box(2, (1.3, 1.2, 1.6), (1, 1, 1)))
    assert d == pytest.approx(math.sqrt(0.3**2 + 0.2**2 + 0.1**2), abs=0.005)
    np.testing.assert_allclose(on_a, [0.5, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(on_b, [0.8, 0.7, 1.1], atol=1e-6)


def test_turned_box_corner_to_face():
    # a unit box turned 45 degrees reaches sqrt(0.5) along x; b's face is at x = 1.2
    d, _, _ = distance(box(1, (0, 0, 0.5), (1, 1, 1), yaw=math.pi / 4), box(2, (1.7, 0, 0.5), (1, 1, 1)))
    assert d == pytest.approx(1.2 - math.sqrt(0.5), abs=0.005)


def test_cylinder_to_box():
    can = SceneObject("trash can", 2, (0.0, 2.0, 0.3), 0.0, (90, 90, 90), furniture.trash_can(0.25, 0.6))
    d, _, on_can = distance(box(1, (0, 0, 0.5), (1, 1, 1)), can)
    assert d == pytest.approx(2.0 - 0.5 - 0.25, abs=0.005)
    assert np.hypot(on_can[0], on_can[1] - 2.0) == pytest.approx(0.25, abs=1e-6)


def test_touching_and_intersecting_objects_are_zero_apart():
    assert distance(box(1, (0, 0, 0.5), (1, 1, 1)), box(2, (1.0, 0, 0.5), (1, 1, 1)))[0] == pytest.approx(0.0, abs=1e-6)
    # a thin bar through the middle of a box: no vertex of either lies inside the other, only edges cross
    d, on_a, on_b = distance(box(1, (0, 0, 0.5), (1, 1, 1)), box(2, (0, 0, 0.5), (3, 0.1, 0.1)))
    assert d == 0.0 and np.array_equal(on_a, on_b)


def test_skew_segments_closed_form():
    # x-axis segment and a y-direction segment 0.4 above it, crossing over x = 0.3
    p0, p1 = np.array([0.0, 0, 0]), np.array([1.0, 0, 0])
    dist, on_p, on_q = segment_distances(p0, p1, np.array([0.3, -1, 0.4]), np.array([0.3, 1, 0.4]))
    assert dist == pytest.approx(0.4)
    np.testing.assert_allclose(on_p, [0.3, 0, 0])
    np.testing.assert_allclose(on_q, [0.3, 0, 0.4])
    # parallel segments that do not overlap: closest at the facing ends
    dist, _, _ = segment_distances(p0, p1, np.array([1.5, 0.2, 0]), np.array([2.5, 0.2, 0]))
    assert dist == pytest.approx(math.hypot(0.5, 0.2))


def standing(label: str, instance_id: int, xy, rng: np.random.Generator) -> SceneObject:
    """A random catalogue object standing on the floor at ``xy`` with a random yaw."""
    yaw = float(rng.uniform(-math.pi, math.pi))
    template = SceneObject(label, instance_id, (0.0, 0.0, 0.0), yaw, (1, 2, 3), CATALOGUE[label][0](rng))
    return replace(template, centre=(float(xy[0]), float(xy[1]), float(template.size[2] / 2)))


@pytest.mark.parametrize("labels", [("chair", "table"), ("potted plant", "sofa"), ("trash can", "chair")])
def test_exact_distance_agrees_with_dense_sampling(labels):
    rng = np.random.default_rng(len(labels[0]) * 100 + len(labels[1]))
    first = standing(labels[0], 1, (0.0, 0.0), rng)
    second = standing(labels[1], 2, (0.0, 0.0), rng)
    # just outside each other's footprint circles, in a random direction
    heading = rng.uniform(-math.pi, math.pi)
    reach = (np.hypot(*first.size[:2]) + np.hypot(*second.size[:2])) / 2 + 0.05
    second = replace(second, centre=(reach * math.cos(heading), reach * math.sin(heading), second.centre[2]))
    exact, on_a, on_b = distance(first, second)
    samples = [sample_surface(object_meshes(o), 60_000, rng) for o in (first, second)]
    sampled = cKDTree(samples[1]).query(samples[0])[0].min()
    assert exact <= sampled + 1e-6
    assert sampled - exact < 0.015  # the samples are about a centimetre apart
    assert surface_distance(first, on_a[None])[0] < 1e-5 and surface_distance(second, on_b[None])[0] < 1e-5


def test_ground_truth_of_a_scene():
    a, b, c = box(1, (0, 0, 0.5), (1, 1, 1), label="cabinet"), box(2, (2.5, 0, 0.25), (1, 1, 0.5), label="box"), \
        box(3, (0, 3, 0.5), (0.5, 0.5, 1), label="crate")
    truth = compute_ground_truth(scene_of([a, b, c]), points_per_object=500, seed=3)
    assert [o.label for o in truth.objects] == ["cabinet", "box", "crate"]
    assert len(truth.pairs) == 3
    pair = truth.pair("cabinet", "box")
    assert (pair.a, pair.b) == (1, 2)
    assert pair.closest == pytest.approx(1.5, abs=0.005)
    assert pair.centre_distance == pytest.approx(math.hypot(2.5, 0.25))
    swapped = truth.pair("box", "cabinet")
    assert (swapped.a, swapped.b, swapped.closest) == (2, 1, pair.closest)
    np.testing.assert_array_equal(swapped.point_a, pair.point_b)
    assert truth.pair(1, 3).closest == pytest.approx(2.25, abs=0.005)
    cabinet = truth.object("cabinet")
    np.testing.assert_allclose(cabinet.size, [1, 1, 1])
    assert cabinet.points.shape == (500, 3)
    assert surface_distance(a, cabinet.points).max() < 1e-6
    # area-uniform: the top face holds about a sixth of the samples
    assert np.mean(cabinet.points[:, 2] > 1 - 1e-9) == pytest.approx(1 / 6, abs=0.05)
    again = compute_ground_truth(scene_of([a, b, c]), points_per_object=500, seed=3)
    np.testing.assert_array_equal(again.object(2).points, truth.object(2).points)
    with pytest.raises(KeyError, match="1:cabinet, 2:box, 3:crate"):
        truth.object("sofa")


def test_ground_truth_json_round_trip(tmp_path):
    truth = compute_ground_truth(scene_of([box(1, (0, 0, 0.5), (1, 1, 1)), box(2, (2, 1, 0.5), (1, 1, 1))]), points_per_object=50)
    truth.save(tmp_path / "truth.json")
    loaded = GroundTruth.load(tmp_path / "truth.json")
    assert (loaded.scene, loaded.world_frame, loaded.method) == (truth.scene, truth.world_frame, truth.method)
    for got, want in zip(loaded.objects, truth.objects):
        assert (got.label, got.instance_id, got.yaw, got.colour) == (want.label, want.instance_id, want.yaw, want.colour)
        np.testing.assert_allclose(got.centre, want.centre)
        np.testing.assert_allclose(got.points, want.points, atol=1e-4)
    got, want = loaded.pairs[0], truth.pairs[0]
    assert (got.a, got.b, got.closest, got.centre_distance) == (want.a, want.b, want.closest, want.centre_distance)
    np.testing.assert_allclose(got.point_a, want.point_a)
