"""Image conversions shared by the kernel's show(), key frames sent to the model and vlm calls."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def to_rgb_array(image) -> np.ndarray:
    """Return (H, W, 3) uint8 from a PIL image or an array (uint8/float in [0, 1]/bool, gray or RGB(A))."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        finite = np.nan_to_num(array, nan=0.0, posinf=1.0, neginf=0.0)
        scale = 255.0 if finite.max(initial=0.0) <= 1.0 else 1.0
        array = np.clip(finite * scale, 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        array = array[:, :, :3]
    return np.ascontiguousarray(array)


def long_side_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled down (never up) so that the longer side is at most ``max_side`` pixels."""
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_long_side(array: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale (never upscale, Lanczos) so that the longer side is at most ``max_side`` pixels."""
    height, width = array.shape[:2]
    return resize(array, *long_side_size(width, height, max_side))


def resize(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """``array`` resampled (Lanczos) to exactly ``width`` x ``height``; the same array when it already is."""
    if array.shape[1] == width and array.shape[0] == height:
        return array
    return np.asarray(Image.fromarray(array).resize((width, height), Image.Resampling.LANCZOS))


def encode_jpeg(image, quality: int) -> bytes:
    """Baseline JPEG bytes (4:2:0 chroma, Pillow's libjpeg) of any image accepted by ``to_rgb_array``."""
    buffer = io.BytesIO()
    Image.fromarray(to_rgb_array(image)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def image_mime(data: bytes) -> str:
    """``image/png`` or ``image/jpeg`` from the encoded bytes' signature; ValueError for anything else."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    raise ValueError(f"not PNG or JPEG bytes (they start with {data[:8]!r})")


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of PNG or JPEG bytes, read from the header without decoding the pixels."""
    return Image.open(io.BytesIO(data)).size


def encode_png(image, max_side: int | None = None) -> bytes:
    """PNG bytes of any image accepted by ``to_rgb_array``, optionally size-limited."""
    array = to_rgb_array(image)
    if max_side:
        array = fit_long_side(array, max_side)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """(H, W, 3) uint8 from PNG or JPEG bytes."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
