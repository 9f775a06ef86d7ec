"""Helpers for the kernel tests: small frames and real host handlers that keep a log of requests."""

from __future__ import annotations

import numpy as np

from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.kernel.host import HostError, HostReply, HostRequest


def make_frames() -> FrameSet:
    """Three 48x64 frames with absolute indices 10, 20, 30 and a distinct grey level each."""
    return FrameSet(
        frames=[Frame(index=10 * (i + 1), rgb=np.full((48, 64, 3), 50 * (i + 1), np.uint8), stamp=0.5 * i,
                      camera="front") for i in range(3)],
        fps=2.0,
    )


class HostLog:
    """Real host handlers (vlm.locate, vlm.ask_with_thinking, answer) that record every request."""

    def __init__(self) -> None:
        self.requests: list[HostRequest] = []

    def locate(self, request: HostRequest) -> HostReply:
        self.requests.append(request)
        if "offline" in request.payload["question"]:
            raise HostError("the grounding model is offline")
        if "ghost" in request.payload["question"]:
            return HostReply({"result": "Not visible"})
        return HostReply({"result": [250, 750]})

    def ask(self, request: HostRequest) -> HostReply:
        self.requests.append(request)
        shapes = [list(array.shape) for array in request.arrays.values()]
        return HostReply({"result": f"{len(shapes)} image(s) {shapes}: {request.payload['question']}"})

    def answer(self, request: HostRequest) -> HostReply:
        self.requests.append(request)
        value = request.payload["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return HostReply({"accepted": False, "reason": f"the question asks for a number, got {value!r}"})
        return HostReply({"accepted": True, "reason": "",
                          "answer": {"value": value, "unit": request.payload["unit"]}})

    def handlers(self) -> dict:
        return {"vlm.locate": self.locate, "vlm.ask_with_thinking": self.ask, "answer": self.answer}
