"""Host services behind the kernel's ``vlm`` object: grounding and common-sense looks by the "vlm" role.

The kernel holds no API key; its ``vlm.locate`` and ``vlm.ask_with_thinking`` calls arrive here as host
requests, are answered by a separate model conversation and recorded in the trace. This is where the
calls are bounded (``agent.vlm``: count per question and per cell, question length, images), since code in
the kernel can bypass anything the kernel side checks.

Request payload ``{"question": str, "form": "text" | "point"}``, arrays ``image_0..n`` (H, W, 3) uint8.
Reply ``{"result": ...}``: with form "text" (what the cells' ``vlm.*`` use) the model's answer verbatim, thinking
removed; with form "point" (``vlm.locate`` only; the default, for perception backends that ask for a point)
``[x, y]`` on the 0-1000 scale (a box answer gives its centre) or ``"Not visible"``.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import Counter
from typing import Callable

import numpy as np

from ..cancel import Cancelled, CancelToken
from ..config import VlmLimits
from ..grounding import NOT_VISIBLE, read_grounding
from ..imaging import encode_png
from ..kernel.host import HostError, HostHandler, HostReply, HostRequest
from ..llm.client import ChatModel, ChatReply, ModelError
from ..llm.messages import image_part, system_message, text_part, user_message
from ..session_log.log import SessionLog
from .parsing import strip_thinking

LOCATE_SYSTEM = """\
You locate things in images for a program. Coordinates are on a 0-1000 scale of the FIRST image: x runs
from its left edge (0) to its right edge (1000), y from its top (0) to its bottom (1000). Answer in exactly
the form the request asks for (for example a point as "x y" or a box as "x1 y1 x2 y2"), numbers only unless
asked otherwise. First check that the thing is clearly in the image: if it is absent, or several things fit
and the request does not say which one, answer exactly: Not visible
(optionally followed by one short line saying why). Refusing is better than pointing near the thing."""
ASK_SYSTEM = """\
Look carefully at the images and answer the question from what they show. Reason briefly, then end with a
line "Answer: ...". If the images do not show enough to answer, say: Cannot determine from the images."""
#: Appended to a "point" form question, so the model answers in the form that is parsed.
POINT_REQUEST = "Answer with its center point as: x y"
FORMS = ("text", "point")
_IMAGE_KEY = re.compile(r"image_(\d+)")


def parse_point(text: str) -> list[float] | str:
    """``[x, y]`` (0-1000; the centre of a box answer) or ``"Not visible"`` from a locate answer; HostError when it
    is neither or lies outside the image."""
    answer = strip_thinking(text)
    grounding = read_grounding(answer)
    if not grounding.visible:
        return NOT_VISIBLE
    if grounding.point is None:
        raise HostError(f"vlm.locate: the model answered neither a point, a box nor '{NOT_VISIBLE}': {answer[:200]!r}")
    x, y = grounding.point
    if not (0 <= x <= 1000 and 0 <= y <= 1000):
        raise HostError(f"vlm.locate: the model answered a point outside 0-1000: {x:g},{y:g}")
    return [x, y]


def _request_images(request: HostRequest) -> list[np.ndarray]:
    """The request's images ``image_0..n`` in index order."""
    keys = sorted((key for key in request.arrays if _IMAGE_KEY.fullmatch(key)), key=lambda k: int(k[6:]))
    if not keys:
        raise HostError(f"{request.service}: no images were given")
    return [request.arrays[key] for key in keys]


