"""``tools.Reconstruct``: metric 3D of key frames in the TF world frame, from the configured backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..frames import Frame
from ..perception.backends import make_reconstruction_backend
from ..perception.cache import SHARED_CACHE, CachedReconstructor, PerceptionCache
from ..perception.reconstruction import Reconstruction
from .shared import Shared
from .timing import frame_lookup

if TYPE_CHECKING:
    from . import ToolContext

MAX_FRAMES = 64


def _is_single(items) -> bool:
    return isinstance(items, (int, np.integer, Image.Image)) or hasattr(items, "frame_index") or (
        isinstance(items, np.ndarray) and items.ndim == 3)


def _as_list(items) -> list:
    """The frame arguments as a list: a list, tuple, InputImages, range or index array; TypeError otherwise."""
    if isinstance(items, (list, tuple, range)) or (isinstance(items, np.ndarray) and items.ndim == 1):
        return list(items)
    raise TypeError(f"frames must be InputImages, a slice of it, a list of its images or absolute frame indices, "
                    f"got {type(items).__name__}")


def resolve_frames(context: ToolContext, items, frame_indices=None) -> list[Frame]:
    """The question's Frames for the agent's frame arguments.

    ``items``: InputImages, a slice or list of its items (each with ``.frame_index``), absolute frame
    indices, or one of these alone; None with ``frame_indices`` given. ``frame_indices``: the absolute
    indices of ``items`` that carry none (e.g. arrays); where both are known they must agree.
    """
    if items is None:
        if frame_indices is None:
            raise ValueError("give the frames (e.g. InputImages or InputImages[2:5]) or their frame_indices")
        items = list(frame_indices)
    elif _is_single(items):
        items = [items]
    items = _as_list(items)
    if frame_indices is not None:
        frame_indices = [int(i) for i in np.atleast_1d(frame_indices)]
        if len(frame_indices) != len(items):
            raise ValueError(f"{len(items)} frames but {len(frame_indices)} frame_indices")
    frames = []
    for position, item in enumerate(items):
        given = frame_indices[position] if frame_indices is not None else None
        if isinstance(item, (int, np.integer)):
            index = int(item)
        elif hasattr(item, "frame_index"):
            index = int(item.frame_index)
        elif given is not None:
            index = given
        else:
            raise ValueError(f"item {position} ({type(item).__name__}) carries no .frame_index: pass InputImages items, "
                             f"absolute frame indices, or frame_indices=[...] for these images")
        if given is not None and given != index:
            raise ValueError(f"item {position} is frame {index} but frame_indices says {given}")
        frame = frame_lookup(context.frames, index)
        if not isinstance(item, (int, np.integer)) and _image_size(item) != (frame.width, frame.height):
            raise ValueError(f"item {position} is {_image_size(item)} (w, h) but frame {index} is "
                             f"{(frame.width, frame.height)}: pass the frame itself (InputImages[i]), not a resized copy")
        frames.append(frame)
    if not frames:
        raise ValueError("no frames given")
    return frames


def _image_size(item) -> tuple[int, int]:
    """(width, height) of a PIL image or an (H, W[, C]) array."""
    if hasattr(item, "shape"):
        return int(item.shape[1]), int(item.shape[0])
    return tuple(item.size)


class Reconstruct(Shared):
    """Metric 3D of key frames in the TF world frame (metres, z up): depth, world points, confidence, cameras.

    All reconstructions of a question share this world frame and are metric, so points from separate calls
    combine directly. Cached: repeating a call is free. ``tools.Reconstruct(frames)`` works too.
    """

    #: Most frames one call takes (``Metadata.reconstruct_max_frames``).
    MAX_FRAMES = MAX_FRAMES
    is_available = True

    def __init__(self, context: ToolContext, *, backend: str | None = None, cache: PerceptionCache = SHARED_CACHE) -> None:
        self._context = context
        backend = backend or context.backends.reconstruction
        #: Name of the active reconstruction backend ("sensor": measured depth + CameraInfo + TF).
        self.backend = backend
        self._reconstruct = CachedReconstructor(
            make_reconstruction_backend(backend, host=context.host, world_frame=context.frames.world_frame), cache)

    def Reconstruct(self, frames, frame_indices=None) -> Reconstruction:
        """Reconstruction of 1..64 frames: InputImages, a slice, a list of its images, or absolute indices (may
        repeat)."""
        selected = resolve_frames(self._context, frames, frame_indices)
        if len(selected) > MAX_FRAMES:
            raise ValueError(f"Reconstruct takes at most {MAX_FRAMES} frames, got {len(selected)}; pass a slice such "
                             f"as InputImages[::{-(-len(selected) // MAX_FRAMES)}]")
        unique = list({frame.index: frame for frame in selected}.values())
        recon = self._reconstruct(unique)
        return recon if len(unique) == len(selected) else recon.subset([frame.index for frame in selected])

    __call__ = Reconstruct
