"""``tools.SAM3``: object masks from text, point or box prompts, in one image or followed through key frames."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..frames import Frame
from ..imaging import to_rgb_array
from ..perception.backends import (BoxPrompt, PointPrompt, Prompt, Segment, TextPrompt, make_reconstruction_backend,
                                   make_segmentation_backend)
from ..perception.cache import SHARED_CACHE, CachedReconstructor, PerceptionCache, frame_content_key
from ..perception.segmentation import PerFrameMask
from .reconstruct import MAX_FRAMES, resolve_frames
from .timing import frame_lookup

if TYPE_CHECKING:
    from . import ToolContext

#: Frame index given to a bare image (no ``.frame_index``): it is segmented by colour alone.
UNINDEXED = -1


def _box(box) -> BoxPrompt:
    values = np.asarray(box, dtype=float).reshape(-1)
    if values.size != 4:
        raise ValueError(f"a box is [x1, y1, x2, y2] in pixels, got {np.asarray(box).tolist()}")
    return BoxPrompt(tuple(float(v) for v in values))


def _points(points, point_labels) -> PointPrompt:
    xy = np.asarray(points, dtype=float)
    labels = np.asarray(point_labels, dtype=int).reshape(-1)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"points are [[x, y], ...] in pixels, got shape {xy.shape}")
    if len(labels) != len(xy):
        raise ValueError(f"{len(xy)} points but {len(labels)} point_labels (1 = on the object, 0 = not on it)")
    return PointPrompt(tuple(map(tuple, xy.tolist())), tuple(labels.tolist()))


def _is_nested(value, depth: int) -> bool:
    """True when ``value`` is a sequence nested ``depth`` levels deep (e.g. 3 for per-object point lists)."""
    for _ in range(depth - 1):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) == 0:
            return False
        value = value[0]
    return hasattr(value, "__len__") and not isinstance(value, (str, bytes))


def _instance_labels(name: str, count: int) -> list[str]:
    """``[name]`` for one instance, ``name_0, name_1, ...`` for several."""
    return [name] if count == 1 else [f"{name}_{n}" for n in range(count)]


def _labels(labels, default: list[str], count: int) -> list[str]:
    names = [labels] if isinstance(labels, str) else list(labels) if labels is not None else default
    if len(names) != count:
        raise ValueError(f"{len(names)} labels for {count} prompts: give one label per prompt (several instances of "
                         f"one text prompt are labelled label_0, label_1, ...)")
    return [str(n) for n in names]


class SAM3:
    """Object masks from prompts, returned as a PerFrameMask (use .get_mask, .get_masked_points, .get_centroid_3d).

    Pixels are (x, y) = (column, row); boxes [x1, y1, x2, y2] (x2, y2 exclusive). ``image`` is an
    InputImages item (segmented in its frame, with depth) or a bare array (colour only, frame -1).
    Frames are ABSOLUTE indices. ``tools.SAM3.backend`` names the active backend and
    ``tools.SAM3.capabilities`` says what it can do; what it cannot do raises an error saying so.
    """

    def __init__(self, context: ToolContext, *, backend: str | None = None, reconstruction: str | None = None,
                 cache: PerceptionCache = SHARED_CACHE) -> None:
        self._context = context
        backend = backend or context.backends.segmentation
        reconstruction = reconstruction or context.backends.reconstruction
        self._cache = cache
        together = context.frames.frames if len(context.frames.frames) <= MAX_FRAMES else None
        reconstructor = CachedReconstructor(
            make_reconstruction_backend(reconstruction, host=context.host, world_frame=context.frames.world_frame), cache,
            together=together)
        self._segmenter = make_segmentation_backend(backend, host=context.host, reconstruct=reconstructor)
        self._key = (backend, reconstruction)
        #: Name of the active segmentation backend.
        self.backend = backend
        #: What the active backend can and cannot do.
        self.capabilities = self._segmenter.summary

    # --- single images ---------------------------------------------------------------------------------

    def segment_image_by_text(self, image, prompt: str, label: str | None = None,
                              confidence_threshold: float = 0.3) -> PerFrameMask:
        """Instances of ``prompt`` (a noun phrase) scoring >= confidence_threshold, labelled label_0, label_1... if several.
        The classical backend finds only the one instance vlm.locate points at: prompt others by box or points."""
        frame = self._frame(image)
        found = self._instances(frame, TextPrompt(prompt, confidence_threshold))
        return self._image_result(frame, found, _instance_labels(label or prompt, len(found)))

    def segment_image_by_points(self, image, points, point_labels, label: str | None = None) -> PerFrameMask:
        """One object from pixel points [[x, y], ...]; point_labels 1 = on the object, 0 = not on it (honoured)."""
        frame = self._frame(image)
        return self._image_result(frame, self._instances(frame, _points(points, point_labels)), [label or "object"])

    def segment_image_by_box(self, image, box, label: str | None = None) -> PerFrameMask:
        """One object inside the pixel box [x1, y1, x2, y2]."""
        frame = self._frame(image)
        return self._image_result(frame, self._instances(frame, _box(box)), [label or "object"])

    def is_object_exist(self, images, name: str) -> dict:
        """Whether ``name`` is visible: {"exists": bool, "counts": [instances per image], "frame_indices", "summary"}."""
        frames = [self._frame(image) for image in (list(images) if isinstance(images, (list, tuple)) else [images])]
        counts = [self._cache.get_or_compute(("count", *self._key, f.index, frame_content_key(f), name),
                                             lambda f=f: self._segmenter.count(f, name)) for f in frames]
        seen = [f.index for f, c in zip(frames, counts) if c]
        summary = (f"{name!r}: seen in frames {seen} ({sum(counts)} instances over {len(frames)} images)" if seen
                   else f"{name!r}: not seen in any of the {len(frames)} images")
        return {"exists": bool(seen), "counts": counts, "frame_indices": [f.index for f in frames],
                "summary": f"{summary}; counted by the {self.backend} backend"}

    # --- video (key frames) ----------------------------------------------------------------------------

    def segment_video_by_text(self, prompts, labels=None, prompt_frame_idx: int = 0, frame_indices=None,
                              start_frame: int | None = None, end_frame: int | None = None) -> PerFrameMask:
        """Every instance of each text prompt (str or list) in frame prompt_frame_idx, labelled as segment_image_by_text
        does (labels: one name per prompt), followed through the frames (frame_indices, default all, limited to
        start_frame..end_frame inclusive; all absolute indices)."""
        texts = [prompts] if isinstance(prompts, str) else [str(p) for p in prompts]
        return self._video([TextPrompt(t) for t in texts], _labels(labels, texts, len(texts)), prompt_frame_idx,
                           frame_indices, start_frame, end_frame)

    def segment_video_by_points(self, points, point_labels, labels=None, prompt_frame_idx: int = 0, frame_indices=None,
                                start_frame: int | None = None, end_frame: int | None = None) -> PerFrameMask:
        """Objects from pixel points in frame prompt_frame_idx, followed through the frames: points [[x, y], ...]
        with point_labels [1|0, ...] for one object, or a list of those (one per object)."""
        if _is_nested(points, 3):
            prompts = [_points(p, l) for p, l in zip(points, point_labels, strict=True)]
        else:
            prompts = [_points(points, point_labels)]
        default = [f"object_{n}" for n in range(len(prompts))]
        return self._video(prompts, _labels(labels, default, len(prompts)), prompt_frame_idx, frame_indices,
                           start_frame, end_frame)

    def segment_video_by_box(self, boxes, labels=None, prompt_frame_idx: int = 0, frame_indices=None,
                             start_frame: int | None = None, end_frame: int | None = None) -> PerFrameMask:
        """Objects from pixel boxes [x1, y1, x2, y2] (one, or a list: one per object) in frame prompt_frame_idx,
        followed through the frames (the whole box is used, not its centre)."""
        prompts = [_box(b) for b in boxes] if _is_nested(boxes, 2) else [_box(boxes)]
        default = [f"object_{n}" for n in range(len(prompts))]
        return self._video(prompts, _labels(labels, default, len(prompts)), prompt_frame_idx, frame_indices,
                           start_frame, end_frame)

    # --- internals -------------------------------------------------------------------------------------

    def _frame(self, image) -> Frame:
        """The question's frame for an InputImages item or index; a colour-only frame for a bare image."""
        if isinstance(image, (int, np.integer)) or hasattr(image, "frame_index"):
            return resolve_frames(self._context, image)[0]
        return Frame(index=UNINDEXED, rgb=to_rgb_array(image))

    def _instances(self, frame: Frame, prompt: Prompt) -> list[Segment]:
        """What ``prompt`` selects in ``frame`` (cached); for a text prompt the instances scoring above its threshold."""
        key = ("segment", *self._key, frame.index, frame_content_key(frame), prompt)
        found = self._cache.get_or_compute(key, lambda: self._segmenter.segment_image(frame, prompt))
        if isinstance(prompt, TextPrompt):
            return [s for s in found if s.score >= prompt.confidence_threshold]
        return found

    def _image_result(self, frame: Frame, found: list[Segment], labels: list[str]) -> PerFrameMask:
        masks = np.stack([s.mask for s in found]) if found else np.zeros((0, frame.height, frame.width), dtype=bool)
        return PerFrameMask([masks], labels, [frame.index], images=[frame.rgb], scores=[s.score for s in found],
                            source=self.backend)

    def _video(self, prompts: list[Prompt], names: list[str], prompt_frame_idx: int, frame_indices,
               start_frame: int | None, end_frame: int | None) -> PerFrameMask:
        indices = [f.index for f in self._context.frames.frames] if frame_indices is None else frame_indices
        frames = sorted(resolve_frames(self._context, indices), key=lambda f: f.index)
        frames = [f for f in frames if (start_frame is None or f.index >= start_frame)
                  and (end_frame is None or f.index <= end_frame)]
        selected = [f.index for f in frames]
        if int(prompt_frame_idx) not in selected:
            frame_lookup(self._context.frames, int(prompt_frame_idx))  # KeyError listing the valid indices
            raise ValueError(f"prompt_frame_idx {prompt_frame_idx} is not among the selected frames {selected} "
                             f"(absolute indices; check frame_indices, start_frame and end_frame)")
        position = selected.index(int(prompt_frame_idx))
        first, labels = [], []
        for n, (prompt, name) in enumerate(zip(prompts, names)):
            found = [s for s in self._instances(frames[position], prompt) if s.mask.any()]
            if not found:
                raise ValueError(f"prompt {n} ({prompt}) found nothing in frame {prompt_frame_idx}; give the prompt "
                                 f"in a frame where the object is visible (prompt_frame_idx)")
            first += [s.mask for s in found]
            labels += _instance_labels(name, len(found))
        key = ("track", *self._key, tuple((f.index, frame_content_key(f)) for f in frames), position, tuple(prompts))
        masks = self._cache.get_or_compute(key, lambda: self._segmenter.track(frames, position, first))
        return PerFrameMask(masks, labels, selected, images=[f.rgb for f in frames], source=self.backend)
