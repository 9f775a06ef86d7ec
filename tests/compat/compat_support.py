"""The compatibility corpus's world: rendered living-room questions with their truth, and a grounding model.

The model stands behind the REAL parent-side vlm service (agent/vlm_service.py) as a scripted OpenAI-compatible
HTTP server: it reads the question and the image it is sent, finds the named object in that frame's instance
mask, and answers as recorded reference answers read: "834 357", "381 248 668 582", "Not visible", fenced
JSON, "[x1, y1, x2, y2]", "label: [...]", with a thinking preamble the service strips.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from spatialclaw_ros.agent.vlm_service import LOCATE_SYSTEM
from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.llm.messages import message_text
from spatialclaw_ros.llm.scripted_server import ScriptedRequest
from spatialclaw_ros.scenes.generator import living_room, living_room_side_view
from spatialclaw_ros.scenes.measure import compute_ground_truth
from spatialclaw_ros.scenes.model import CameraMount, Scene
from spatialclaw_ros.scenes.render import RenderedFrame, render_scene

WIDTH, HEIGHT = 320, 240
#: An object counts as visible in a frame from this many pixels of its instance mask.
MIN_VISIBLE_PX = 30


@dataclass
class Question:
    """One question's frames, the instance image of each frame, and the truth its cells check (a Python literal)."""

    name: str
    frames: FrameSet
    instances: dict[int, np.ndarray]  # frame index -> (H, W) instance ids
    labels: dict[str, int]  # object label -> instance id
    truth: dict


def _reindexed(rendered: list[RenderedFrame], offset: int, stamp_shift: float, camera: str) -> list[RenderedFrame]:
    return [RenderedFrame(dataclasses.replace(r.frame, index=r.frame.index + offset, stamp=r.frame.stamp + stamp_shift,
                                              camera=camera), r.instance) for r in rendered]


def _box(mask: np.ndarray) -> list[int]:
    rows, cols = np.nonzero(mask)
    return [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]


def _inner_point(mask: np.ndarray) -> list[int]:
    """The pixel (x, y) deepest inside the mask."""
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    row, col = np.unravel_index(int(np.argmax(distance)), mask.shape)
    return [int(col), int(row)]


