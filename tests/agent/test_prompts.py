"""Prompt texts: generated tool reference, lettered options, key frames fitted and labelled."""

import numpy as np

from spatialclaw_ros.agent.prompts import (
    final_answer_request, format_reminder, key_frame_blocks, key_frames, planner_messages, question_blocks,
    system_prompt,
)
from spatialclaw_ros.answers import analyse_question
from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.imaging import decode_png
from spatialclaw_ros.kernel.namespace import PROMPT_OBJECTS
from spatialclaw_ros.llm.messages import message_text
from spatialclaw_ros.tools import TOOL_CLASSES


def frameset(count=5, size=(300, 400)):
    return FrameSet([Frame(index=100 + i, rgb=np.zeros((*size, 3), np.uint8), stamp=0.25 * i, camera="front",
                           K=np.eye(3)) for i in range(count)], world_frame="map")


def test_system_prompt_documents_every_object_and_tool():
    prompt = system_prompt(frameset())
    for name in PROMPT_OBJECTS:
        assert f"{name}" in prompt  # documented by describe_object
    for name in TOOL_CLASSES:
        assert f"tools.{name}" in prompt
    assert "ReturnAnswer(answer, unit=None)" in prompt
    assert "The world frame 'map' has z up" in prompt and "exactly ONE fenced ```python" in prompt


def test_key_frames_are_spread_fitted_and_labelled():
    frames = frameset(count=9)
    chosen = key_frames(frames, 3)
    assert [frame.index for frame in chosen] == [100, 104, 108]
    blocks = key_frame_blocks(chosen, image_max_side=200)
    assert [(block.width, block.height) for block in blocks] == [(200, 150)] * 3
    assert decode_png(blocks[0].png).shape == (150, 200, 3)
    assert blocks[1].label == "frame 104 (camera front, t=1.00 s)" and blocks[1].key_frame


def test_question_message_and_planner_are_text_with_lettered_options():
    spec = analyse_question("Which is closer to the door?", ["A. the chair", "(B) the table"])
    frames = frameset(count=2)
    text = question_blocks(spec, frames, "1. look", key_frame_blocks(frames.frames, 64))[0].text
    assert "Options:\n  A. the chair\n  B. the table" in text
    assert "Answer with: one option letter" in text and "1. look" in text
    assert "- frame 101 (camera front, t=0.25 s): 400x300, intrinsics" in text
    assert "2 key frames follow" in text
    planner = planner_messages(spec, frames)
    assert [m["role"] for m in planner] == ["system", "user"]
    assert all(isinstance(m["content"], str) for m in planner)  # text only, never images
    assert "tools.SAM3:" in message_text(planner[1])


def test_reminder_and_final_request():
    assert "the reply contains 2 code cells" in format_reminder("the reply contains 2 code cells")
    request = final_answer_request("How far?", 30)
    assert "used all 30 steps" in request and '"How far?"' in request and "ANSWER: <value>" in request
