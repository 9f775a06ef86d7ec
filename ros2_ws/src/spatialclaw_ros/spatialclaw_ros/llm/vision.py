"""What an image costs a vision-language model, and the size worth sending it at.

A model's image processor resizes every image before its vision encoder sees it: Qwen2.5-VL and
Qwen3-VL scale it, aspect kept, to a multiple of their token size (14 or 16 px patches merged 2x2,
so 28 or 32 px per token) within a pixel range; Gemma 3 stretches it to a fixed 896x896 square that
its SigLIP encoder turns into 256 tokens. Pixels beyond what the model computes on are bytes for
nothing, so images are sent no larger than that, per axis; and an image's tokens are those of the
size the model computes on. The numbers are the models' published preprocessor configurations.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from ..config import ImageSettings
from ..imaging import (decode_png, encode_jpeg, encode_png, image_mime, image_size, long_side_size, resize,
                       to_rgb_array)


@dataclass(frozen=True)
class VisionEncoder:
    """How a model's image processor sizes an image and how many prompt tokens it makes of it.

    ``square`` encoders (Gemma 3) stretch every image to a ``sqrt(max_pixels)`` square; the others keep
    the aspect ratio and round each side to a multiple of ``token_px`` within [min_pixels, max_pixels].
    ``wrapper_tokens`` are the special tokens the chat template puts around each image.
    """

    name: str
    token_px: int
    min_pixels: int
    max_pixels: int
    square: bool = False
    wrapper_tokens: int = 2

    def model_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) the model computes on for an image of ``width`` x ``height``."""
        if self.square:
            side = math.isqrt(self.max_pixels)
            return side, side
        factor = self.token_px
        rows = max(factor, round(height / factor) * factor)
        cols = max(factor, round(width / factor) * factor)
        if rows * cols > self.max_pixels:
            shrink = math.sqrt(height * width / self.max_pixels)
            rows = max(factor, math.floor(height / shrink / factor) * factor)
            cols = max(factor, math.floor(width / shrink / factor) * factor)
        elif rows * cols < self.min_pixels:
            grow = math.sqrt(self.min_pixels / (height * width))
            rows = math.ceil(height * grow / factor) * factor
            cols = math.ceil(width * grow / factor) * factor
        return cols, rows

    def send_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) worth sending: the model's size where it downscales, the image's own elsewhere.

        Qwen-style encoders only downscale above ``max_pixels`` (below it they round to whole tokens,
        which is no reason to resample); a square encoder downscales each axis longer than its side.
        """
        model_width, model_height = self.model_size(width, height)
        if self.square:
            return min(width, model_width), min(height, model_height)
        if width * height > self.max_pixels:
            return model_width, model_height
        return width, height

    def tokens(self, width: int, height: int) -> int:
        """Prompt tokens of an image of ``width`` x ``height``, the template's wrapper tokens included."""
        model_width, model_height = self.model_size(width, height)
        return (model_width // self.token_px) * (model_height // self.token_px) + self.wrapper_tokens


#: Published preprocessor settings: Qwen2.5-VL (14 px patches, 2x2 merge, 3136..12845056 px), Qwen3-VL
#: (16 px patches, 2x2 merge, 65536..16777216 px), Gemma 3 (896x896, 14 px patches pooled 4x4: 256 tokens).
ENCODERS = {
    "qwen2.5-vl": VisionEncoder("qwen2.5-vl", token_px=28, min_pixels=3136, max_pixels=12_845_056),
    "qwen3-vl": VisionEncoder("qwen3-vl", token_px=32, min_pixels=65_536, max_pixels=16_777_216),
    "gemma3": VisionEncoder("gemma3", token_px=56, min_pixels=896 * 896, max_pixels=896 * 896, square=True,
                            wrapper_tokens=4),
}
FALLBACK_ENCODER = "qwen2.5-vl"
_NAME_PATTERNS = (("qwen3-vl", r"qwen3[-_.]?(vl|omni)"), ("qwen2.5-vl", r"qwen2(\.5)?[-_.]?vl"),
                  ("gemma3", r"gemma[-_.]?3"))


def encoder_for(settings: ImageSettings, model_name: str) -> VisionEncoder:
    """The configured encoder (``auto``: recognised from ``model_name``), with any size setting overriding it."""
    name = settings.encoder
    if name == "auto":
        name = next((known for known, pattern in _NAME_PATTERNS if re.search(pattern, model_name.lower())),
                    FALLBACK_ENCODER)
    encoder = ENCODERS[name]
    overrides = {key: value for key, value in (("token_px", settings.token_px), ("min_pixels", settings.min_pixels),
                                               ("max_pixels", settings.max_pixels)) if value}
    return replace(encoder, **overrides)


@dataclass(frozen=True)
class EncodedImage:
    """An image as it goes to the model: encoded bytes, their pixel size and the model's tokens for it."""

    data: bytes
    width: int
    height: int
    tokens: int


@dataclass(frozen=True)
class ImageEncoding:
    """Turns any image into what the model is sent: long side capped, sized for the encoder, then encoded."""

    encoder: VisionEncoder
    image_format: str  # "jpeg" or "png"
    jpeg_quality: int
    max_side: int

    @classmethod
    def from_settings(cls, settings: ImageSettings, max_side: int, model_name: str) -> "ImageEncoding":
        """The encoding the configuration asks for, for the model named ``model_name``."""
        return cls(encoder_for(settings, model_name), settings.format, settings.jpeg_quality, max_side)

    def size(self, width: int, height: int, max_side: int | None = None) -> tuple[int, int]:
        """The size an image of ``width`` x ``height`` is sent at (long side at most ``max_side`` too)."""
        side = min(self.max_side, max_side) if max_side else self.max_side
        return self.encoder.send_size(*long_side_size(width, height, side))

    def pixels(self, image, max_side: int | None = None) -> np.ndarray:
        """The (H, W, 3) uint8 pixels that are encoded for ``image``: resampled once (Lanczos) to ``size``."""
        array = to_rgb_array(image)
        return resize(array, *self.size(int(array.shape[1]), int(array.shape[0]), max_side))

    def encode(self, image, max_side: int | None = None) -> EncodedImage:
        """``image`` (PIL, array) sized by ``pixels`` and encoded in the configured format."""
        array = self.pixels(image, max_side)
        height, width = int(array.shape[0]), int(array.shape[1])
        data = encode_jpeg(array, self.jpeg_quality) if self.image_format == "jpeg" else encode_png(array)
        return EncodedImage(data, width, height, self.encoder.tokens(width, height))

    def encode_bytes(self, data: bytes, max_side: int | None = None) -> EncodedImage:
        """``encode`` for PNG or JPEG bytes; PNG bytes already of the right size go out as they are when the
        format is PNG."""
        width, height = image_size(data)
        if self.image_format == "png" and image_mime(data) == "image/png" \
                and self.size(width, height, max_side) == (width, height):
            return EncodedImage(data, width, height, self.encoder.tokens(width, height))
        return self.encode(decode_png(data), max_side)
