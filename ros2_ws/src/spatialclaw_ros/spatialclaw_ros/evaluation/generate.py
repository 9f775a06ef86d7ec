"""A metric spatial benchmark from synthetic scenes with exact ground truth, in the evaluation JSONL format.

Each scene (``scenes.generator.generate_scene``, seeds 0, 1, ...) is rendered once and written both as images
with metric depth, intrinsics and poses (``benchmark_images.jsonl``) and as a rosbag2 (``benchmark_bag.jsonl``);
the two files ask the same questions. Answers come from ``scenes.measure.compute_ground_truth`` and the scene's
own poses: closest gaps and centre distances between objects, heights and sizes, directions in ``base_link``
at the first frame, object counts and camera motion, as multiple choice and numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image

from ..scenes.bag import depth_to_millimetres, write_bag
from ..scenes.generator import generate_scene
from ..scenes.measure import compute_ground_truth
from ..scenes.model import Scene
from ..scenes.render import render_scene
from ..scenes.truth import GroundTruth
from .dataset import EvalRow, write_rows

IMAGES_FILE = "benchmark_images.jsonl"
BAG_FILE = "benchmark_bag.jsonl"
GAP_TOLERANCE_M = 0.02  # a closest gap this close scores 1 (relative accuracy means little near zero)
SIDE_MARGIN_M = 0.3  # directions are asked only when the offset along the axis is at least this
MIN_VISIBLE_PX = 200  # questions name only objects that some frame shows with at least this many pixels
QUESTIONS_PER_SCENE = 12  # taken round robin over the categories, so a small benchmark covers all of them


@dataclass(frozen=True)
class Question:
    """A generated question: text, options (if any), answer and unit, category and tolerance."""

    category: str
    question: str
    answer: str | float
    choices: tuple[str, ...] = ()
    unit: str | None = None
    tolerance: float | None = None


def base_link_offset(scene: Scene, frame: int, point: np.ndarray) -> np.ndarray:
    """``point`` (world) in the robot's base_link at ``frame`` (x forward, y left, z up)."""
    T = np.linalg.inv(scene.T_world_base(frame))
    return T[:3, :3] @ np.asarray(point, dtype=float) + T[:3, 3]


def _letter(choices: tuple[str, ...], answer: str) -> str:
    return chr(ord("A") + choices.index(answer))


def visible_objects(truth: GroundTruth, instance_images: list[np.ndarray]) -> list:
    """The objects some frame shows with at least MIN_VISIBLE_PX pixels (the others no one could answer about)."""
    return [o for o in truth.objects
            if max(int((image == o.instance_id).sum()) for image in instance_images) >= MIN_VISIBLE_PX]


def scene_questions(scene: Scene, truth: GroundTruth, objects: list) -> Iterator[Question]:
    """Every question about ``objects`` (those the frames show) that the scene's ground truth answers exactly,
    in a fixed order."""
    for a, b in combinations(objects, 2):
        pair = truth.pair(a.instance_id, b.instance_id)
        yield Question("closest_distance", f"What is the closest distance between the {a.label} and the {b.label}, "
                       "in metres?", round(pair.closest, 4), unit="m", tolerance=GAP_TOLERANCE_M)
        yield Question("centre_distance", f"How far is the centre of the {a.label} from the centre of the {b.label}, "
                       "in metres?", round(pair.centre_distance, 4), unit="m")
    for obj in objects:
        yield Question("height", f"How tall is the {obj.label}, in metres?", round(float(obj.size[2]), 4), unit="m")
        yield Question("size", f"How long is the longest horizontal side of the {obj.label}, in centimeters?",
                       round(100 * float(max(obj.size[:2])), 2), unit="cm")
    for a, b in combinations(objects, 2):
        offset = base_link_offset(scene, 0, b.centre) - base_link_offset(scene, 0, a.centre)
        if abs(offset[1]) >= SIDE_MARGIN_M:
            choices = ("left", "right")
            side = "left" if offset[1] > 0 else "right"
            yield Question("direction_base_link", f"In the robot's base_link frame at the first frame, is the {b.label} "
                           f"to the left or to the right of the {a.label}?", _letter(choices, side), choices)
        if abs(offset[0]) >= SIDE_MARGIN_M:
            choices = ("in front of", "behind")
            side = "in front of" if offset[0] > 0 else "behind"
            yield Question("direction_base_link", f"In the robot's base_link frame at the first frame, is the {b.label} "
                           f"in front of or behind the {a.label}?", _letter(choices, side), choices)
    yield Question("count", "How many pieces of furniture (objects other than the floor and walls) do the frames show?",
                   len(objects))
    for a in objects:
        others = [o for o in objects if o is not a]
        if len(others) >= 2:
            distances = [truth.pair(a.instance_id, o.instance_id).closest for o in others]
            ranked = sorted(distances)
            if ranked[1] - ranked[0] >= GAP_TOLERANCE_M * 5:
                choices = tuple(o.label for o in others)
                nearest = others[int(np.argmin(distances))].label
                yield Question("closest_object", f"Which object is closest to the {a.label}?",
                               _letter(choices, nearest), choices)
    first, last = scene.path[0], scene.path[-1]
    turn = math.degrees(math.remainder(last.yaw - first.yaw, 2 * math.pi))  # left is positive (z up)
    choices = ("left", "right")
    yield Question("camera_motion", "Did the camera turn left or right between the first and the last frame?",
                   _letter(choices, "left" if turn > 0 else "right"), choices)
    yield Question("camera_motion", "By how many degrees did the camera turn between the first and the last frame?",
                   round(abs(turn), 3), unit="deg")
    yield Question("camera_motion", "How far did the robot drive between the first and the last frame, in metres?",
                   round(math.hypot(last.x - first.x, last.y - first.y), 4), unit="m")


