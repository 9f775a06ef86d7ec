"""What a question's run reports: the final AgentResult, progress AgentEvents and the error codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..answers import Answer
from ..kernel.results import ShownImage
from ..llm.client import Usage
from ..session_log.encoding import jsonable
from .context import ContextReport
from .cost import QuestionCost

ANSWERED = "answered"
FAILED = "failed"
CANCELLED = "cancelled"


class ErrorCode:
    """``AgentResult.error_code`` values (plain strings, stable for the CLI and the ROS action)."""

    NONE = ""
    MODEL_UNREACHABLE = "model_unreachable"  # the endpoint could not be reached or timed out
    MODEL_ERROR = "model_error"  # the endpoint answered an HTTP error, garbage or nothing
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CANCELLED = "cancelled"
    KERNEL_FAILURE = "kernel_failure"  # the kernel died and could not be restarted
    INVALID_INPUT = "invalid_input"
    NO_ANSWER = "no_answer"  # steps ran out and the final answer call gave no acceptable answer
    INTERNAL_ERROR = "internal_error"  # a bug: logged in the session, then the exception propagates


@dataclass
class AgentEvent:
    """Progress of a question: "planning", "step" (after each step), "answering" (final call) or "done".

    ``bytes_sent``, ``image_tokens`` and ``text_tokens`` are totals over the question's model calls so far
    (the tokens estimated; QuestionCost has the endpoint's own counts).
    """

    stage: str
    step: int
    max_steps: int
    code: str = ""
    output_summary: str = ""
    elapsed_s: float = 0.0
    bytes_sent: int = 0
    image_tokens: int = 0
    text_tokens: int = 0


@dataclass
class AgentResult:
    """The outcome of one question.

    ``low_confidence`` marks an answer from the answer-only call made after the steps ran out. ``log_error``
    says what of the session log could not be written ("" when it is complete); the answer stands either way.
    """

    status: str  # ANSWERED, FAILED or CANCELLED
    answer: Answer | None
    low_confidence: bool
    steps: int
    error_code: str
    error_message: str
    session_dir: Path
    elapsed_s: float
    usage: Usage = field(default_factory=Usage)
    context: ContextReport = field(default_factory=ContextReport)
    cost: QuestionCost = field(default_factory=QuestionCost)
    log_error: str = ""
    shown_images: list[ShownImage] = field(default_factory=list)  # what the cells passed to show(), in order

    def to_dict(self) -> dict:
        """Plain-typed summary (``result.json``, ``spatialclaw ask --json``): answer text, value and unit flattened;
        written through ``session_log.encoding``, which bounds strings and nulls non-finite numbers."""
        answer = self.answer
        return {
            "answer": answer.text if answer else None,
            "value": answer.value if answer else None,
            "unit": answer.unit if answer else None,
            "steps": self.steps,
            "low_confidence": self.low_confidence,
            "session_dir": str(self.session_dir),
            "status": self.status,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "log_error": self.log_error,
            "elapsed_s": round(self.elapsed_s, 3),
            "usage": jsonable(self.usage),
            "context": jsonable(self.context),
            "cost": jsonable(self.cost),
            "answer_detail": answer.to_dict() if answer else None,
        }
