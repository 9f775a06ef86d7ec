"""The names the agent's code sees in the kernel: frames, metadata, show(), feedback, vlm, ReturnAnswer, the tools.

This module runs inside the kernel worker. ``show`` and ``ReturnAnswer`` reach the parent through
the services the worker binds once per process (one process serves exactly one question). The
docstrings and signatures here are what the system prompt documents (see ``PROMPT_OBJECTS``).
The names follow the reference SpatialClaw kernel, so code written for it runs here unchanged.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import math
import sys
from dataclasses import dataclass
from typing import Callable

import cv2
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import scipy
from matplotlib.figure import Figure
from PIL import Image
from scipy import ndimage, optimize, signal, spatial

from ..frames import FrameSet
from ..grounding import read_grounding, to_pixels
from ..perception.backends import BackendChoice
from ..imaging import encode_png, to_rgb_array
from ..tools import TOOL_CLASSES, build_toolbox
from ..image_types import FrameImage, InputImages, PilDelegate
from ..tools.shared import Shared
from ..video import evenly_spaced
from .host import ANSWER_SERVICE, HostClient

#: Images show() sends over a whole question; beyond it they are dropped and the budget line says so.
SHOW_BUDGET = 250
#: Longest question / answer text the vlm calls echo into the cell's output.
PRINT_CHARS = 500

#: Python types ReturnAnswer passes to the parent unchanged.
ANSWER_TYPES = (str, bool, int, float)


class AnswerRefused(ValueError):
    """ReturnAnswer(...) was refused (for example the wrong type for the question); the message says why."""


class AnswerAccepted(BaseException):
    """Raised inside the cell once the parent accepted an answer, so the cell stops right there."""


@dataclass
class KernelServices:
    """What show(), plt.show() and ReturnAnswer use to reach the parent; bound once per worker."""

    host: HostClient
    emit_image: Callable[[str, bytes], None]  # label, PNG bytes
    image_max_side: int
    quiet: bool = False  # while a restarted kernel silently re-runs earlier cells
    shown: int = 0  # images show() has sent so far (SHOW_BUDGET)


_services: KernelServices | None = None


def bind_services(services: KernelServices) -> None:
    """Connect show() and ReturnAnswer to this worker's channel (called once by the worker)."""
    global _services
    _services = services


def _bound() -> KernelServices:
    if _services is None:
        raise RuntimeError("show() and ReturnAnswer() work only inside a kernel session")
    return _services


def input_images(frames: FrameSet, camera: str | None = None) -> InputImages:
    """``InputImages`` of the question's frames, or of one camera's frames."""
    return InputImages(FrameImage.of(frame) for frame in frames.frames if camera is None or frame.camera == camera)


def camera_names(frames: FrameSet) -> list[str]:
    """The question's cameras in their stable order (``Metadata.cameras``): camera k holds ``InputImages_k``."""
    return sorted({frame.camera for frame in frames.frames})


class Metadata(dict):
    """Facts about the question's frames, as attributes (``Metadata.fps``) or keys; ``to_dict()`` copies them.

    is_video, fps (None for image sets and several cameras), total_frames, duration_sec, num_images,
    frame_indices, cameras, videos (per camera k = InputImages_k: {name, fps, num_frames, total_frames,
    duration_sec}; None for image sets), num_videos, video_source (a description; there is no file),
    reconstruct_max_frames (64), world_frame, has_depth, has_poses, has_intrinsics, perception backends.
    """

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"Metadata has no '{name}'; its keys are {sorted(self)}") from None

    def to_dict(self) -> dict:
        """A plain dict of every field."""
        return dict(self)


def _camera_video(frames: FrameSet, camera: str, fps: float | None) -> dict:
    """``Metadata.videos`` entry of one camera's key frames."""
    own = [frame for frame in frames.frames if frame.camera == camera]
    stamps = [frame.stamp for frame in own]
    total = frames.total_frames if len(camera_names(frames)) == 1 else len(own)
    return {"name": camera, "fps": fps, "num_frames": len(own), "total_frames": total,
            "duration_sec": float(max(stamps) - min(stamps))}


