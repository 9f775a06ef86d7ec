"""The image types of the kernel namespace: ``FrameImage``, ``InputImages`` and ``VisualFeedback``.

They follow the reference SpatialClaw kernel types: a FrameImage is not a PIL image but hands every attribute it
does not have to one (``width``, ``size``, ``resize`` ...), so ``np.array(f)`` and PIL-style code work on it.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from .frames import Frame
from .imaging import fit_long_side, to_rgb_array


class PilDelegate:
    """Attributes it lacks come from its PIL image ``self.image``; ``np.array`` gives a copy of its pixels."""

    image: Image.Image

    def __getattr__(self, name: str):
        if name.startswith("_"):  # copy/pickle probe private names before __init__ ran; never delegate them
            raise AttributeError(name)
        return getattr(self.image, name)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        pixels = np.array(self.image)  # always a fresh copy: the frames themselves stay untouched
        return pixels if dtype is None else pixels.astype(dtype)


class FrameImage(PilDelegate):
    """One frame: ``.frame_index`` (ABSOLUTE, what every tool takes), ``.image`` (PIL RGB), ``.is_loaded``,
    ``.stamp`` (s) and ``.camera``. Not a PIL subclass: other attributes come from ``.image`` (width, height,
    size, resize ...; those methods return plain PIL images) and ``np.array(f)`` gives (H, W, 3) uint8.
    ``FrameImage(image, frame_index, max_edge=None)`` wraps a PIL image or array (max_edge: shrink the long side)."""

    def __init__(self, image_or_path, frame_index: int, max_edge: int | None = None, backend: str | None = None,
                 *, stamp: float = 0.0, camera: str = "camera") -> None:
        if isinstance(image_or_path, (str, bytes, os.PathLike)):
            raise TypeError("FrameImage takes a PIL image or an (H, W, 3) array; cells cannot read image files")
        pixels = to_rgb_array(image_or_path)
        if max_edge:
            pixels = fit_long_side(pixels, int(max_edge))
        pixels.setflags(write=False)
        self._pixels = pixels
        self._image: Image.Image | None = None
        self.frame_index = int(frame_index)
        self.stamp = float(stamp)
        self.camera = str(camera)

    @classmethod
    def of(cls, frame: Frame) -> "FrameImage":
        """The question's frame as it appears in InputImages."""
        return cls(frame.rgb, frame.index, stamp=frame.stamp, camera=frame.camera)

    @property
    def image(self) -> Image.Image:
        """The PIL RGB image (made on first use)."""
        if self._image is None:
            self._image = Image.fromarray(self._pixels)
        return self._image

    @property
    def is_loaded(self) -> bool:
        """Whether ``.image`` has been made yet."""
        return self._image is not None

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.array(self._pixels, dtype=dtype)

    def __repr__(self) -> str:
        height, width = self._pixels.shape[:2]
        return f"FrameImage(frame_index={self.frame_index}, {width}x{height}, camera={self.camera}, t={self.stamp:.2f} s)"


def as_frame_image(item, frame_index: int | None, position: int) -> FrameImage:
    """``item`` as a FrameImage: a FrameImage stays (its index must agree with ``frame_index`` if given); a PIL
    image or array is wrapped with ``frame_index``, or with its list ``position`` when none is given."""
    if isinstance(item, FrameImage):
        if frame_index is not None and frame_index != item.frame_index:
            raise ValueError(f"item {position} is frame {item.frame_index} but frame_indices says {frame_index}")
        return item
    return FrameImage(item, position if frame_index is None else frame_index,
                      camera=getattr(item, "camera", "camera"), stamp=getattr(item, "stamp", 0.0))


class InputImages(list):
    """The question's frames in time order: a list of FrameImage. ``InputImages[i]`` is the i-th in the LIST;
    a slice is an InputImages that keeps the absolute indices; ``.frame_indices`` lists them;
    ``.frame(fi)`` is the image with absolute index fi. Several cameras: ``InputImages_1``, ``InputImages_2``
    ... hold one camera each (order of ``Metadata.cameras``), InputImages holds them all."""

    def __init__(self, images=(), frame_indices=None, max_edge: int | None = None, backend: str | None = None) -> None:
        items = list(images)
        indices = [None] * len(items) if frame_indices is None else [int(i) for i in frame_indices]
        if len(indices) != len(items):
            raise ValueError(f"{len(items)} images but {len(indices)} frame_indices")
        frames = [as_frame_image(item, index, n) for n, (item, index) in enumerate(zip(items, indices))]
        if max_edge:
            frames = [FrameImage(f, f.frame_index, max_edge, stamp=f.stamp, camera=f.camera) for f in frames]
        super().__init__(frames)

    @property
    def frame_indices(self) -> list[int]:
        """Absolute frame indices of the images, in list order."""
        return [image.frame_index for image in self]

    def frame(self, frame_index: int) -> FrameImage:
        """The image with absolute index ``frame_index``; KeyError lists the valid indices."""
        for image in self:
            if image.frame_index == frame_index:
                return image
        raise KeyError(f"Frame {frame_index} not found in InputImages; valid indices: {self.frame_indices}")

    def __getitem__(self, item):
        picked = super().__getitem__(item)
        return InputImages(picked) if isinstance(item, slice) else picked

    def __repr__(self) -> str:
        if not self:
            return "InputImages([])"
        sizes = sorted({f"{image.width}x{image.height}" for image in self})
        return f"InputImages({len(self)} images, frame_indices={self.frame_indices}, size {', '.join(sizes)})"


class VisualFeedback(PilDelegate):
    """A picture a tool made (Graph.plot, render_bev, PerFrameMask.visualize): ``.image`` (PIL), ``.source``,
    ``.description`` (what it shows, as text), ``.frame_index`` (or None). show() takes it; other attributes
    come from ``.image`` (width, size ...), so Draw and np.array take it too."""

    def __init__(self, image, source: str, description: str, frame_index: int | None = None) -> None:
        if not isinstance(image, Image.Image):
            raise TypeError(f"VisualFeedback needs a PIL image, got {type(image).__name__}")
        self.image = image
        self.source = str(source)
        self.description = str(description)
        self.frame_index = None if frame_index is None else int(frame_index)

    def __repr__(self) -> str:
        return f"VisualFeedback({self.source}, {self.image.width}x{self.image.height}): {self.description}"
