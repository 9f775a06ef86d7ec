"""Box prompts on real RGB-D frames (TUM RGB-D, tests/data/rgbd) against masks drawn by hand.

Runs bench/accuracy.py's real-data section: every annotated object is segmented through
tools.SAM3.segment_image_by_box (sensor reconstruction + classical segmenter) from the tight box
around its annotation, and each must reach the benchmark's IoU target.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_accuracy_small import bench  # noqa: F401, F811  (the fixture that loads bench/accuracy.py)

ANNOTATIONS = json.loads((Path(__file__).resolve().parents[1] / "data" / "rgbd" / "annotations.json").read_text())
OBJECTS = ANNOTATIONS["objects"]


@pytest.fixture(scope="module")
def results(bench):
    found = bench.run_real()
    print(bench.real_table(found))
    return {(r.object.frame, r.object.label): r for r in found}


@pytest.mark.parametrize("entry", OBJECTS, ids=[f"{e['frame']}-{e['label']}" for e in OBJECTS])
def test_box_prompt_mask_matches_the_annotation(bench, results, entry):
    result = results[(entry["frame"], entry["label"])]
    assert result.iou >= bench.REAL_IOU_TARGET, f"{entry['label']} ({', '.join(entry['tags'])}): IoU {result.iou:.3f}"


def test_the_annotations_cover_the_hard_cases(bench, results):
    """At least 15 objects, two dark ones against dark surroundings, two touching pairs; each box prompt is its
    annotation's tight bounding box."""
    assert len(results) >= 15
    assert sum("dark_on_dark" in r.object.tags for r in results.values()) >= 2
    assert sum("touching" in r.object.tags for r in results.values()) >= 4
    for r in results.values():
        rows, cols = np.nonzero(r.object.truth)
        assert r.object.box == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], r.object.label