def metadata(frames: FrameSet, backends: BackendChoice) -> Metadata:
    """``Metadata`` of the question: the frames' facts plus the reference's video fields and the backends."""
    from ..tools.reconstruct import MAX_FRAMES

    facts = frames.metadata()
    cameras = camera_names(frames)
    single = len(cameras) == 1
    fps = frames.fps if single and frames.fps > 0 else None
    videos = [_camera_video(frames, camera, fps) for camera in cameras] if frames.is_video else None
    source = facts.get("source") or (f"key frames of camera(s) {', '.join(cameras)}" if frames.is_video else None)
    return Metadata({**facts, "fps": fps, "videos": videos, "num_videos": len(videos or ()), "video_source": source,
                     "reconstruct_max_frames": MAX_FRAMES, "perception": dataclasses.asdict(backends)})


def _figure_of(item) -> Figure | None:
    """The matplotlib figure behind a Figure or Axes, else None."""
    if isinstance(item, Figure):
        return item
    figure = getattr(item, "figure", None)
    return figure if isinstance(figure, Figure) else None


SHOWABLE = ("PIL images, FrameImage, VisualFeedback, uint8 arrays (H, W[, 3]), float arrays in [0, 1], boolean "
            "masks or matplotlib figures")


def _flatten(items) -> list:
    """Positional arguments of show()/vlm: each one an item, or a flat list, tuple or iterator of items."""
    flat = []
    for item in items:
        if isinstance(item, (list, tuple)) or (hasattr(item, "__next__") and not isinstance(item, np.ndarray)):
            flat.extend(item)
        else:
            flat.append(item)
    return flat


def _array_problem(array: np.ndarray) -> str:
    """Why an array is not an image show() can display faithfully ("" when it is)."""
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        return f"an array of shape {array.shape} (an image is (H, W) or (H, W, 3))"
    if array.dtype == np.uint8 or array.dtype == bool:
        return ""
    if np.issubdtype(array.dtype, np.number):
        finite = array[np.isfinite(array)] if np.issubdtype(array.dtype, np.floating) else array
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        integral = np.issubdtype(array.dtype, np.integer)
        if (0.0 <= low and high <= 1.0) or (integral and 0.0 <= low and high <= 255.0):
            return ""
        return (f"a {array.dtype} array with values {low:.4g}..{high:.4g} (scale it into [0, 1] or convert it to "
                f"uint8 0..255, e.g. depth / depth.max())")
    return f"a {array.dtype} array"


def _check_showable(item, caller: str) -> None:
    """TypeError naming what ``item`` is and what ``caller`` takes, unless it is an image."""
    if isinstance(item, (Image.Image, PilDelegate)) or _figure_of(item) is not None:
        return
    if isinstance(item, np.ndarray):
        problem = _array_problem(item)
    else:
        problem = type(item).__name__
        if isinstance(item, str):
            problem += " (a caption goes in label='...')" if caller == "show()" else ""
    if problem:
        raise TypeError(f"{caller} got {problem}; expected {SHOWABLE}, or a flat list of them")


def _pixels(item) -> np.ndarray:
    """(H, W, 3) uint8 of anything show() accepts."""
    figure = _figure_of(item)
    if figure is not None:
        figure.canvas.draw()
        return to_rgb_array(np.asarray(figure.canvas.buffer_rgba()))
    return to_rgb_array(item)


