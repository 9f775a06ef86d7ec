"""What reaches the model and what a question reports it cost, end to end: a real HTTP server and kernel.

The expected pixels are built here with Pillow from the camera frame and the documented rule (one
Lanczos resample to the encoder's size, JPEG at the configured quality), and compared with what the
server decoded from the request.
"""

import io
import json

import numpy as np
import pytest
from PIL import Image

from spatialclaw_ros.agent import AgentEvent
from spatialclaw_ros.config import ImageSettings
from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.llm.scripted_server import IMAGE_TOKENS, ScriptedModelServer, count_tokens
from spatialclaw_ros.session_log import read_trace

from agent_support import cell

QUALITY = 80
MAX_PIXELS = 256 * 28 * 28  # a server started with max_pixels = 200704
# 1280x960 shrinks by sqrt(1280*960/200704) = 2.474; sides floored to 28 px: 18 x 13 tokens -> 504x364.
SENT_SIZE = (504, 364)
SENT_TOKENS = 18 * 13 + 2


def camera_frame(seed: int) -> np.ndarray:
    """A 1280x960 frame with smooth structure and sensor-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:960, 0:1280]
    base = np.stack([x / 5, y / 4, (x + y) / 9], axis=-1) % 256
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=QUALITY)
    return buffer.getvalue()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


@pytest.fixture
def big_frames():
    return FrameSet([Frame(index=i, rgb=camera_frame(i), stamp=0.5 * i, camera="front") for i in range(2)])


def test_the_exact_pixels_reach_the_model_and_the_cost_is_reported(make_agent, big_frames):
    settings = ImageSettings(encoder="qwen2.5-vl", jpeg_quality=QUALITY, max_pixels=MAX_PIXELS)
    script = {"main": [cell("show(InputImages[1], label='again')"), cell("ReturnAnswer(2)")]}
    events: list[AgentEvent] = []
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url, images=settings).ask("How many images are there?", big_frames,
                                                            on_event=events.append)
        first, second = server.requests
    assert result.status == "answered", result.error_message

    # Key frames: one Lanczos resample of the camera frame to the encoder's size, JPEG at the set quality.
    expected_keys = [jpeg(Image.fromarray(frame.rgb).resize(SENT_SIZE, Image.Resampling.LANCZOS))
                     for frame in big_frames.frames]
    assert first.images() == expected_keys == second.images()[:2]
    for sent, frame in zip(first.images(), big_frames.frames):
        assert pixels(sent).shape == (364, 504, 3)
        lossless = np.asarray(Image.fromarray(frame.rgb).resize(SENT_SIZE, Image.Resampling.LANCZOS))
        assert psnr(pixels(sent), lossless) > 30  # the JPEG keeps the picture
    # The shown image: show() caps it at image_max_side (1024x768) in the kernel, then the same rule.
    shown = Image.fromarray(big_frames.frames[1].rgb).resize((1024, 768), Image.Resampling.LANCZOS)
    assert np.array_equal(pixels(second.images()[2]), pixels(jpeg(shown.resize(SENT_SIZE, Image.Resampling.LANCZOS))))
    # The model is told the sizes, so that pixel coordinates read off an image can be scaled back.
    assert "[image 'frame 1 (camera front, t=0.50 s)', sent at 504x364 of 1280x960 px]" in first.text()
    assert "[image 'step 1 image 1: again', sent at 504x364 of 1024x768 px]" in second.text()

    # The cost: every byte the server received, the estimated image tokens, what the endpoint reported.
    cost = result.cost
    received = sum(int(request.headers["content-length"]) for request in server.requests)
    assert cost.calls == 2 and cost.by_role["main"].calls == 2
    assert received * 0.99 < cost.bytes_sent < received
    assert cost.image_tokens == (2 + 3) * SENT_TOKENS
    reported = sum(count_tokens(request.text()) + IMAGE_TOKENS * request.image_count() for request in server.requests)
    assert cost.prompt_tokens == reported
    assert 0.5 < cost.prefix_share_mean < 1.0
    calls = [event for event in read_trace(result.session_dir) if event["kind"] == "call_cost"]
    assert [(call["role"], call["step"], call["images"]) for call in calls] == [("main", 1, 2), ("main", 2, 3)]
    assert sum(call["bytes_sent"] for call in calls) == cost.bytes_sent
    assert calls[0]["prefix_share"] == 0.0 and calls[1]["prefix_share"] == cost.prefix_share_mean
    saved = json.loads((result.session_dir / "result.json").read_text())["cost"]
    assert (saved["bytes_sent"], saved["image_tokens"], saved["text_tokens"]) == (
        cost.bytes_sent, cost.image_tokens, cost.text_tokens)
    # Progress events carry the running totals; the last one the question's.
    totals = [(event.bytes_sent, event.image_tokens, event.text_tokens) for event in events]
    assert totals == sorted(totals) and totals[0][0] > 0
    assert totals[-1] == (cost.bytes_sent, cost.image_tokens, cost.text_tokens)


def test_png_setting_sends_lossless_pixels(make_agent, big_frames):
    settings = ImageSettings(format="png", encoder="gemma3")
    with ScriptedModelServer({"main": [cell("ReturnAnswer(2)")]}) as server:
        result = make_agent(server.url, images=settings).ask("How many images are there?", big_frames)
        request = server.requests[0]
    assert result.status == "answered"
    for sent, frame in zip(request.images(), big_frames.frames):
        # Long side capped at 1024 (1024x768), each axis then at Gemma 3's 896: one resample to 896x768.
        expected = np.asarray(Image.fromarray(frame.rgb).resize((896, 768), Image.Resampling.LANCZOS))
        assert sent.startswith(b"\x89PNG") and np.array_equal(pixels(sent), expected)
    assert result.cost.image_tokens == 2 * (256 + 4)