class VlmService:
    """Handlers for "vlm.locate" and "vlm.ask_with_thinking"; ``step`` names the step (= cell) calls are logged and
    counted under."""

    def __init__(self, model: ChatModel, log: SessionLog, cancel: CancelToken, *, image_max_side: int,
                 on_reply: Callable[[ChatReply], None], limits: VlmLimits = VlmLimits()) -> None:
        self.model = model
        self.log = log
        self.cancel = cancel
        self.image_max_side = image_max_side
        self.on_reply = on_reply
        self.limits = limits
        self.step = 0
        self._counter = itertools.count(1)
        self._per_step: Counter[int] = Counter()
        self._calls = 0
        self._lock = threading.Lock()

    def handlers(self) -> dict[str, HostHandler]:
        """Service name -> handler, for KernelPool.session."""
        return {"vlm.locate": self.locate, "vlm.ask_with_thinking": self.ask_with_thinking}

    def locate(self, request: HostRequest) -> HostReply:
        """Ask where the thing in ``payload["question"]`` is; reply with the answer text or a parsed point (see
        the module docstring)."""
        form = request.payload.get("form", "point")
        if form not in FORMS:
            raise HostError(f"vlm.locate: form must be one of {FORMS}, got {form!r}")
        if form == "text":
            return self._call(request, LOCATE_SYSTEM, "", strip_thinking)
        return self._call(request, LOCATE_SYSTEM, POINT_REQUEST, parse_point)

    def ask_with_thinking(self, request: HostRequest) -> HostReply:
        """Ask a free question about the images; reply ``{"result": answer text without thinking}``."""
        return self._call(request, ASK_SYSTEM, "", strip_thinking)

    def _admit(self, request: HostRequest, question: str, images: list[np.ndarray]) -> int:
        """Check the call against ``limits`` and count it; returns its number. HostError naming the limit."""
        limits, service = self.limits, request.service
        if len(question) > limits.question_chars:
            raise HostError(f"{service} refused: the question has {len(question)} characters, at most "
                            f"{limits.question_chars} (setting agent.vlm.question_chars); ask briefly")
        if len(images) > limits.images_per_call:
            raise HostError(f"{service} refused: {len(images)} images, at most {limits.images_per_call} per call "
                            f"(setting agent.vlm.images_per_call); pass a selection such as InputImages[::2]")
        for n, image in enumerate(images):
            if image.ndim not in (2, 3) or max(image.shape[:2]) > limits.image_side_px:
                raise HostError(f"{service} refused: image {n} has shape {tuple(image.shape)}, at most "
                                f"{limits.image_side_px} px on a side (setting agent.vlm.image_side_px); resize it, "
                                f"e.g. img.resize((img.width // 4, img.height // 4))")
        with self._lock:
            if self._calls >= limits.calls_per_question:
                raise HostError(f"{service} refused: this question has made its {limits.calls_per_question} vlm "
                                f"calls (setting agent.vlm.calls_per_question); answer from what you have")
            if self._per_step[self.step] >= limits.calls_per_cell:
                raise HostError(f"{service} refused: this cell has made {limits.calls_per_cell} vlm calls (setting "
                                f"agent.vlm.calls_per_cell); use the answers you have, or go on in the next cell")
            self._calls += 1
            self._per_step[self.step] += 1
            return next(self._counter)

    def _call(self, request: HostRequest, system: str, suffix: str, interpret: Callable[[str], object]) -> HostReply:
        question = str(request.payload.get("question", "")).strip()
        if not question:
            raise HostError(f"{request.service}: the question is empty")
        images = _request_images(request)
        number = self._admit(request, question, images)
        step = self.step
        pngs = [encode_png(image, max_side=self.image_max_side) for image in images]
        files = [{"label": f"{request.service} image {i}",
                  "file": self.log.save_image(f"step{step}_vlm{number}_{i}", png)} for i, png in enumerate(pngs)]
        record = {"step": step, "service": request.service, "question": question, "images": files}
        asked = f"{question}\n{suffix}" if suffix else question
        messages = [system_message(system), user_message([text_part(asked), *(image_part(png) for png in pngs)])]
        try:
            reply = self.model.chat("vlm", messages, cancel=self.cancel)
        except ModelError as error:
            self.log.event("vlm", **record, error=str(error))
            raise HostError(f"{request.service} failed: {error}") from None
        except Cancelled:
            self.log.event("vlm", **record, error="cancelled")
            raise HostError(f"{request.service}: the question was cancelled") from None
        self.on_reply(reply)
        details = {"text": reply.text, "latency_s": reply.latency_s, "usage": reply.usage, "attempts": reply.attempts}
        try:
            result = interpret(reply.text)
        except HostError as error:
            self.log.event("vlm", **record, **details, error=str(error))
            raise
        self.log.event("vlm", **record, **details, result=result)
        return HostReply(payload={"result": result})