def show(*images, label: str = "") -> None:
    """Attach images to what you see after this cell runs: show(img), show(a, b), show(InputImages[:3], label="...").

    Takes PIL images, FrameImage, VisualFeedback, uint8 arrays, float arrays in [0, 1], boolean masks and
    matplotlib figures, or a flat list of them; anything else raises TypeError (``show(img, "caption")`` too:
    the caption is ``label=``). With no arguments it shows the open matplotlib figures (so does ``plt.show()``).
    At most 250 images per question; each call prints the budget left. Long side reduced to 1024 px.
    """
    services = _bound()
    items = _flatten(images)
    for item in items:
        _check_showable(item, "show()")
    items = items or [plt.figure(number) for number in plt.get_fignums()]
    if not items:
        print("show(): nothing to show (pass images, or draw a matplotlib figure first)")
        return
    if services.quiet:
        return
    room = max(0, SHOW_BUDGET - services.shown)
    for item in items[:room]:
        services.emit_image(str(label), encode_png(_pixels(item), services.image_max_side))
    services.shown += min(room, len(items))
    if len(items) > room:
        print(f"[show() budget] EXHAUSTED - 0/{SHOW_BUDGET} images remaining: {len(items) - room} image(s) not shown")
    else:
        print(f"[show() budget] {SHOW_BUDGET - services.shown}/{SHOW_BUDGET} images remaining")


def _figure_label(figure: Figure) -> str:
    """A figure's suptitle or first axes title ("" if it has neither)."""
    titles = [figure.get_suptitle()] + [axes.get_title() for axes in figure.get_axes()]
    return next((title for title in titles if title), "")


def show_open_figures(*args, **kwargs) -> None:
    """``plt.show()`` in the kernel: show every open figure (labelled with its title), then close them."""
    for number in plt.get_fignums():
        figure = plt.figure(number)
        show(figure, label=_figure_label(figure))
    plt.close("all")


class Feedback(Shared):
    """``feedback``: ``feedback.show`` is show(); ``feedback.log_visual(visual_input, source="")`` takes the same
    images but sends them nowhere (this kernel keeps no separate visual log; use show() to look at an image)."""

    show = staticmethod(show)

    def log_visual(self, visual_input, source: str = "") -> None:
        """Accept images for a debugging log; nothing is shown to you or kept."""
        for item in _flatten([visual_input]):
            _check_showable(item, "feedback.log_visual()")

    def __repr__(self) -> str:
        return "feedback(show, log_visual)"


class LocateAnswer(str):
    """What vlm.locate returns: the grounding model's reply text, exactly (a str: test 'Not visible' in it, split it
    or regex it), plus what it says parsed: ``.visible``, ``.numbers`` (0-1000, as answered), and in PIXELS of the
    first image ``.point`` (x, y) and ``.box`` (x1, y1, x2, y2): point = 2 numbers or the centre of a 4-number box,
    None otherwise (parse the text yourself)."""

    def __new__(cls, text: str, width: int, height: int) -> "LocateAnswer":
        answer = super().__new__(cls, text)
        answer.grounding = read_grounding(text)
        answer.image_size = (int(width), int(height))
        return answer

    @property
    def visible(self) -> bool:
        """False when the reply says the thing is not visible."""
        return self.grounding.visible

    @property
    def numbers(self) -> list[float]:
        """Every number of the reply (0-1000 scale, x before y)."""
        return list(self.grounding.numbers)

    @property
    def point(self) -> tuple[float, float] | None:
        """(x, y) pixels, or None."""
        xy = self.grounding.point
        return None if xy is None else tuple(to_pixels(xy, *self.image_size).tolist())

    @property
    def box(self) -> tuple[float, float, float, float] | None:
        """(x1, y1, x2, y2) pixels, or None."""
        box = self.grounding.box
        return None if box is None else tuple(to_pixels(box, *self.image_size).tolist())


#: Images one call sends at most; more are thinned evenly, with a note.
VLM_MAX_IMAGES = {"locate": 8, "ask_with_thinking": 64}


