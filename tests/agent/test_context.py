"""Context budget: recent steps whole, older images thumbnailed then dropped, outputs summarised, image cap."""

import numpy as np

from spatialclaw_ros.agent.context import (
    ContextReport, Entry, History, ImageBlock, TextBlock, image_tokens, summarise_lines, text_tokens,
)
from spatialclaw_ros.config import ContextBudget
from spatialclaw_ros.imaging import decode_png, encode_png
from spatialclaw_ros.llm.messages import content_parts, png_of_url


def image_block(label, side=512, key_frame=False):
    rng = np.random.default_rng(len(label))
    png = encode_png(rng.integers(0, 255, (side, side, 3), dtype=np.uint8))
    return ImageBlock(label=label, png=png, width=side, height=side, key_frame=key_frame)


def sent_images(messages):
    return [png_of_url(part["image_url"]["url"]) for message in messages for part in content_parts(message)
            if part.get("type") == "image_url"]


def all_text(messages):
    parts = [part for message in messages for part in content_parts(message)]
    return "\n".join(part["text"] for part in parts if part.get("type") == "text")


def build(budget, steps, images_per_step=1, output_lines=0, key_frames=2):
    history = History("system prompt", budget)
    frames = [image_block(f"frame {i}", key_frame=True) for i in range(key_frames)]
    history.add("user", 0, [TextBlock("question"), *frames])
    for step in range(1, steps + 1):
        history.add("assistant", step, [TextBlock(f"```python\nstep_{step}()\n```")])
        output = "\n".join(f"line {i} of step {step}" for i in range(output_lines))
        blocks = [TextBlock(f"Step {step} ok"), TextBlock(output, compressible=True)]
        blocks += [image_block(f"step {step} image {i}") for i in range(images_per_step)]
        history.add("user", step, blocks)
    return history


def test_estimates():
    assert text_tokens("abcd" * 10) == 10
    assert text_tokens("abcde") == 2
    assert image_tokens(28, 28) == 1
    assert image_tokens(1024, 768) == 37 * 28


def test_summarise_lines_keeps_head_and_tail():
    text = "\n".join(str(i) for i in range(30))
    summary = summarise_lines(text)
    assert summary.splitlines()[:5] == ["0", "1", "2", "3", "4"]
    assert summary.splitlines()[-5:] == ["25", "26", "27", "28", "29"]
    assert "[... 20 older output lines summarised away ...]" in summary
    assert summarise_lines("a\nb") == "a\nb"


def test_within_budget_nothing_changes():
    history = build(ContextBudget(max_tokens=10**6, max_images=100), steps=3)
    messages, call = history.render()
    assert call.images_sent == 5 and call.images_thumbnailed == 0 and call.images_dropped == 0
    assert [m["role"] for m in messages] == ["system", "user"] + ["assistant", "user"] * 3
    assert all(decode_png(png).shape == (512, 512, 3) for png in sent_images(messages))
    assert not call.over_budget


def test_older_images_thumbnailed_first():
    # 2 key frames + 8 steps with one 512 px image each: 10 images x 361 tokens.
    budget = ContextBudget(max_tokens=3300, max_images=100, thumbnail_px=128, keep_recent_steps=2)
    messages, call = build(budget, steps=8).render()
    assert call.images_dropped == 0
    assert call.images_thumbnailed >= 1
    assert call.estimated_tokens <= 3300
    sizes = [decode_png(png).shape[0] for png in sent_images(messages)]
    # Key frames stay full size, the newest two steps too; thumbnails are the oldest step images.
    assert sizes[:2] == [512, 512] and sizes[-2:] == [512, 512]
    assert 128 in sizes
    first_thumb = sizes.index(128)
    assert all(size == 128 for size in sizes[first_thumb:first_thumb + call.images_thumbnailed])


def test_then_dropped_with_a_note_oldest_first():
    budget = ContextBudget(max_tokens=1700, max_images=100, thumbnail_px=128, keep_recent_steps=2)
    messages, call = build(budget, steps=8).render()
    assert (call.images_thumbnailed, call.images_dropped) == (3, 3)
    assert call.estimated_tokens <= 1700
    text = all_text(messages)
    for step in (1, 2, 3):
        assert f"[image 'step {step} image 0' from step {step} dropped to fit the context budget]" in text
    assert "[image 'step 4 image 0']" in text
    sizes = [decode_png(png).shape[0] for png in sent_images(messages)]
    assert sizes == [512, 512, 128, 128, 128, 512, 512]  # key frames untouched while older images remain


def test_key_frames_thumbnailed_last():
    budget = ContextBudget(max_tokens=1000, max_images=100, thumbnail_px=128, keep_recent_steps=2)
    messages, call = build(budget, steps=8).render()
    assert call.images_dropped == 6
    assert [decode_png(png).shape[0] for png in sent_images(messages)] == [128, 128, 512, 512]


def test_old_outputs_summarised_recent_kept():
    budget = ContextBudget(max_tokens=1000, max_images=100, keep_recent_steps=2)
    messages, call = build(budget, steps=6, images_per_step=0, output_lines=60, key_frames=0).render()
    assert call.outputs_summarised == 4 and not call.over_budget
    text = all_text(messages)
    assert "older output lines summarised away" in text
    assert "line 30 of step 6" in text and "line 30 of step 5" in text
    assert "line 30 of step 1" not in text
    assert "line 59 of step 1" in text  # tail kept


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
    messages, call = history.render(Entry("user", 1, [TextBlock("final request")]))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"][0]["text"].startswith("Step 1 ok")
    assert messages[-1]["content"][-1]["text"] == "final request"
    assert len(history.entries) == 3  # the extra entry is not kept
    report = ContextReport()
    report.record(call)
    report.record(call)
    assert report.calls == 2 and report.peak_images_sent == call.images_sent
