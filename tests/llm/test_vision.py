"""Vision encoders: the size each model computes on, the size worth sending, tokens; and what ImageEncoding sends.

Expected sizes are worked out by hand from the models' published preprocessing (Qwen: round each side to
a multiple of 28 or 32 px, rescale into [min_pixels, max_pixels]; Gemma 3: a 896x896 square, 256 tokens).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from spatialclaw_ros.config import ImageSettings
from spatialclaw_ros.imaging import decode_png, image_mime, image_size
from spatialclaw_ros.llm.vision import ENCODERS, EncodedImage, ImageEncoding, encoder_for

QWEN25, QWEN3, GEMMA3 = ENCODERS["qwen2.5-vl"], ENCODERS["qwen3-vl"], ENCODERS["gemma3"]


def test_qwen25_rounds_to_28_px_tokens():
    # 480/28 = 17.1 -> 17 rows, 640/28 = 22.9 -> 23 columns; 2 wrapper tokens.
    assert QWEN25.model_size(640, 480) == (644, 476)
    assert QWEN25.tokens(640, 480) == 17 * 23 + 2
    # Rounding alone is no reason to resample: sent as is.
    assert QWEN25.send_size(640, 480) == (640, 480)


def test_qwen25_with_a_server_pixel_limit_is_sent_at_that_size():
    # vLLM started with max_pixels = 1280*28*28: 1920x1080 shrinks by sqrt(1920*1080/1003520) = 1.4375,
    # then each side is floored to 28 px: 1080/1.4375/28 = 26.8 -> 26 rows, 1920/1.4375/28 = 47.7 -> 47 columns.
    encoder = encoder_for(ImageSettings(encoder="qwen2.5-vl", max_pixels=1280 * 28 * 28), "")
    assert encoder.model_size(1920, 1080) == (47 * 28, 26 * 28)
    assert encoder.send_size(1920, 1080) == (1316, 728)
    assert encoder.tokens(1920, 1080) == 47 * 26 + 2


def test_qwen3_uses_32_px_tokens_and_upsamples_small_images_itself():
    assert QWEN3.model_size(640, 480) == (640, 480) and QWEN3.tokens(640, 480) == 20 * 15 + 2
    # 100x80 is below 65536 px: scaled by sqrt(65536/8000) = 2.862 and ceiled to 32 px: 9 x 8 tokens.
    assert QWEN3.model_size(100, 80) == (288, 256) and QWEN3.tokens(100, 80) == 9 * 8 + 2
    assert QWEN3.send_size(100, 80) == (100, 80)  # never upsampled before sending


def test_gemma3_is_a_fixed_square_of_256_tokens():
    for size in [(640, 480), (1920, 1080), (100, 80)]:
        assert GEMMA3.model_size(*size) == (896, 896) and GEMMA3.tokens(*size) == 256 + 4
    assert GEMMA3.send_size(1920, 1080) == (896, 896)  # each axis capped at what the model keeps
    assert GEMMA3.send_size(640, 480) == (640, 480)
    assert GEMMA3.send_size(1200, 600) == (896, 600)


@pytest.mark.parametrize("model, expected", [
    ("Qwen/Qwen3-VL-8B-Instruct", "qwen3-vl"), ("Qwen/Qwen2.5-VL-7B-Instruct", "qwen2.5-vl"),
    ("qwen2-vl-2b", "qwen2.5-vl"), ("google/gemma-3-27b-it", "gemma3"), ("gemma3:12b", "gemma3"),
    ("gpt-4o", "qwen2.5-vl"), ("", "qwen2.5-vl"),
])
def test_auto_recognises_the_model(model, expected):
    assert encoder_for(ImageSettings(), model).name == expected


def test_explicit_encoder_and_overrides_win():
    assert encoder_for(ImageSettings(encoder="gemma3"), "Qwen/Qwen3-VL-8B").name == "gemma3"
    custom = encoder_for(ImageSettings(encoder="qwen3-vl", token_px=28, min_pixels=1000, max_pixels=50_000), "")
    assert (custom.token_px, custom.min_pixels, custom.max_pixels) == (28, 1000, 50_000)


def test_encoding_sends_jpeg_at_the_encoders_size():
    rng = np.random.default_rng(1)
    array = rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    encoding = ImageEncoding(GEMMA3, "jpeg", 70, max_side=1024)
    sent = encoding.encode(array)
    # Long side capped at 1024 (1024x576), then each axis at Gemma's 896: one Lanczos resample to 896x576.
    assert (sent.width, sent.height) == (896, 576) and image_size(sent.data) == (896, 576)
    assert image_mime(sent.data) == "image/jpeg" and sent.tokens == 260
    expected = Image.fromarray(array).resize((896, 576), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    expected.save(buffer, format="JPEG", quality=70)
    assert sent.data == buffer.getvalue()


def test_png_that_needs_nothing_is_passed_through_and_jpeg_is_reencoded():
    png = io.BytesIO()
    Image.fromarray(np.full((30, 40, 3), 7, np.uint8)).save(png, format="PNG")
    data = png.getvalue()
    # 40x30 is below Qwen2.5's 3136 px: scaled by sqrt(3136/1200) = 1.617 and ceiled to 28 px: 3 x 2 tokens.
    assert ImageEncoding(QWEN25, "png", 85, 1024).encode_bytes(data) == EncodedImage(data, 40, 30, 3 * 2 + 2)
    small = ImageEncoding(QWEN25, "png", 85, 1024).encode_bytes(data, max_side=20)
    assert (small.width, small.height) == (20, 15) and decode_png(small.data).shape == (15, 20, 3)
    jpeg = ImageEncoding(QWEN25, "jpeg", 85, 1024).encode_bytes(data)
    assert image_mime(jpeg.data) == "image/jpeg" and (jpeg.width, jpeg.height) == (40, 30)
