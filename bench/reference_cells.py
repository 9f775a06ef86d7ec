"""Cells in the reference SpatialClaw calling style, and the question the cost benches ask with them.

The cells are the cheap everyday kind the reference's agents write between perception calls (see
shared/reference/spatialclaw-tool-api.md: InputImages and frame_indices, normalized_to_pixel,
Geometry, Mask, Draw, Time, show). Each cell binds new names (``img_7``, ``mask_7``...), so the
variables grow with the step count as in a long question.
"""

from __future__ import annotations

from spatialclaw_ros.frames import FrameSet
from spatialclaw_ros.scenes.generator import living_room
from spatialclaw_ros.scenes.render import frame_set, render_scene

QUESTION = "How far is the chair from the table, in metres?"
COMPUTE_MARK = "[compute_ms "

_PATTERNS = (
    "print(Metadata.num_images, Metadata.frame_indices)",
    "img_{k} = InputImages[{k} % len(InputImages)]\nprint(img_{k}.frame_index, img_{k}.width, img_{k}.height)",
    "pt_{k} = tools.Geometry.normalized_to_pixel([512, 384], InputImages[0].width, InputImages[0].height)\n"
    "print(pt_{k})",
    "d_{k} = tools.Geometry.euclidean_distance([0.0, 0.0, 0.0], [1.0, 2.0, 0.1 * {k}])\nprint(f'{{d_{k}:.2f}} m')",
    "mask_{k} = np.zeros((480, 640), bool)\nmask_{k}[100:200, 150:300 + {k}] = True\n"
    "print(tools.Mask.area(mask_{k}), tools.Mask.bounding_box(mask_{k}))",
    "angle_{k} = tools.Geometry.angle_between_vectors([1, 0, 0], [0, 1, 0.01 * {k}])\nprint(round(angle_{k}, 2))",
    "pixels_{k} = np.array(InputImages[{k} % len(InputImages)])\nprint(pixels_{k}.shape, pixels_{k}.mean().round(1))",
    "box_{k} = tools.Draw.draw_bbox(InputImages[1], [150, 100, 300, 200])\nprint(box_{k}.size)",
    "t_{k} = tools.Time.frame_to_seconds(InputImages.frame_indices[-1])\nprint(t_{k})",
    "stats_{k} = {{'frames': len(InputImages), 'step': {k}}}\nprint(stats_{k})",
)


def reference_cell(k: int, show: bool = False, timed: bool = False) -> str:
    """Cell ``k`` (k >= 1); ``show`` adds a show() of a key frame, ``timed`` prints the cell's own compute time."""
    code = _PATTERNS[(k - 1) % len(_PATTERNS)].format(k=k)
    if show:
        code += f"\nshow(InputImages[{k} % len(InputImages)], label='frame check {k}')"
    if timed:
        code = (f"import time\ntick = time.perf_counter()\n{code}\n"
                f"print(f'{COMPUTE_MARK}{{(time.perf_counter() - tick) * 1000:.3f}}]')")
    return code


def reply(code: str) -> str:
    """A model reply running ``code``."""
    return f"Next I check one more thing.\n```python\n{code}\n```"


def compute_ms(stdout: str) -> float:
    """The compute time a timed cell printed."""
    start = stdout.rindex(COMPUTE_MARK) + len(COMPUTE_MARK)
    return float(stdout[start:stdout.index("]", start)])


def living_room_frames(n_frames: int = 8, width: int = 640, height: int = 480) -> FrameSet:
    """The living-room scene's frames (RGB, depth, poses), 8 of 640x480 by default."""
    scene = living_room(n_frames=n_frames, width=width, height=height)
    return frame_set(scene, render_scene(scene))
