"""``tools.SAM3``: object masks from text, point or box prompts, in one image or followed through key frames."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..frames import Frame
from ..imaging import to_rgb_array
from ..perception.backends import (BoxPrompt, PointPrompt, Prompt, Segment, TextPrompt, make_reconstruction_backend,
                                   make_segmentation_backend)
from ..perception.cache import SHARED_CACHE, CachedReconstructor, PerceptionCache, frame_content_key
from ..perception.segmentation import PerFrameMask
from .reconstruct import MAX_FRAMES, resolve_frames
from .shared import Shared
from .timing import frame_lookup

if TYPE_CHECKING:
    from . import ToolContext

#: Frame index given to a bare image (no ``.frame_index``): it is segmented by colour alone.
UNINDEXED = -1
#: Most frames a start_frame..end_frame window may span (as in the reference kernel).
MAX_WINDOW_FRAMES = 1000


def _box(box) -> BoxPrompt:
    values = np.asarray(box, dtype=float).reshape(-1)
    if values.size != 4:
        raise ValueError(f"a box is [x1, y1, x2, y2] in pixels, got {np.asarray(box).tolist()}")
    return BoxPrompt(tuple(float(v) for v in values))


def _points(points, point_labels) -> PointPrompt:
    xy = np.asarray(points, dtype=float)
    if xy.ndim == 1:  # one point [x, y]
        xy = xy[None]
    labels = np.ones(len(xy), int) if point_labels is None else np.asarray(point_labels, dtype=int).reshape(-1)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"points are [[x, y], ...] in pixels, got shape {xy.shape}")
    if len(labels) != len(xy):
        raise ValueError(f"{len(xy)} points but {len(labels)} point_labels (1 = on the object, 0 = not on it)")
    return PointPrompt(tuple(map(tuple, xy.tolist())), tuple(labels.tolist()))


def _depth(value) -> int:
    """How deeply ``value`` nests sequences (0 for a number), following first elements."""
    depth = 0
    while isinstance(value, (list, tuple, np.ndarray)) and len(value):
        depth, value = depth + 1, value[0]
    return depth


def _object_points(points_per_object, labels_per_object) -> list[PointPrompt]:
    """One PointPrompt per object from [[[x, y], ...], ...] and [[1|0, ...], ...]; a single object's points
    [[x, y], ...] or one point [x, y] are wrapped, and labels None means every point is on its object."""
    depth = _depth(points_per_object)
    objects = [[points_per_object]] if depth == 1 else [points_per_object] if depth == 2 else list(points_per_object)
    if labels_per_object is None:
        labels = [None] * len(objects)
    else:
        label_depth = _depth(labels_per_object)
        labels = [[labels_per_object]] if label_depth == 0 else [labels_per_object] if label_depth == 1 and depth < 3 \
            else list(labels_per_object)
    if len(labels) != len(objects):
        raise ValueError(f"{len(objects)} objects in points_per_object but {len(labels)} in point_labels_per_object")
    return [_points(p, l) for p, l in zip(objects, labels)]


def _instance_labels(name: str, count: int) -> list[str]:
    """``[name]`` for one instance, ``name_0, name_1, ...`` for several."""
    return [name] if count == 1 else [f"{name}_{n}" for n in range(count)]


def _labels(labels, default: list[str], count: int) -> list[str]:
    names = [labels] if isinstance(labels, str) else list(labels) if labels is not None else default
    if len(names) != count:
        raise ValueError(f"{len(names)} labels for {count} prompts: give one label per prompt (several instances of "
                         f"one text prompt are labelled label_0, label_1, ...)")
    return [str(n) for n in names]


def _text(prompt, what: str = "prompt") -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"{what} must be a non-empty noun phrase such as 'red chair', got {prompt!r}")
    return prompt.strip()


class PerImage(list):
    """``is_object_exist(...)["exists"]``: one bool per image; its truth value is "seen in any image"."""

    def __bool__(self) -> bool:
        return any(self)


class SAM3(Shared):
    """Object masks from prompts, returned as a PerFrameMask (use .get_mask, .get_masked_points, .get_centroid_3d).

    Pixels (x, y) = (column, row); boxes [x1, y1, x2, y2]. ``image``: ONE InputImages item (its frame, with
    depth), an absolute index, or a bare PIL image / array (colour only, frame -1). Finding nothing raises
    RuntimeError "... produced no usable mask ...". Video methods follow objects through the KEY FRAMES in
    start_frame <= fi < end_frame (absolute, at most 1000 apart) of camera ``video_index`` (1-based =
    InputImages_k; default the first, or those of ``frame_indices``); ``prompt_frame_idx`` counts from start_frame
    (absolute without one; default the first frame); output: ``frame_indices`` if given. ``backend``,
    ``capabilities`` say what runs.
    """

    is_available = True
    _PROMPT_HIDDEN = ("segment_image", "segment_video")

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
        """Every instance of ``prompt`` (a noun phrase) scoring >= confidence_threshold, labelled ``label`` (default
        the prompt), label_0, label_1... if several. The classical backend finds only the one vlm.locate points at."""
        text = _text(prompt)
        frame = self._frame(image, "segment_image_by_text")
        found = [s for s in self._instances(frame, TextPrompt(text, confidence_threshold)) if s.mask.any()]
        if not found:
            raise self._no_mask("segment_image_by_text", frame, f"the text prompt {text!r}")
        return self._image_result(frame, found, _instance_labels(label or text, len(found)))

    def segment_image_by_points(self, image, points, point_labels, label: str = "object") -> PerFrameMask:
        """One object from pixel points [[x, y], ...]; point_labels 1 = on it, 0 = not on it (both honoured)."""
        frame = self._frame(image, "segment_image_by_points")
        return self._one_object("segment_image_by_points", frame, _points(points, point_labels), label)

    def segment_image_by_box(self, image, box, label: str = "object") -> PerFrameMask:
        """One object inside the pixel box [x1, y1, x2, y2]."""
        frame = self._frame(image, "segment_image_by_box")
        return self._one_object("segment_image_by_box", frame, _box(box), label)

    def is_object_exist(self, images, object_name: str) -> dict:
        """Is ``object_name`` in one image / each of a list: {"exists": [bool per image] (truthy if any), "counts":
        [instances per image], "frame_indices", "summary"}."""
        name = _text(object_name, "object_name")
        many = isinstance(images, (list, tuple))
        if many and not images:
            raise ValueError("is_object_exist needs at least one image")
        frames = [self._frame(image, "is_object_exist") for image in (images if many else [images])]
        counts = [self._cache.get_or_compute(("count", *self._key, f.index, frame_content_key(f), name),
                                             lambda f=f: self._segmenter.count(f, name)) for f in frames]
        seen = [f.index for f, c in zip(frames, counts) if c]
        summary = (f"{name!r}: seen in frames {seen} ({sum(counts)} instances over {len(frames)} images)" if seen
                   else f"{name!r}: not seen in any of the {len(frames)} images")
        return {"exists": PerImage(c > 0 for c in counts), "counts": counts, "frame_indices": [f.index for f in frames],
                "summary": f"{summary}; counted by the {self.backend} backend"}

    def segment_image(self, *args, **kwargs) -> PerFrameMask:
        """Not available: use segment_image_by_text, segment_image_by_points or segment_image_by_box."""
        raise RuntimeError("SAM3.segment_image is disabled: use segment_image_by_text, segment_image_by_points or "
                           "segment_image_by_box")

    # --- video (key frames) ----------------------------------------------------------------------------

    def segment_video_by_text(self, prompts, labels=None, prompt_frame_idx: int | None = None, frame_indices=None,
                              start_frame: int | None = None, end_frame: int | None = None,
                              video_index: int | None = None) -> PerFrameMask:
        """Every instance of each text prompt (one per label) in the prompt frame, followed through the frames; a
        prompt finding nothing gives an all-False object (with a note)."""
        texts = [_text(prompts)] if isinstance(prompts, str) else [_text(p) for p in prompts]
        if not texts:
            raise ValueError("segment_video_by_text needs at least one text prompt")
        return self._video([TextPrompt(t) for t in texts], _labels(labels, texts, len(texts)), prompt_frame_idx,
                           frame_indices, start_frame, end_frame, video_index)

    def segment_video_by_points(self, points_per_object, point_labels_per_object=None, labels=None,
                                prompt_frame_idx: int | None = None, frame_indices=None, start_frame: int | None = None,
                                end_frame: int | None = None, video_index: int | None = None) -> PerFrameMask:
        """Objects from points [[[x, y], ...], ...] with labels [[1|0, ...], ...] (a list per object, all used)
        in the prompt frame, followed through the frames."""
        prompts = _object_points(points_per_object, point_labels_per_object)
        default = [f"object_{n}" for n in range(len(prompts))]
        return self._video(prompts, _labels(labels, default, len(prompts)), prompt_frame_idx, frame_indices,
                           start_frame, end_frame, video_index)

    def segment_video_by_box(self, boxes, labels=None, prompt_frame_idx: int | None = None, frame_indices=None,
                             start_frame: int | None = None, end_frame: int | None = None,
                             video_index: int | None = None) -> PerFrameMask:
        """Objects from boxes [[x1, y1, x2, y2], ...] (whole boxes) in the prompt frame, followed through the frames."""
        prompts = [_box(b) for b in boxes] if _depth(boxes) == 2 else [_box(boxes)]
        default = [f"object_{n}" for n in range(len(prompts))]
        return self._video(prompts, _labels(labels, default, len(prompts)), prompt_frame_idx, frame_indices,
                           start_frame, end_frame, video_index)

    def segment_video(self, *args, **kwargs) -> PerFrameMask:
        """Not available: use segment_video_by_text, segment_video_by_points or segment_video_by_box."""
        raise RuntimeError("SAM3.segment_video is disabled: use segment_video_by_text, segment_video_by_points or "
                           "segment_video_by_box")

    # --- internals -------------------------------------------------------------------------------------

    def _frame(self, image, method: str) -> Frame:
        """The question's frame for an InputImages item or index; a colour-only frame for a bare image."""
        if isinstance(image, (int, np.integer)) or hasattr(image, "frame_index"):
            return resolve_frames(self._context, image)[0]
        if isinstance(image, (Image.Image, np.ndarray)):
            return Frame(index=UNINDEXED, rgb=to_rgb_array(image))
        if isinstance(image, (list, tuple)):
            raise TypeError(f"SAM3.{method} takes ONE image (e.g. InputImages[3]), got a {type(image).__name__}; "
                            f"for several frames use the segment_video_by_* methods with frame_indices=[...]")
        raise TypeError(f"SAM3.{method} takes one image (an InputImages item, a PIL image or an array), "
                        f"got {type(image).__name__}")

    def _no_mask(self, method: str, frame: Frame, what: str) -> RuntimeError:
        where = "the image" if frame.index == UNINDEXED else f"frame {frame.index}"
        return RuntimeError(f"SAM3.{method} produced no usable mask for {what} in {where}: try another frame where the "
                            f"object is clearly visible, a more specific prompt, or a box prompt")

    def _instances(self, frame: Frame, prompt: Prompt) -> list[Segment]:
        """What ``prompt`` selects in ``frame`` (cached); for a text prompt the instances scoring above its threshold."""
        key = ("segment", *self._key, frame.index, frame_content_key(frame), prompt)
        found = self._cache.get_or_compute(key, lambda: self._segmenter.segment_image(frame, prompt))
        if isinstance(prompt, TextPrompt):
            return [s for s in found if s.score >= prompt.confidence_threshold]
        return found

    def _one_object(self, method: str, frame: Frame, prompt: Prompt, label: str) -> PerFrameMask:
        found = [s for s in self._instances(frame, prompt) if s.mask.any()]
        if not found:
            raise self._no_mask(method, frame, f"the {type(prompt).__name__.removesuffix('Prompt').lower()} prompt")
        return self._image_result(frame, found[:1], [str(label)])

    def _image_result(self, frame: Frame, found: list[Segment], labels: list[str]) -> PerFrameMask:
        masks = np.stack([s.mask for s in found])
        return PerFrameMask([masks], labels, [frame.index], images=[frame.rgb], scores=[s.score for s in found],
                            source=self.backend)

    def _camera_frames(self, video_index: int | None, frame_indices) -> list[Frame]:
        """The frames a video call may use: camera ``video_index`` (1-based), else those of ``frame_indices``, else
        the first camera's."""
        frames = self._context.frames.frames
        cameras = sorted({f.camera for f in frames})
        if len(cameras) == 1 or (video_index is None and frame_indices is not None):
            return list(frames)  # video_index is ignored for one camera, as in the reference
        video_index = 1 if video_index is None else video_index
        if not 1 <= int(video_index) <= len(cameras):
            raise ValueError(f"video_index {video_index} is out of range: there are {len(cameras)} camera(s), "
                             f"InputImages_1..{len(cameras)} = {cameras}")
        return [f for f in frames if f.camera == cameras[int(video_index) - 1]]

    def _window(self, frames: list[Frame], start_frame: int | None, end_frame: int | None) -> list[Frame]:
        """``frames`` with start_frame <= index < end_frame; ValueError for an empty or oversized window."""
        if start_frame is not None and end_frame is not None:
            if end_frame <= start_frame:
                raise ValueError(f"end_frame ({end_frame}) must be greater than start_frame ({start_frame}); the window "
                                 f"is start_frame <= frame < end_frame")
            if end_frame - start_frame > MAX_WINDOW_FRAMES:
                raise ValueError(f"a window holds at most {MAX_WINDOW_FRAMES} frames, got {end_frame - start_frame}: "
                                 f"give start_frame and end_frame at most {MAX_WINDOW_FRAMES} apart")
        inside = [f for f in frames if (start_frame is None or f.index >= start_frame)
                  and (end_frame is None or f.index < end_frame)]
        if not inside:
            raise ValueError(f"no key frame lies in the window start_frame={start_frame} <= frame < end_frame="
                             f"{end_frame}; key frames: {[f.index for f in frames]}")
        return inside

    def _video_frames(self, prompt_frame_idx: int | None, frame_indices, start_frame: int | None,
                      end_frame: int | None, video_index: int | None) -> tuple[list[Frame], list[int], int]:
        """(frames to follow the objects through, in index order; the output's frame indices; the prompt frame's
        position among the former)."""
        window = self._window(self._camera_frames(video_index, frame_indices), start_frame, end_frame)
        if frame_indices is not None:
            wanted = {f.index for f in resolve_frames(self._context, frame_indices)}
            selected = [f for f in window if f.index in wanted]
            if not selected:
                raise ValueError(f"none of frame_indices {sorted(wanted)} lies in the window; its key frames: "
                                 f"{[f.index for f in window]}")
        else:
            selected = window
        if prompt_frame_idx is None:
            prompt = selected[0]
        else:
            absolute = (start_frame or 0) + int(prompt_frame_idx)
            prompt = next((f for f in window if f.index == absolute), None)
            if prompt is None:
                frame_lookup(self._context.frames, absolute)  # KeyError listing the valid indices
                local = "" if start_frame is None else f" (counted from start_frame {start_frame}: frame {absolute})"
                raise ValueError(f"prompt_frame_idx {prompt_frame_idx}{local} is not among the frames this call "
                                 f"follows {[f.index for f in window]}; pass the frame the prompt was drawn on")
        chosen = {f.index for f in selected}
        frames = [f for f in self._context.frames.frames if f.index in chosen | {prompt.index}]  # time order
        return frames, [f.index for f in frames if f.index in chosen], [f.index for f in frames].index(prompt.index)

    def _video(self, prompts: list[Prompt], names: list[str], prompt_frame_idx: int | None, frame_indices,
               start_frame: int | None, end_frame: int | None, video_index: int | None) -> PerFrameMask:
        frames, selected, position = self._video_frames(prompt_frame_idx, frame_indices, start_frame, end_frame,
                                                        video_index)
        prompt_frame = frames[position]
        first, labels = [], []
        for prompt, name in zip(prompts, names):
            found = [s for s in self._instances(prompt_frame, prompt) if s.mask.any()]
            if not found and not isinstance(prompt, TextPrompt):
                raise self._no_mask("segment_video", prompt_frame, f"object {name!r}")
            if not found:
                print(f"segment_video_by_text: {prompt.text!r} found nothing in frame {prompt_frame.index}; "
                      f"{name!r} is an all-False mask")
                found = [Segment(np.zeros((prompt_frame.height, prompt_frame.width), dtype=bool), 0.0)]
            first += [s.mask for s in found]
            labels += _instance_labels(name, len(found))
        key = ("track", *self._key, tuple((f.index, frame_content_key(f)) for f in frames), position, tuple(prompts))
        masks = self._cache.get_or_compute(key, lambda: self._segmenter.track(frames, position, first))
        kept = [n for n, f in enumerate(frames) if f.index in selected]
        return PerFrameMask([masks[n] for n in kept], labels, selected, images=[frames[n].rgb for n in kept],
                            source=self.backend)
