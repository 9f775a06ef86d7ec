"""The demo question: a synthetic living room, the real kernel and tools, and a model.

Without a model endpoint, a scripted model plays the cells a vision-language model would write; the
boxes it prompts SAM3 with come from the scene's instance masks, standing in for the model's own
grounding. Everything after the model's text (kernel, reconstruction, segmentation, geometry, answer
checking, session log) is the real pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .frames import FrameSet
from .scenes.generator import living_room_side_view
from .scenes.measure import compute_ground_truth
from .scenes.render import RenderedFrame, frame_set, render_scene

QUESTION = "How far is the chair from the table, in metres?"
OBJECTS = ("chair", "table")


@dataclass
class DemoCase:
    """The demo's question, frames, scripted model turns and the ground-truth answer (metres)."""

    question: str
    frames: FrameSet
    script: dict[str, list[str]]
    truth_m: float


def _box(rendered: RenderedFrame, instance_id: int) -> list[int]:
    """Pixel box [x1, y1, x2, y2] of an instance in a rendered frame."""
    rows, cols = np.nonzero(rendered.instance == instance_id)
    return [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]


def _cell(reasoning: str, code: str) -> str:
    return f"{reasoning}\n```python\n{code}\n```"


def scripted_turns(frame_index: int, boxes: dict[str, list[int]]) -> dict[str, list[str]]:
    """What a model would write for the demo question: reconstruct, track both objects, measure."""
    names = list(boxes)
    return {
        "planner": ["1. Reconstruct the frames (metric, world frame).\n2. Box-prompt the chair and the table and "
                    "track them through every frame.\n3. Closest-point distance between their fused 3D points.\n"
                    "Check: metres, both masks non-empty in most frames."],
        "main": [
            _cell("Reconstruct first, to get metric world points.",
                  "recon = tools.Reconstruct.Reconstruct(InputImages)\nprint(recon)"),
            _cell("Track both objects from the first frame through all frames and look at the masks.",
                  f"fi = {frame_index}\nmasks = tools.SAM3.segment_video_by_box({list(boxes.values())}, "
                  f"labels={names}, prompt_frame_idx=fi)\nprint(masks)\nshow(masks.visualize(fi), label='masks')"),
            _cell("Fuse each object's points over the frames, measure the closest-point distance and answer.",
                  f"d = tools.Geometry.closest_point_distance(masks.get_all_masked_points(recon, '{names[0]}'), "
                  f"masks.get_all_masked_points(recon, '{names[1]}'))\nprint(d)\n"
                  "ReturnAnswer(d.value_m, unit='m', evidence=d)"),
        ],
    }


def living_room_case() -> DemoCase:
    """Render the living room, seen from beside the chair, and build the demo case."""
    scene = living_room_side_view()
    rendered = render_scene(scene)
    frames = frame_set(scene, rendered)
    truth = compute_ground_truth(scene)
    first = rendered[0]
    boxes = {name: _box(first, scene.object(name).instance_id) for name in OBJECTS}
    return DemoCase(question=QUESTION, frames=frames, script=scripted_turns(first.frame.index, boxes),
                    truth_m=truth.pair(*OBJECTS).closest)
