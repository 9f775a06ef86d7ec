"""The names the agent's code sees in the kernel: frames, metadata, show(), vlm, ReturnAnswer.

This module runs inside the kernel worker. ``show`` and ``ReturnAnswer`` reach the parent through
the services the worker binds once per process (one process serves exactly one question). The
docstrings and signatures here are what the system prompt documents (see ``PROMPT_OBJECTS``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import cv2
import matplotlib.pyplot as plt
import numpy as np
import scipy
from matplotlib.figure import Figure
from PIL import Image

from ..frames import FrameSet
from ..perception.backends import BackendChoice
from ..imaging import encode_png, frame_image, to_rgb_array
from .host import ANSWER_SERVICE, HostClient

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


_services: KernelServices | None = None


def bind_services(services: KernelServices) -> None:
    """Connect show() and ReturnAnswer to this worker's channel (called once by the worker)."""
    global _services
    _services = services


def _bound() -> KernelServices:
    if _services is None:
        raise RuntimeError("show() and ReturnAnswer() work only inside a kernel session")
    return _services


class InputImages(list):
    """The question's frames as PIL RGB images, in time order (a list).

    Each image carries ``.frame_index`` (the absolute index every tool takes), ``.stamp`` (seconds)
    and ``.camera``. ``InputImages.frame_indices`` lists the absolute indices; slicing returns
    ``InputImages`` and keeps them, e.g. ``InputImages[2:4].frame_indices``. Use
    ``InputImages.frame(i)`` to get the image whose absolute index is ``i``.
    """

    @property
    def frame_indices(self) -> list[int]:
        """Absolute frame indices of the images, in list order."""
        return [image.frame_index for image in self]

    def frame(self, frame_index: int) -> Image.Image:
        """The image with absolute index ``frame_index``; KeyError lists the valid indices."""
        for image in self:
            if image.frame_index == frame_index:
                return image
        raise KeyError(f"no frame with absolute index {frame_index}; valid indices: {self.frame_indices}")

    def __getitem__(self, item):
        picked = super().__getitem__(item)
        return InputImages(picked) if isinstance(item, slice) else picked

    def __repr__(self) -> str:
        if not self:
            return "InputImages([])"
        sizes = sorted({f"{image.width}x{image.height}" for image in self})
        return f"InputImages({len(self)} images, frame_indices={self.frame_indices}, size {', '.join(sizes)})"


def input_images(frames: FrameSet) -> InputImages:
    """Build ``InputImages`` from the question's frames."""
    return InputImages(frame_image(frame) for frame in frames.frames)


class Metadata(dict):
    """Facts about the question's frames, readable as keys or attributes (``Metadata.fps``).

    Keys: is_video, fps, total_frames, duration_sec, num_images, frame_indices, cameras,
    world_frame, has_depth, has_poses, has_intrinsics (plus any extra facts of this question).
    """

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"Metadata has no '{name}'; its keys are {sorted(self)}") from None


def _figure_of(item) -> Figure | None:
    """The matplotlib figure behind a Figure or Axes, else None."""
    if isinstance(item, Figure):
        return item
    figure = getattr(item, "figure", None)
    return figure if isinstance(figure, Figure) else None


def _flatten(items) -> list:
    flat = []
    for item in items:
        if isinstance(item, (list, tuple)):
            flat.extend(item)
        else:
            flat.append(item)
    return flat


def _pixels(item) -> np.ndarray:
    """(H, W, 3) uint8 of anything show() accepts."""
    figure = _figure_of(item)
    if figure is not None:
        figure.canvas.draw()
        return to_rgb_array(np.asarray(figure.canvas.buffer_rgba()))
    return to_rgb_array(item)


def show(*images, label: str = "") -> None:
    """Attach images to what you see after this cell runs.

    Accepts PIL images, numpy arrays (H x W x 3 uint8, float in [0, 1], gray or boolean masks),
    matplotlib figures or axes, and lists of these (``show(InputImages[:3])``). With no arguments
    it shows every open matplotlib figure, like ``plt.show()``. The long side is reduced to the
    configured limit (1024 px by default). ``label`` is a short caption shown with each image.
    """
    services = _bound()
    items = _flatten(images) or [plt.figure(number) for number in plt.get_fignums()]
    if services.quiet:
        return
    for item in items:
        services.emit_image(str(label), encode_png(_pixels(item), services.image_max_side))


def show_open_figures(*args, **kwargs) -> None:
    """``plt.show()`` in the kernel: show every open figure, then close them."""
    numbers = plt.get_fignums()
    if numbers:
        show([plt.figure(number) for number in numbers])
    plt.close("all")


class VLM:
    """A separate vision-language model conversation about images you pass (``vlm`` in the namespace).

    ``images`` is one image or a list of them (PIL images such as ``InputImages[i]``, or arrays).
    Each call is independent and sees only the images and question given.
    """

    def __init__(self, host: HostClient) -> None:
        self._host = host

    def locate(self, images, question: str) -> list | str:
        """Ground a described thing in the image.

        Returns ``[x, y]`` in 0-1000 normalised image coordinates (x right, y down), or the
        string ``"Not visible"``. Convert to pixels with
        ``tools.Geometry.normalized_to_pixel(xy, width, height)``.
        """
        return self._ask("vlm.locate", images, question)

    def ask_with_thinking(self, images, question: str) -> str:
        """Ask a common-sense question about the images; returns the model's answer as text."""
        return self._ask("vlm.ask_with_thinking", images, question)

    def _ask(self, service: str, images, question: str):
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"the question must be a non-empty string, got {question!r}")
        items = _flatten([images])
        if not items:
            raise ValueError("pass at least one image")
        arrays = {f"image_{i}": to_rgb_array(item) for i, item in enumerate(items)}
        reply = self._host.call(service, {"question": question}, arrays)
        return reply.payload["result"]

    def __repr__(self) -> str:
        return "vlm(locate, ask_with_thinking)"


def _plain_answer(value):
    """Turn numpy scalars and nested lists/tuples into JSON-safe Python values, or raise TypeError."""
    if isinstance(value, np.ndarray) and value.ndim == 0 or isinstance(value, np.generic):
        value = value.item()
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


def build_namespace(frames: FrameSet, host: HostClient, backends: BackendChoice) -> dict:
    """The globals a question's cells run in (``tools`` comes from spatialclaw_ros.tools, on ``backends``)."""
    from ..tools import build_toolbox

    return {
        "__name__": "__cell__",
        "InputImages": input_images(frames),
        "Metadata": Metadata({**frames.metadata(), "perception": dataclasses.asdict(backends)}),
        "tools": build_toolbox(frames, host, backends),
        "show": show,
        "vlm": VLM(host),
        "ReturnAnswer": ReturnAnswer,
        "AnswerRefused": AnswerRefused,
        "np": np,
        "numpy": np,
        "scipy": scipy,
        "cv2": cv2,
        "math": math,
        "plt": plt,
    }


#: Objects the system prompt documents, by the name the agent's code uses.
PROMPT_OBJECTS: dict[str, object] = {
    "InputImages": InputImages,
    "Metadata": Metadata,
    "show": show,
    "vlm": VLM,
    "ReturnAnswer": ReturnAnswer,
}
