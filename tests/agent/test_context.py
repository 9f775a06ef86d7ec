"""Context history: calls extend the previous call byte for byte; over budget, older material shrinks in one
large step (thumbnails, summaries, drops, key frames last) down to compact_to of the budget; image cap; cost."""

import json

import numpy as np
import pytest

from spatialclaw_ros.agent.context import (
    ContextReport, Entry, History, ImageBlock, TextBlock, summarise_lines, text_tokens,
)
from spatialclaw_ros.config import ContextBudget
from spatialclaw_ros.imaging import decode_png
from spatialclaw_ros.llm.messages import content_parts, image_of_url
from spatialclaw_ros.llm.vision import ENCODERS, ImageEncoding

ENCODING = ImageEncoding(ENCODERS["qwen2.5-vl"], "png", 85, max_side=1024)  # PNG: sizes decode exactly
FULL_TOKENS = 18 * 18 + 2  # a 512 px square: 512/28 = 18.3 -> 18 x 18 tokens, plus 2 wrapper tokens


def image_block(label, side=512, key_frame=False):
    rng = np.random.default_rng(len(label))
    return ImageBlock(label, ENCODING.encode(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)), key_frame)


def sent_images(messages):
    return [image_of_url(part["image_url"]["url"]) for message in messages for part in content_parts(message)
            if part.get("type") == "image_url"]


def sides(messages):
    return [decode_png(data).shape[0] for data in sent_images(messages)]


def all_text(messages):
    parts = [part for message in messages for part in content_parts(message)]
    return "\n".join(part["text"] for part in parts if part.get("type") == "text")


def add_step(history, step, images_per_step=1, output_lines=0):
    history.add("assistant", step, [TextBlock(f"```python\nstep_{step}()\n```")])
    output = "\n".join(f"line {i} of step {step}" for i in range(output_lines))
    blocks = [TextBlock(f"Step {step} ok"), TextBlock(output, compressible=True)]
    blocks += [image_block(f"step {step} image {i}") for i in range(images_per_step)]
    history.add("user", step, blocks)


def build(budget, steps, images_per_step=1, output_lines=0, key_frames=2):
    history = History("system prompt", budget, ENCODING)
    frames = [image_block(f"frame {i}", key_frame=True) for i in range(key_frames)]
    history.add("user", 0, [TextBlock("question"), *frames])
    for step in range(1, steps + 1):
        add_step(history, step, images_per_step, output_lines)
    return history


def test_estimates():
    assert text_tokens("abcd" * 10) == 10
    assert text_tokens("abcde") == 2
    assert image_block("x").image.tokens == FULL_TOKENS


def test_summarise_lines_keeps_head_and_tail():
    text = "\n".join(str(i) for i in range(30))
    summary = summarise_lines(text)
    assert summary.splitlines()[:5] == ["0", "1", "2", "3", "4"]
    assert summary.splitlines()[-5:] == ["25", "26", "27", "28", "29"]
    assert "[... 20 older output lines summarised away ...]" in summary
    assert summarise_lines("a\nb") == "a\nb"


def test_within_budget_each_call_extends_the_previous_one():
    history = build(ContextBudget(max_tokens=10**6, max_images=100), steps=1)
    previous, first = history.render()
    previous_tokens = first.estimated_tokens
    assert first.prefix_share == 0.0 and not first.compacted
    for step in range(2, 5):
        add_step(history, step, output_lines=3)
        messages, call = history.render()
        assert messages[:len(previous)] == previous  # byte for byte: what a prefix cache reuses
        assert call.prefix_share == pytest.approx(previous_tokens / call.estimated_tokens)
        assert 0.5 < call.prefix_share < 1.0 and not call.compacted
        previous, previous_tokens = messages, call.estimated_tokens
    assert [m["role"] for m in messages] == ["system", "user"] + ["assistant", "user"] * 4
    assert call.images_sent == 6 and call.images_thumbnailed == call.images_dropped == 0
    assert sides(messages) == [512] * 6
    assert call.image_tokens == 6 * FULL_TOKENS
    assert call.estimated_tokens == call.text_tokens + call.image_tokens
    assert call.bytes_sent == len(json.dumps(messages, ensure_ascii=False, separators=(",", ":")).encode())


def test_older_images_thumbnailed_first_down_to_the_low_water_mark():
    # 2 key frames + 8 steps with one 512 px image each: 10 x 332 tokens, over 3300.
    budget = ContextBudget(max_tokens=3300, max_images=100, thumbnail_px=128, keep_recent_steps=2, compact_to=0.6)
    messages, call = build(budget, steps=8).render()
    assert call.compacted and call.images_dropped == 0
    assert call.estimated_tokens <= 0.6 * 3300  # not just under the budget: down to compact_to of it
    # Key frames and the newest two steps stay full size; the thumbnails are the oldest step images.
    thumbs = call.images_thumbnailed
    assert sides(messages) == [512, 512] + [128] * thumbs + [512] * (8 - thumbs)
    assert 3 <= thumbs <= 6


