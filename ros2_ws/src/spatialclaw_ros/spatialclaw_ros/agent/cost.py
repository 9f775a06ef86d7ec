"""What a question's model calls cost: bytes sent, image and text tokens (estimated) and the endpoint's usage.

Every call of a question (planner, main, vlm) goes through one MeteredModel, which records it in the
question's CostLedger and writes a ``call_cost`` event to the trace. Main calls come measured by the
History that rendered them (it knows every image's tokens and what the previous call shared); the
others are measured from their messages.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field

from ..cancel import CancelToken
from ..imaging import image_size
from ..llm.client import ChatModel, ChatReply
from ..llm.messages import content_parts, image_of_url, json_bytes
from ..llm.vision import VisionEncoder
from ..session_log.log import SessionLog
from .context import CallContext, text_tokens


@dataclass(frozen=True)
class Measured:
    """A call's messages as sent: JSON bytes, estimated text and image tokens, images, and (main calls) the
    share of the estimate identical to the previous main call's prompt."""

    bytes_sent: int
    text_tokens: int
    image_tokens: int
    images: int
    prefix_share: float | None = None

    @classmethod
    def of_context(cls, call: CallContext) -> "Measured":
        """The measure of a main call that History rendered."""
        return cls(call.bytes_sent, call.text_tokens, call.image_tokens, call.images_sent, call.prefix_share)


def measure_messages(messages: list[dict], encoder: VisionEncoder) -> Measured:
    """Bytes and estimated tokens of ``messages``; image tokens from each image's own size."""
    text = image = images = 0
    for message in messages:
        for part in content_parts(message):
            if part.get("type") == "image_url":
                image += encoder.tokens(*image_size(image_of_url(part["image_url"]["url"])))
                images += 1
            else:
                text += text_tokens(part.get("text", ""))
    return Measured(json_bytes(messages), text, image, images)


@dataclass
class CallCost:
    """One model call: what was sent (bytes over every attempt, estimated tokens) and what the endpoint
    reported in ``usage``."""

    role: str
    step: int
    bytes_sent: int
    text_tokens: int
    image_tokens: int
    images: int
    prompt_tokens: int  # reported by the endpoint (0 when it reports none)
    completion_tokens: int  # reported by the endpoint
    attempts: int
    prefix_share: float | None  # main calls: share of the prompt identical to the previous main call's


@dataclass
class CostTotals:
    """Sums over calls: count, bytes sent, estimated text and image tokens, reported prompt and completion tokens."""

    calls: int = 0
    bytes_sent: int = 0
    text_tokens: int = 0
    image_tokens: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, call: CallCost) -> None:
        """Count one call."""
        self.calls += 1
        self.bytes_sent += call.bytes_sent
        self.text_tokens += call.text_tokens
        self.image_tokens += call.image_tokens
        self.prompt_tokens += call.prompt_tokens
        self.completion_tokens += call.completion_tokens


@dataclass
class QuestionCost(CostTotals):
    """A question's cost so far: totals over every call, the same per role, and the mean share of each main
    call's prompt that the previous main call had already sent (what a prefix cache can reuse)."""

    prefix_share_mean: float = 0.0
    by_role: dict[str, CostTotals] = field(default_factory=dict)


class CostLedger:
    """The calls of one question, summed; thread-safe (vlm calls arrive on host-call threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cost = QuestionCost()
        self._shares: list[float] = []

    def record(self, call: CallCost) -> None:
        """Add ``call`` to the totals."""
        with self._lock:
            self._cost.add(call)
            self._cost.by_role.setdefault(call.role, CostTotals()).add(call)
            if call.role == "main" and self._cost.by_role["main"].calls > 1 and call.prefix_share is not None:
                self._shares.append(call.prefix_share)
                self._cost.prefix_share_mean = sum(self._shares) / len(self._shares)

    def totals(self) -> QuestionCost:
        """A copy of the totals so far."""
        with self._lock:
            return dataclasses.replace(self._cost, by_role={role: dataclasses.replace(totals)
                                                            for role, totals in self._cost.by_role.items()})


class MeteredModel:
    """The model as a question uses it: each call measured, then recorded in the ledger and the trace.

    ``chat`` has ChatModel's signature, so the vlm service calls it like the model; its calls are recorded
    under ``step``. The loop measures its own calls and ``record``s them after logging the reply.
    """

    def __init__(self, model: ChatModel, ledger: CostLedger, log: SessionLog, encoder: VisionEncoder) -> None:
        self.model = model
        self.ledger = ledger
        self.log = log
        self.encoder = encoder
        self.step = 0

    def chat(self, role: str, messages: list[dict], *, cancel: CancelToken | None = None) -> ChatReply:
        """``ChatModel.chat``, measured and recorded."""
        measured = measure_messages(messages, self.encoder)
        reply = self.model.chat(role, messages, cancel=cancel)
        self.record(role, self.step, measured, reply)
        return reply

    def record(self, role: str, step: int, measured: Measured, reply: ChatReply) -> None:
        """Add a call to the ledger and write its ``call_cost`` event (bytes count every attempt)."""
        call = CallCost(role=role, step=step, bytes_sent=measured.bytes_sent * reply.attempts,
                        text_tokens=measured.text_tokens, image_tokens=measured.image_tokens, images=measured.images,
                        prompt_tokens=reply.usage.prompt_tokens, completion_tokens=reply.usage.completion_tokens,
                        attempts=reply.attempts, prefix_share=measured.prefix_share)
        self.ledger.record(call)
        self.log.event("call_cost", **dataclasses.asdict(call))
