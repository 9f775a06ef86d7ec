"""The generated benchmark: its answers recomputed independently from each scene's ground-truth sidecar and the
frames a user would load (image rows and bag rows alike)."""

import functools
import math
import re

import numpy as np
import pytest

from spatialclaw_ros.evaluation.dataset import RowProblem, load_frames, read_rows
from spatialclaw_ros.evaluation.generate import generate_benchmark
from spatialclaw_ros.scenes.bag import read_ground_truth
from spatialclaw_ros.scenes.generator import generate_scene
from spatialclaw_ros.scenes.render import render_scene


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    images, bag = generate_benchmark(30, out)
    return list(read_rows(images)), list(read_rows(bag))


@functools.lru_cache(maxsize=None)
def pixels(seed: int) -> dict[int, int]:
    """Instance id -> its largest pixel count over the frames of the scene rendered again."""
    images = [item.instance for item in render_scene(generate_scene(seed, n_frames=6, width=320, height=240))]
    return {int(i): max(int((image == i).sum()) for image in images) for i in np.unique(images) if i}


def visible(row, truth) -> list:
    return [o for o in truth.objects if pixels(row.extra["seed"]).get(o.instance_id, 0) >= 200]


def labels(question: str, truth) -> list[str]:
    """The object labels a question names, in the order it names them."""
    found = [(question.index(f"the {o.label}"), o.label) for o in truth.objects if f"the {o.label}" in question]
    return [label for _, label in sorted(found)]


def expected(row, truth, frames):
    """The answer recomputed from the ground truth and the loaded frames (letters for choices)."""
    q, category = row.question, row.question_type
    named = labels(q, truth)
    letter = lambda text: chr(ord("A") + row.choices.index(text))  # noqa: E731
    if category == "closest_distance":
        return truth.pair(*named).closest
    if category == "centre_distance":
        return truth.pair(*named).centre_distance
    if category == "height":
        return truth.object(named[0]).size[2]
    if category == "size":
        return 100 * max(truth.object(named[0]).size[:2])
    if category == "count":
        return len(visible(row, truth))
    if category == "closest_object":
        others = [o for o in visible(row, truth) if o.label != named[0]]
        return letter(min(others, key=lambda o: truth.pair(named[0], o.label).closest).label)
    base = np.linalg.inv(frames.frames[0].poses["base_link"])
    if category == "direction_base_link":
        subject, reference = (base[:3, :3] @ truth.object(name).centre + base[:3, 3] for name in named)
        if "left or to the right" in q:
            return letter("left" if subject[1] > reference[1] else "right")
        return letter("in front of" if subject[0] > reference[0] else "behind")
    first, last = frames.frames[0].poses["base_link"], frames.frames[-1].poses["base_link"]
    yaw = math.degrees(math.remainder(math.atan2(last[1, 0], last[0, 0]) - math.atan2(first[1, 0], first[0, 0]),
                                      2 * math.pi))
    if "left or right" in q:
        return letter("left" if yaw > 0 else "right")
    if "degrees" in q:
        return abs(yaw)
    return float(np.linalg.norm(last[:2, 3] - first[:2, 3]))


def test_every_answer_agrees_with_the_scenes_ground_truth(generated):
    image_rows, bag_rows = generated
    assert len(image_rows) == len(bag_rows) == 30
    assert not any(isinstance(row, RowProblem) for row in image_rows + bag_rows)
    assert {row.question_type for row in image_rows} >= {"closest_distance", "centre_distance", "height", "size",
                                                         "direction_base_link", "count", "closest_object", "camera_motion"}
    assert {"multiple_choice", "numeric"} == {row.truth().kind for row in image_rows}
    for image_row, bag_row in zip(image_rows, bag_rows):
        assert (image_row.id, image_row.question, image_row.answer) == (bag_row.id, bag_row.question, bag_row.answer)
        truth = read_ground_truth(bag_row.bag)
        shown = {o.label for o in visible(image_row, truth)}
        assert set(labels(image_row.question, truth)) <= shown, image_row.question  # no question about unseen objects
        for frames in (load_frames(image_row, 32), load_frames(bag_row, 32)):
            want = expected(image_row, truth, frames)
            if isinstance(want, str):
                assert image_row.answer == want, image_row.question
            else:
                assert image_row.answer == pytest.approx(want, abs=6e-3), image_row.question  # answers are rounded


def test_image_rows_carry_metric_depth_and_the_bags_poses(generated):
    image_rows, bag_rows = generated
    from_images, from_bag = load_frames(image_rows[0], 32), load_frames(bag_rows[0], 32)
    assert from_images.metadata()["has_depth"] and from_images.metadata()["has_poses"]
    for a, b in zip(from_images.frames, from_bag.frames):
        np.testing.assert_allclose(a.depth, b.depth, atol=1e-3, equal_nan=True)  # both millimetre-quantised
        np.testing.assert_allclose(a.T_world_camera, b.T_world_camera, atol=1e-6)
        np.testing.assert_allclose(a.K, b.K)
    assert re.fullmatch(r"scene\d{3}-q\d{2}", image_rows[0].id)