def balanced(questions: list[Question], limit: int) -> list[Question]:
    """Up to ``limit`` questions taken round robin over their categories (first of each, then second, ...)."""
    by_category: dict[str, list[Question]] = {}
    for question in questions:
        by_category.setdefault(question.category, []).append(question)
    picked: list[Question] = []
    for rank in range(max(len(group) for group in by_category.values())):
        picked += [group[rank] for group in by_category.values() if rank < len(group)]
    return picked[:limit]


def _write_images(scene: Scene, rendered, folder: Path) -> dict:
    """RGB and 16-bit millimetre depth PNGs of every frame; returns the row fields that describe them."""
    folder.mkdir(parents=True, exist_ok=True)
    images, depth = [], []
    for item in rendered:
        frame = item.frame
        images.append(str(folder / f"rgb_{frame.index}.png"))
        depth.append(str(folder / f"depth_{frame.index}.png"))
        Image.fromarray(frame.rgb).save(images[-1])
        Image.fromarray(depth_to_millimetres(frame.depth)).save(depth[-1])
    frames = [item.frame for item in rendered]
    return {"images": images, "depth": depth, "intrinsics": scene.intrinsics.K.tolist(),
            "poses": [f.T_world_camera.tolist() for f in frames],
            "base_poses": [f.poses["base_link"].tolist() for f in frames],
            "stamps": [f.stamp for f in frames], "world_frame": scene.world_frame}


def generate_benchmark(count: int, out: str | Path, *, first_seed: int = 0, n_frames: int = 6, width: int = 320,
                       height: int = 240) -> tuple[Path, Path]:
    """Write ``count`` questions (scenes from ``first_seed`` on, as many as needed) into ``out``; returns the
    images JSONL and the bag JSONL."""
    if count < 1:
        raise ValueError(f"the benchmark needs at least one question, got {count}")
    out = Path(out)
    image_rows, bag_rows = [], []
    seed = first_seed
    while len(image_rows) < count:
        scene = generate_scene(seed, n_frames=n_frames, width=width, height=height)
        rendered = render_scene(scene)
        truth = compute_ground_truth(scene)
        folder = out / "scenes" / f"scene_{seed:03d}"
        geometry = _write_images(scene, rendered, folder / "images")
        bag = write_bag(scene, [item.frame for item in rendered], folder / "bag", camera=scene.mount.name, truth=truth)
        objects = visible_objects(truth, [item.instance for item in rendered])
        questions = balanced(list(scene_questions(scene, truth, objects)), QUESTIONS_PER_SCENE)
        for number, question in enumerate(questions):
            if len(image_rows) == count:
                break
            common = dict(id=f"scene{seed:03d}-q{number:02d}", question=question.question, answer=question.answer,
                          choices=list(question.choices), question_type=question.category, unit=question.unit,
                          tolerance=question.tolerance, benchmark="spatialclaw-generated",
                          extra={"scene": scene.name, "seed": seed})
            image_rows.append(EvalRow(**common, **geometry))
            bag_rows.append(EvalRow(**common, bag=str(bag), world_frame=scene.world_frame))
        seed += 1
    return write_rows(image_rows, out / IMAGES_FILE), write_rows(bag_rows, out / BAG_FILE)
