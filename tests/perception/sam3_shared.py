"""What both SAM 3 backends' tests (``sam3``, ``sam3-onnx``) check alike on ``sam3_scene`` (conftest.py): the encoder
caches, and a kernel cell through their host service that segments the chair by its box in one frame, counts chairs
in two and follows the box through all three."""

from __future__ import annotations

import numpy as np

from spatialclaw_ros.config import KernelConfig
from spatialclaw_ros.kernel.host import HostHandler
from spatialclaw_ros.kernel.pool import KernelPool
from spatialclaw_ros.kernel.results import CellResult
from spatialclaw_ros.perception.backends import BackendChoice, BoxPrompt, PointPrompt, TextPrompt
from spatialclaw_ros.perception.model_service import SEGMENT_SERVICE


def check_encoder_caches(model, sam3_scene) -> None:
    """``model`` (a fresh SAM3Model or SAM3OnnxModel) runs its image encoder once per image content and its text
    encoder once per phrase, whatever the prompts."""
    first, second = sam3_scene[2].frames[0].rgb, sam3_scene[2].frames[1].rgb
    for prompt in (TextPrompt("chair"), TextPrompt("chair", 0.1), TextPrompt("table"), BoxPrompt((10, 10, 50, 50)),
                   PointPrompt(((20.0, 20.0),), (1,))):
        model.segment(first, prompt)
    assert model.encoder_runs == {"image": 1, "text": 2}
    model.segment(second, TextPrompt("table"))
    model.segment(first.copy(), TextPrompt("chair"))  # same pixels, another array: still cached
    assert model.encoder_runs == {"image": 2, "text": 2}


def chair_box(sam3_scene) -> list[int]:
    """The chair's true pixel box [x1, y1, x2, y2] in frame 1."""
    scene, rendered, _ = sam3_scene
    rows, cols = np.nonzero(rendered[1].instance == scene.object("chair").instance_id)
    return [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]


def run_chair_cell(sam3_scene, handler: HostHandler, backend: str) -> CellResult:
    """The cell, in a real kernel whose segmentation backend ``backend`` calls ``handler``."""
    box = chair_box(sam3_scene)
    code = (
        f"m = tools.SAM3.segment_image_by_box(InputImages[1], {box}, label='chair')\n"
        "print(tools.SAM3.backend, m.source, m.labels, m.masks.shape, int(m.get_mask(1).sum()))\n"
        "print(tools.SAM3.is_object_exist(InputImages[:2], 'chair')['counts'])\n"
        f"v = tools.SAM3.segment_video_by_box({box}, labels=['chair'], prompt_frame_idx=1)\n"
        "print(v.frame_indices, v.masks.shape)\n"
    )
    with KernelPool(KernelConfig(pool_size=1)) as pool, pool.session(
            sam3_scene[2], {SEGMENT_SERVICE: handler}, backends=BackendChoice("sensor", backend)) as session:
        return session.execute(code, timeout_s=600)


def expected_lines(sam3_scene, model, backend: str) -> list[str]:
    """What the cell prints when every segmentation is ``model.segment``'s (a SAM3Model or SAM3OnnxModel)."""
    frames = sam3_scene[2].frames
    [direct] = model.segment(frames[1].rgb, BoxPrompt(tuple(float(v) for v in chair_box(sam3_scene))))
    counts = [len(model.segment(f.rgb, TextPrompt("chair"))) for f in frames[:2]]
    return [f"{backend} {backend} ['chair'] (1, 1, 120, 160) {int(direct.mask.sum())}", str(counts),
            "[0, 1, 2] (3, 1, 120, 160)"]