def _truth(scene: Scene, rendered: list[RenderedFrame], first_stamp: float) -> dict:
    """What the cells may check, as plain Python values keyed by absolute frame index."""
    ground = compute_ground_truth(scene)
    frames = [r.frame for r in rendered]
    K = frames[0].K
    visible = {obj.label: {r.frame.index: r.instance == obj.instance_id for r in rendered
                           if np.count_nonzero(r.instance == obj.instance_id) >= MIN_VISIBLE_PX}
               for obj in scene.objects}
    return {
        "frame_indices": [f.index for f in frames],
        "width": WIDTH, "height": HEIGHT,
        "fx": float(K[0, 0]), "fy": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2]),
        "seconds": {f.index: round(f.stamp - first_stamp, 6) for f in frames},
        "poses": {f.index: np.round(f.T_world_camera, 9).tolist() for f in frames},
        "depth_centre": {f.index: float(f.depth[HEIGHT // 2, WIDTH // 2]) for f in frames},
        "boxes": {label: {fi: _box(mask) for fi, mask in masks.items()} for label, masks in visible.items()},
        "points": {label: {fi: _inner_point(mask) for fi, mask in masks.items()} for label, masks in visible.items()},
        "areas": {label: {fi: int(mask.sum()) for fi, mask in masks.items()} for label, masks in visible.items()},
        "centres": {obj.label: np.round(obj.centre, 4).tolist() for obj in ground.objects},
        "sizes": {obj.label: np.round(obj.size, 4).tolist() for obj in ground.objects},
        "closest": {"chair-table": round(ground.pair("chair", "table").closest, 4)},
    }


def _question(name: str, scene: Scene, rendered: list[RenderedFrame], **frame_set) -> Question:
    frames = FrameSet(frames=[r.frame for r in rendered], world_frame=scene.world_frame, **frame_set)
    first = min(r.frame.stamp for r in rendered)
    return Question(name, frames, {r.frame.index: r.instance for r in rendered},
                    {obj.label: obj.instance_id for obj in scene.objects}, _truth(scene, rendered, first))


def living_room_video() -> Question:
    """Six frames of the living room from the robot's front camera, a 2 Hz video."""
    scene = living_room(n_frames=6, width=WIDTH, height=HEIGHT)
    return _question("living", scene, render_scene(scene), is_video=True, fps=scene.rate)


def two_cameras() -> Question:
    """Three frames each from the front camera (frames 0-2) and a side camera beside the chair (frames 100-102)."""
    front = living_room(n_frames=3, width=WIDTH, height=HEIGHT)
    side = dataclasses.replace(living_room_side_view(n_frames=3, width=WIDTH, height=HEIGHT),
                               mount=CameraMount(name="side"))
    rendered = render_scene(front) + _reindexed(render_scene(side), 100, 0.25, "side")
    rendered.sort(key=lambda r: r.frame.stamp)
    return _question("cameras", front, rendered, is_video=True, fps=4.0)


def image_set() -> Question:
    """Three still images (living-room frames 0, 2 and 4) without a clock: an image set."""
    scene = living_room(n_frames=5, width=WIDTH, height=HEIGHT)
    rendered = render_scene(scene)[::2]
    return _question("images", scene, rendered, is_video=False)


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


class GroundingModel:
    """The "vlm" role of the scripted server: answers from the instance masks of the frame it is shown."""

    def __init__(self, questions: list[Question]) -> None:
        self._frames: dict[bytes, tuple[np.ndarray, dict[str, int]]] = {}
        for question in questions:
            for frame in question.frames.frames:
                self._frames[frame.rgb.tobytes()] = (question.instances[frame.index], question.labels)

    def __call__(self, request: ScriptedRequest) -> str:
        messages = request.messages
        question = message_text(messages[-1]).strip()
        images = [_decode(png) for png in request.images()]
        known = self._frames.get(images[0].tobytes()) if images else None
        if message_text(messages[0]).startswith(LOCATE_SYSTEM.splitlines()[0]):
            return self.locate(question, known)
        return self.ask(question, known)

    @staticmethod
    def _target(question: str, labels: dict[str, int]) -> str | None:
        text = question.lower()
        return next((label for label in sorted(labels, key=len, reverse=True) if label in text), None)

    def locate(self, question: str, known) -> str:
        if known is None:
            return "Not visible\nI cannot tell which scene this is."
        instance, labels = known
        label = self._target(question, labels)
        mask = instance == labels[label] if label else np.zeros(instance.shape, bool)
        if np.count_nonzero(mask) < MIN_VISIBLE_PX:
            return f"<think>I look for it.</think>Not visible\nThere is no {label or 'such thing'} in the image."
        height, width = mask.shape
        x1, y1, x2, y2 = _box(mask)
        box = [round(1000 * x1 / width), round(1000 * y1 / height), round(1000 * x2 / width), round(1000 * y2 / height)]
        px, py = _inner_point(mask)
        point = [round(1000 * px / width), round(1000 * py / height)]
        text = question.lower()
        numbers = box if ("box" in text or "x1" in text) else point
        thinking = f"<think>The {label} is at about {numbers}.</think>"
        if "json" in text:
            key = "bbox_2d" if numbers is box else "point_2d"
            return f'{thinking}```json\n[{{"{key}": {numbers}, "label": "{label}"}}]\n```'
        if "label:" in text:
            return f"{thinking}{label}: {numbers}"
        if "comma" in text or "bracket" in text:
            return f"{thinking}{numbers}"
        return thinking + " ".join(str(n) for n in numbers)

    def ask(self, question: str, known) -> str:
        if known is None:
            return "Cannot determine from the images."
        instance, labels = known
        label = self._target(question, labels)
        text = question.lower()
        if text.startswith("how many"):
            count = int(label is not None and np.count_nonzero(instance == labels[label]) >= MIN_VISIBLE_PX)
            return f"<think>Counting.</think>I can see {count} {label or 'such things'}.\nAnswer: {count}"
        if " left of " in text:
            first, second = sorted((l for l in labels if l in text), key=text.index)[:2]
            xs = [np.nonzero(instance == labels[name])[1].mean() for name in (first, second)]
            verdict = "yes" if xs[0] < xs[1] else "no"
            return f"In the image the {first} is {'left' if verdict == 'yes' else 'right'} of the {second}.\nAnswer: {verdict}"
        return "It is a living room with a table, a chair, a sofa, a cabinet and a trash can.\nAnswer: living room"


def frame_of(question: Question, index: int) -> Frame:
    """The question's frame with absolute index ``index``."""
    return next(f for f in question.frames.frames if f.index == index)
