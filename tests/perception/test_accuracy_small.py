"""A small run of bench/accuracy.py (3 scenes) held to the benchmark's own targets.

The first test holds what the perception tools deliver (masks, 3D points, centroids, the exact closest
distance between them); the second the answers tools.Geometry derives from them with its defaults.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "accuracy.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("accuracy_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report(bench):
    result = bench.run([0, 1, 2], frames=4)
    print(result.table())
    return result


def test_perception_points_meet_the_accuracy_targets(bench, report):
    for condition, factor in ((report.clean, 1.0), (report.noisy, bench.NOISE_FACTOR)):
        assert len(condition.closest_errors) >= 10 and len(condition.centroid_errors) >= 20
        assert condition.turns.total == 3 and condition.directions.total >= 10
        assert condition.closest_exact[0] <= factor * bench.CLOSEST_TARGET_M, condition.name
        assert condition.centroid[0] <= factor * bench.CENTROID_TARGET_M, condition.name
        assert condition.directions.all_right and condition.turns.all_right, condition.name


def test_geometry_defaults_meet_the_accuracy_targets(bench, report):
    """tools.Geometry.closest_point_distance (robust default) and count_instances (labels and reconstruction)."""
    assert report.failures() == []