def test_then_dropped_with_a_note_key_frames_kept_while_within_budget():
    budget = ContextBudget(max_tokens=1700, max_images=100, thumbnail_px=128, keep_recent_steps=2, compact_to=0.6)
    messages, call = build(budget, steps=8).render()
    # Thumbnails of the six older step images cannot reach 0.6 x 1700, so all six go, with a note each;
    # that brings the estimate under max_tokens, so the key frames stay full size.
    assert call.images_dropped == 6 and call.images_thumbnailed == 0
    assert 0.6 * 1700 < call.estimated_tokens <= 1700
    text = all_text(messages)
    for step in range(1, 7):
        assert f"[image 'step {step} image 0' from step {step} dropped to fit the context budget]" in text
    assert sides(messages) == [512, 512, 512, 512]


def test_over_the_image_count_older_images_go_oldest_first():
    budget = ContextBudget(max_tokens=10**6, max_images=8, keep_recent_steps=2, compact_to=0.75)
    messages, call = build(budget, steps=8).render()
    # 10 images > 8: older step images are dropped oldest first until 0.75 x 8 = 6 remain.
    assert call.compacted and call.images_sent == 6 and call.images_dropped == 4
    text = all_text(messages)
    assert all(f"'step {step} image 0' from step {step} dropped" in text for step in range(1, 5))
    assert all(f"[image 'step {step} image 0']" in text for step in range(5, 9))


def test_key_frames_thumbnailed_only_when_older_material_is_not_enough():
    budget = ContextBudget(max_tokens=1000, max_images=100, thumbnail_px=128, keep_recent_steps=2, compact_to=0.6)
    messages, call = build(budget, steps=8).render()
    assert call.images_dropped == 6
    assert sides(messages) == [128, 128, 512, 512]


def test_old_outputs_summarised_recent_kept():
    budget = ContextBudget(max_tokens=1000, max_images=100, keep_recent_steps=2)
    messages, call = build(budget, steps=6, images_per_step=0, output_lines=60, key_frames=0).render()
    assert call.outputs_summarised == 4 and not call.over_budget
    text = all_text(messages)
    assert "older output lines summarised away" in text
    assert "line 30 of step 6" in text and "line 30 of step 5" in text
    assert "line 30 of step 1" not in text
    assert "line 59 of step 1" in text  # tail kept


def test_compaction_is_rare_and_keeps_the_budget_over_a_long_question():
    budget = ContextBudget(max_tokens=6000, max_images=12, thumbnail_px=128, keep_recent_steps=2, compact_to=0.6)
    history = build(budget, steps=0, key_frames=4)
    calls, previous = [], []
    for step in range(1, 61):
        messages, call = history.render()
        assert call.compacted or messages[:len(previous)] == previous
        calls.append(call)
        previous = messages
        add_step(history, step, images_per_step=1 if step % 3 == 0 else 0, output_lines=12)
    assert all(call.estimated_tokens <= 6000 and call.images_sent <= 12 for call in calls)
    compactions = [index for index, call in enumerate(calls) if call.compacted]
    assert 1 <= len(compactions) <= 10, compactions
    # Between compactions every call is the previous one plus the new step; compactions are spaced out.
    assert all(call.prefix_share == pytest.approx(before.estimated_tokens / call.estimated_tokens)
               for before, call in zip(calls, calls[1:]) if not call.compacted)
    assert all(later - earlier >= 5 for earlier, later in zip(compactions, compactions[1:]))
    shares = [call.prefix_share for call in calls[1:]]
    assert sum(shares) / len(shares) >= 0.9
    # A shrunk block stays shrunk: thumbnails and summaries only ever grow in number.
    assert all(b.images_thumbnailed + b.images_dropped >= a.images_thumbnailed + a.images_dropped
               and b.outputs_summarised >= a.outputs_summarised for a, b in zip(calls, calls[1:]))


def test_never_more_than_max_images():
    budget = ContextBudget(max_tokens=10**6, max_images=6, keep_recent_steps=4)
    history = build(budget, steps=5, images_per_step=3, key_frames=4)
    messages, call = history.render()
    assert call.images_sent == 6 == len(sent_images(messages))
    assert call.images_dropped == 4 + 15 - 6
    text = all_text(messages)
    # The newest step's images survive the cap.
    for i in range(3):
        assert f"[image 'step 5 image {i}']" in text


def test_extra_entry_and_report():
    history = build(ContextBudget(), steps=1)
    _, first = history.render()
    messages, call = history.render(Entry("user", 1, [TextBlock("final request")]))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"][0]["text"].startswith("Step 1 ok")
    assert messages[-1]["content"][-1]["text"] == "final request"
    assert 0.9 < call.prefix_share < 1.0  # everything up to the merged request is shared
    assert len(history.entries) == 3  # the extra entry is not kept
    report = ContextReport()
    report.record(first)
    report.record(call)
    assert report.calls == 2 and report.peak_images_sent == call.images_sent
    assert report.prefix_share_mean == call.prefix_share and report.compactions == 0


def test_a_budget_too_small_for_the_system_prompt_is_reported_not_compacted_again_and_again():
    history = History("system prompt " * 2000, ContextBudget(max_tokens=1000), ENCODING)
    _, first = history.render()
    history.add("user", 0, [TextBlock("question")])
    _, second = history.render()
    assert first.over_budget and second.over_budget
    assert not first.compacted and not second.compacted  # nothing could shrink: the prefix is kept
    assert second.prefix_share == pytest.approx(first.estimated_tokens / second.estimated_tokens)
