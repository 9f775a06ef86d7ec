"""Host services behind the kernel's ``vlm`` object: grounding and common-sense looks by the "vlm" role.

The kernel holds no API key; its ``vlm.locate`` and ``vlm.ask_with_thinking`` calls arrive here
as host requests, are answered by a separate model conversation and recorded in the trace.
"""

from __future__ import annotations

import itertools
import re
import threading
from typing import Callable

from ..cancel import Cancelled, CancelToken
from ..imaging import encode_png
from ..kernel.host import HostError, HostHandler, HostReply, HostRequest
from ..llm.client import ChatModel, ChatReply, ModelError
from ..llm.messages import image_part, system_message, text_part, user_message
from ..session_log.log import SessionLog
from .parsing import strip_thinking

NOT_VISIBLE = "Not visible"
LOCATE_SYSTEM = """\
You point at things in images. Answer with the point only, as x,y: integers from 0 to 1000 where
0,0 is the top-left and 1000,1000 the bottom-right corner of the FIRST image. If the thing is not
in the image, answer exactly: Not visible"""
ASK_SYSTEM = """\
Look carefully at the images and answer the question. Reason briefly about what you see, then end
with a line "Answer: ..." """
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_POINT_PATTERNS = (
    re.compile(rf"x\s*[:=]\s*{_NUMBER}\W+y\s*[:=]\s*{_NUMBER}", re.IGNORECASE),
    re.compile(rf"{_NUMBER}\s*,\s*{_NUMBER}"),
)
_NOT_VISIBLE = re.compile(r"not\s+visible", re.IGNORECASE)


def parse_point(text: str) -> list[float] | str:
    """``[x, y]`` (0-1000) or ``"Not visible"`` from a locate answer; HostError when it is neither."""
    answer = strip_thinking(text)
    for pattern in _POINT_PATTERNS:
        match = pattern.search(answer)
        if match:
            x, y = float(match.group(1)), float(match.group(2))
            if not (0 <= x <= 1000 and 0 <= y <= 1000):
                raise HostError(f"vlm.locate: the model answered a point outside 0-1000: {x:g},{y:g}")
            return [x, y]
    if _NOT_VISIBLE.search(answer):
        return NOT_VISIBLE
    raise HostError(f"vlm.locate: the model answered neither x,y nor '{NOT_VISIBLE}': {answer[:200]!r}")


def _request_images(request: HostRequest) -> list:
    """The request's images ``image_0..n`` in index order."""
    keys = sorted((key for key in request.arrays if re.fullmatch(r"image_\d+", key)), key=lambda k: int(k[6:]))
    if not keys:
        raise HostError(f"{request.service}: no images were given")
    return [request.arrays[key] for key in keys]


class VlmService:
    """Handlers for "vlm.locate" and "vlm.ask_with_thinking"; ``step`` names the step calls are logged under."""

    def __init__(self, model: ChatModel, log: SessionLog, cancel: CancelToken, *, image_max_side: int,
                 on_reply: Callable[[ChatReply], None]) -> None:
        self.model = model
        self.log = log
        self.cancel = cancel
        self.image_max_side = image_max_side
        self.on_reply = on_reply
        self.step = 0
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def handlers(self) -> dict[str, HostHandler]:
        """Service name -> handler, for KernelPool.session."""
        return {"vlm.locate": self.locate, "vlm.ask_with_thinking": self.ask_with_thinking}

    def locate(self, request: HostRequest) -> HostReply:
        """Ask where the thing in ``payload["question"]`` is; reply ``{"result": [x, y] | "Not visible"}``."""
        return self._call(request, LOCATE_SYSTEM, parse_point)

    def ask_with_thinking(self, request: HostRequest) -> HostReply:
        """Ask a free question about the images; reply ``{"result": answer text without thinking}``."""
        return self._call(request, ASK_SYSTEM, strip_thinking)

    def _call(self, request: HostRequest, system: str, interpret: Callable[[str], object]) -> HostReply:
        question = str(request.payload.get("question", "")).strip()
        if not question:
            raise HostError(f"{request.service}: the question is empty")
        with self._lock:
            number = next(self._counter)
        step = self.step
        pngs = [encode_png(image, max_side=self.image_max_side) for image in _request_images(request)]
        files = [{"label": f"{request.service} image {i}",
                  "file": self.log.save_image(f"step{step}_vlm{number}_{i}", png)} for i, png in enumerate(pngs)]
        record = {"step": step, "service": request.service, "question": question, "images": files}
        messages = [system_message(system), user_message([text_part(question), *(image_part(png) for png in pngs)])]
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