class VLM(Shared):
    """``vlm``: a separate vision-language model conversation about the images you pass; it sees nothing else.

    ``visual_input``: one image (FrameImage such as InputImages[i], PIL image, VisualFeedback, uint8 array) or a
    flat list of them (locate sends at most 8, ask_with_thinking 64: more are thinned evenly, with a note).
    Each call prints its question and answer under [VLM Q | ...] / [VLM A | ...].
    """

    def __init__(self, host: HostClient) -> None:
        self._host = host

    def locate(self, visual_input, question: str) -> LocateAnswer:
        """Ask where something is. Coordinates are 0-1000 of the first image (x right, y down); ask for the form you
        want, e.g. "the center point as x y" or "the box as x1 y1 x2 y2, ONLY the numbers". The model answers exactly
        "Not visible" when the thing is absent or ambiguous. Returns its reply text (a LocateAnswer str): parse it,
        then ``tools.Geometry.normalized_to_pixel(nums, img.width, img.height)``; or use ``.point`` / ``.box``
        (pixels)."""
        images = self._images(visual_input, "locate")
        text = self._ask("locate", images, question)
        if not isinstance(text, str):  # a session recorded before replies were text answered [x, y]
            return text
        height, width = images[0].shape[:2]
        return LocateAnswer(text, width, height)

    def ask_with_thinking(self, visual_input, question: str) -> str:
        """Ask a question about the images (counting, colours, what is where, common sense); returns the answer text
        (the model may say "Cannot determine from the images.")."""
        return self._ask("ask_with_thinking", self._images(visual_input, "ask_with_thinking"), question)

    def _images(self, visual_input, method: str) -> list[np.ndarray]:
        if isinstance(visual_input, (str, bytes)):
            raise TypeError(f"vlm.{method} takes images first and the question second, got a str as the images")
        items = _flatten([visual_input])
        for item in items:
            if isinstance(item, (list, tuple)):
                raise TypeError(f"vlm.{method} takes one image or a flat list of images, got a nested list")
            _check_showable(item, f"vlm.{method}()")
        if not items:
            raise ValueError(f"vlm.{method}: pass at least one image")
        cap = VLM_MAX_IMAGES[method]
        if len(items) > cap:
            kept = evenly_spaced(len(items), cap)
            print(f"[vlm.{method}] {len(items)} images given, at most {cap} are sent: using positions {kept} "
                  f"(pass your own selection, e.g. InputImages[::k])", file=sys.stderr)
            items = [items[i] for i in kept]
        return [_pixels(item) for item in items]

    def _ask(self, method: str, images: list[np.ndarray], question: str):
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"the question must be a non-empty string, got {question!r}")
        print(f"[VLM Q | {method}] {question[:PRINT_CHARS]}", file=sys.stderr)
        arrays = {f"image_{i}": image for i, image in enumerate(images)}
        reply = self._host.call(f"vlm.{method}", {"question": question, "form": "text"}, arrays)
        result = reply.payload["result"]
        print(f"[VLM A | {method}] {str(result)[:PRINT_CHARS]}", file=sys.stderr)
        return result

    def __repr__(self) -> str:
        return "vlm(locate, ask_with_thinking)"


def _plain_answer(value):
    """Turn numpy scalars and nested lists/tuples into JSON-safe Python values, or raise TypeError."""
    if isinstance(value, np.ndarray) and value.ndim == 0 or isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("ReturnAnswer got an empty answer; pass the answer text or number")
    if isinstance(value, ANSWER_TYPES):
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain_answer(item) for item in value]
    raise TypeError(f"ReturnAnswer takes a str, int, float or bool (or a list of them), got {type(value).__name__}")


