"""A SpatialQuery goal checked and resolved against the node's parameters and TF, the goal policy, and
the mapping of agent outcomes to the action's ERROR_* codes (by constant name). No ROS import here.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from ..agent.result import ErrorCode
from ..tf_buffer import TransformBuffer
from .params import NodeParams

#: AgentResult.error_code -> the SpatialQuery.Result constant it is reported as.
AGENT_CODES = {
    ErrorCode.MODEL_UNREACHABLE: "ERROR_MODEL_UNREACHABLE",
    ErrorCode.MODEL_ERROR: "ERROR_MODEL",
    ErrorCode.NO_ANSWER: "ERROR_MODEL",
    ErrorCode.DEADLINE_EXCEEDED: "ERROR_DEADLINE",
    ErrorCode.CANCELLED: "ERROR_CANCELED",
    ErrorCode.KERNEL_FAILURE: "ERROR_KERNEL",
}


class GoalError(Exception):
    """A goal that cannot be answered; ``code`` names the SpatialQuery.Result ERROR_* constant."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Query:
    """A checked goal with the node's defaults filled in; ``end_s`` is on the node's clock (sim time aware)."""

    question: str
    choices: tuple[str, ...]
    cameras: tuple[str, ...] | None  # camera names; None = all configured
    window_s: float
    max_frames: int
    end_s: float
    target_frame: str
    max_steps: int | None  # None = the agent config's
    timeout_s: float | None  # None = the agent config's


def agent_code(error_code: str) -> str:
    """The ERROR_* name an AgentResult.error_code is reported as (ERROR_INTERNAL for anything unexpected)."""
    return AGENT_CODES.get(error_code, "ERROR_INTERNAL")


def make_query(goal, params: NodeParams, now_s: float, tf: TransformBuffer) -> Query:
    """Check ``goal`` (a SpatialQuery.Goal) and fill in defaults; GoalError with the code of the first problem."""
    question = str(goal.question).strip()
    if not question:
        raise GoalError("ERROR_EMPTY_QUESTION", "the goal's question is empty")
    choices = tuple(str(choice).strip() for choice in goal.choices)
    if any(not choice for choice in choices):
        raise GoalError("ERROR_EMPTY_QUESTION", f"the goal's choices include an empty one: {list(goal.choices)}")
    cameras = None
    if goal.cameras:
        resolved = [params.camera(str(key).strip()) for key in goal.cameras]
        unknown = [key for key, camera in zip(goal.cameras, resolved) if camera is None]
        if unknown:
            listing = ", ".join(f"{c.name} ({c.image_topic})" for c in params.cameras)
            raise GoalError("ERROR_UNKNOWN_CAMERA", f"unknown camera(s) {unknown}; configured cameras: {listing}")
        cameras = tuple(dict.fromkeys(camera.name for camera in resolved))
    target = str(goal.target_frame).strip().lstrip("/") or params.world_frame
    if target != params.world_frame and target not in tf.frames():
        known = ", ".join(tf.frames()) or "none (no TF received yet)"
        raise GoalError("ERROR_UNKNOWN_TARGET_FRAME", f"target_frame {target!r} is not in the TF tree; known frames: {known}")
    # No code means "bad argument": a window that cannot hold frames is ERROR_NO_FRAMES, a bad timeout ERROR_DEADLINE.
    for name, code in (("window_sec", "ERROR_NO_FRAMES"), ("timeout_sec", "ERROR_DEADLINE")):
        value = float(getattr(goal, name))
        if not math.isfinite(value) or value < 0:
            raise GoalError(code, f"{name} must be a finite number >= 0 (0 = the node's default), got {value}")
    stamp_s = int(goal.stamp.sec) + int(goal.stamp.nanosec) * 1e-9
    return Query(
        question=question, choices=choices, cameras=cameras,
        window_s=float(goal.window_sec) or params.window_s,
        max_frames=int(goal.max_frames) or params.max_frames,
        end_s=stamp_s if stamp_s > 0 else now_s, target_frame=target,
        max_steps=int(goal.max_steps) or params.max_steps or None,
        timeout_s=float(goal.timeout_sec) or params.timeout_s or None,
    )


class GoalGate:
    """Admits goals under the goal policy: one runs; under 'queue' up to ``queue_size`` more wait. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0  # running + waiting

    def admit(self, policy: str, queue_size: int) -> bool:
        """Take a place for a new goal, or False when the policy refuses it (the node is busy)."""
        with self._lock:
            limit = 1 + (queue_size if policy == "queue" else 0)
            if self._active >= limit:
                return False
            self._active += 1
            return True

    def release(self) -> None:
        """Give back the place of a goal that finished."""
        with self._lock:
            if self._active == 0:
                raise RuntimeError("GoalGate.release() without a matching admit()")
            self._active -= 1

    @property
    def active(self) -> int:
        """Goals running or waiting."""
        with self._lock:
            return self._active
