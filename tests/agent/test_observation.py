"""Observations: status, cut output with marker, error, variables, restart note, images, last-step warning."""

import numpy as np

from spatialclaw_ros.agent.context import ImageBlock, TextBlock
from spatialclaw_ros.agent.observation import LAST_STEP_WARNING, build_observation, cut_middle
from spatialclaw_ros.imaging import decode_png, encode_png, image_mime
from spatialclaw_ros.kernel.results import (
    CellResult, CellStatus, RestartReport, ShownImage, VariableChanges, VariableSummary,
)
from spatialclaw_ros.llm.vision import ENCODERS, ImageEncoding

ENCODING = ImageEncoding(ENCODERS["gemma3"], "jpeg", 90, max_side=1024)


def text_of(blocks):
    return "\n".join(block.text for block in blocks if isinstance(block, TextBlock))


def observe(result, step=1, max_steps=10, budget=100):
    return build_observation(result, step=step, max_steps=max_steps, output_budget_chars=budget, encoding=ENCODING)


def test_cut_middle_keeps_head_and_tail():
    text = "H" * 50 + "M" * 1000 + "T" * 50
    cut = cut_middle(text, 100)
    assert cut.startswith("H" * 50) and cut.endswith("T" * 50)
    assert "[... 1000 chars cut ...]" in cut
    assert cut_middle("short", 100) == "short"


def test_ok_result_with_output_and_variables():
    result = CellResult(
        CellStatus.OK, stdout="x" * 300, duration_s=0.25,
        variables=VariableChanges(new=[VariableSummary("d", "float", "= 2.5")],
                                  changed=[VariableSummary("a", "ndarray", "float64 (3,)")],
                                  deleted=["old"]))
    blocks = observe(result)
    text = text_of(blocks)
    assert "Step 1/10: the cell ran successfully (0.25 s)." in text
    assert "[... 200 chars cut ...]" in text
    assert "New variables:\n  d: float = 2.5" in text
    assert "Changed variables:\n  a: ndarray float64 (3,)" in text
    assert "Deleted variables: old" in text
    assert [b.compressible for b in blocks if isinstance(b, TextBlock)][1] is True
    assert LAST_STEP_WARNING not in text


def test_error_stderr_and_refusal():
    result = CellResult(CellStatus.ERROR, stderr="warn\n", error="line 2: ZeroDivisionError: division by zero")
    text = text_of(build_observation(result, step=3, max_steps=10, output_budget_chars=1000, encoding=ENCODING,
                                     refusals=["give the unit, e.g. ReturnAnswer(2.4, unit='m')"]))
    assert "raised an error" in text
    assert "[stderr]\nwarn" in text
    assert "Error:\nline 2: ZeroDivisionError: division by zero" in text
    assert "ReturnAnswer was refused: give the unit" in text


def test_timeout_and_restart_notes():
    timeout = text_of(observe(CellResult(CellStatus.TIMEOUT, error="TimeoutError: past its 5 s limit")))
    assert "the cell timed out" in timeout and "Error:\nTimeoutError: past its 5 s limit" in timeout
    crashed = CellResult(CellStatus.CRASHED, error="killed by SIGKILL",
                         restart=RestartReport("crashed", restored=["a", "b"], lost=["big"]))
    text = text_of(observe(crashed))
    assert "crashed the kernel process" in text
    assert "The kernel was restarted (crashed)." in text
    assert "Restored variables: a, b" in text
    assert "LOST variables (re-create them before use): big" in text
    assert "(none)" in text


def test_images_become_labelled_image_blocks_in_the_models_format():
    wide = np.tile(np.linspace(0, 255, 1000, dtype=np.uint8)[None, :, None], (30, 1, 3))
    shown = [ShownImage("mask", encode_png(wide), 1000, 30), ShownImage("", encode_png(np.zeros((2, 2))), 2, 2)]
    images = [b for b in observe(CellResult(CellStatus.OK, images=shown), step=4) if isinstance(b, ImageBlock)]
    assert [(i.label, i.source_size) for i in images] == [("step 4 image 1: mask", (1000, 30)),
                                                            ("step 4 image 2", (2, 2))]
    # JPEG for the model; the wide one at Gemma 3's 896 px on that axis, 256 + 4 tokens each.
    assert [(i.image.width, i.image.height, i.image.tokens) for i in images] == [(896, 30, 260), (2, 2, 260)]
    assert all(image_mime(i.image.data) == "image/jpeg" for i in images)
    assert decode_png(images[0].image.data).shape == (30, 896, 3)


def test_last_step_warning_before_the_final_step():
    assert LAST_STEP_WARNING in text_of(observe(CellResult(CellStatus.OK), step=9, max_steps=10))
    assert LAST_STEP_WARNING not in text_of(observe(CellResult(CellStatus.OK), step=8, max_steps=10))