def _evidence_points(evidence) -> list[dict]:
    """``[{"label", "xyz"}]`` from ReturnAnswer's ``evidence``: a tool result with ``evidence()``, a dict or a list."""
    if evidence is None:
        return []
    if hasattr(evidence, "evidence"):  # tool results such as Distance and Box3D name their own points
        evidence = evidence.evidence()
    items = evidence.items() if isinstance(evidence, dict) else ((f"p{i}", p) for i, p in enumerate(evidence))
    points = []
    for label, xyz in items:
        xyz = np.asarray(xyz, dtype=float).reshape(-1)
        if xyz.shape != (3,) or not np.isfinite(xyz).all():
            raise ValueError(f"evidence point {label!r} must be 3 finite world coordinates (m), got {xyz.tolist()}")
        points.append({"label": str(label), "xyz": xyz.tolist()})
    return points


def ReturnAnswer(answer, unit: str | None = None, evidence=None) -> None:  # noqa: N802 - the name the agent uses
    """Submit the final answer to the question and stop.

    ``answer`` is a str, int, float or bool (a list of them where the question asks for several
    values); ``unit`` names the unit of a measured number, e.g. ``"m"`` or ``"deg"``; a bare number
    is taken in the unit the question names ("(in meters)", "in cm"). ``evidence``
    (optional) names the 3D world points the answer rests on, shown to the robot's operators: a
    tool result such as a Distance or Box3D, a dict ``{label: [x, y, z]}`` or a list of points.
    When the answer is accepted the cell stops right here. When it is refused (for example a number
    where the question offers choices) ``AnswerRefused`` is raised with the reason: fix it and call again.
    """
    if unit is not None and not isinstance(unit, str):
        raise TypeError(f"unit must be a string such as 'm', got {type(unit).__name__}")
    value = _plain_answer(answer)
    payload = {"value": value, "unit": unit, "points": _evidence_points(evidence)}
    reply = _bound().host.call(ANSWER_SERVICE, payload)
    if reply.payload.get("accepted"):
        raise AnswerAccepted()
    raise AnswerRefused(reply.payload.get("reason") or "the answer was refused")


#: Modules every cell starts with (``signal`` is scipy.signal; the standard library's signal cannot be imported).
PRELOADED_MODULES = {"np": np, "numpy": np, "math": math, "collections": collections, "itertools": itertools,
                     "functools": functools, "matplotlib": matplotlib, "plt": plt, "scipy": scipy, "ndimage": ndimage,
                     "spatial": spatial, "signal": signal, "optimize": optimize, "cv2": cv2}


def build_namespace(frames: FrameSet, host: HostClient, backends: BackendChoice) -> dict:
    """The globals a question's cells run in (``tools`` comes from spatialclaw_ros.tools, on ``backends``).

    Also makes ``tools``, ``tools.<Name>``, ``vlm`` and ``feedback`` importable (``sys.modules``), so ``import tools``
    and ``from tools.Reconstruct import Reconstruct`` work: the worker process serves this one question.
    """
    tools = build_toolbox(frames, host, backends)
    cameras = {f"InputImages_{k}": input_images(frames, camera) for k, camera in enumerate(camera_names(frames), 1)}
    namespace = {
        "__name__": "__cell__",
        "InputImages": input_images(frames),
        **cameras,
        "Metadata": metadata(frames, backends),
        "tools": tools,
        **{name: getattr(tools, name) for name in TOOL_CLASSES},  # SAM3 is tools.SAM3, as in the reference
        "show": show,
        "feedback": Feedback(),
        "vlm": VLM(host),
        "ReturnAnswer": ReturnAnswer,
        "AnswerRefused": AnswerRefused,
        **PRELOADED_MODULES,
    }
    sys.modules.update({"tools": tools, **{f"tools.{name}": getattr(tools, name) for name in TOOL_CLASSES},
                        "vlm": namespace["vlm"], "feedback": namespace["feedback"]})
    return namespace


#: Objects the system prompt documents, by the name the agent's code uses.
PROMPT_OBJECTS: dict[str, object] = {
    "InputImages": InputImages,
    "Metadata": Metadata,
    "show": show,
    "feedback": Feedback,
    "vlm": VLM,
    "ReturnAnswer": ReturnAnswer,
}
