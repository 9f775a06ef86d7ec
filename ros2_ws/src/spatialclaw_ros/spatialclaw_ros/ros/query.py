"""A SpatialQuery goal checked and resolved against the node's settings and TF, the goal policy, and the one
table of error codes: the agent's (``AgentResult.error_code``) and the node's own for goals the agent never saw,
each with the SpatialQuery.Result constant it is reported as (by name). No ROS import here.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from ..agent.result import ErrorCode
from ..tf_buffer import TransformSource
from .params import NodeSettings


class GoalCode:
    """Error codes of goals that end in the node before the agent runs (written to their ``result.json`` like the
    agent's own codes)."""

    EMPTY_QUESTION = "empty_question"
    UNKNOWN_CAMERA = "unknown_camera"
    UNKNOWN_TARGET_FRAME = "unknown_target_frame"
    NO_FRAMES = "no_frames"
    BUSY = "busy"
    TF = "tf_error"


#: Every error code -> the SpatialQuery.Result constant it is reported as.
ACTION_CODES = {
    ErrorCode.NONE: "ERROR_NONE",
    GoalCode.EMPTY_QUESTION: "ERROR_EMPTY_QUESTION",
    GoalCode.UNKNOWN_CAMERA: "ERROR_UNKNOWN_CAMERA",
    GoalCode.UNKNOWN_TARGET_FRAME: "ERROR_UNKNOWN_TARGET_FRAME",
    GoalCode.NO_FRAMES: "ERROR_NO_FRAMES",
    GoalCode.BUSY: "ERROR_BUSY",
    ErrorCode.MODEL_UNREACHABLE: "ERROR_MODEL_UNREACHABLE",
    ErrorCode.MODEL_ERROR: "ERROR_MODEL",
    ErrorCode.NO_ANSWER: "ERROR_MODEL",
    ErrorCode.DEADLINE_EXCEEDED: "ERROR_DEADLINE",
    ErrorCode.CANCELLED: "ERROR_CANCELED",
    ErrorCode.KERNEL_FAILURE: "ERROR_KERNEL",
    GoalCode.TF: "ERROR_TF",
    ErrorCode.INVALID_INPUT: "ERROR_CONFIG",  # the node checks the goal's own fields: what is left is its settings
    ErrorCode.INTERNAL_ERROR: "ERROR_INTERNAL",
}


def action_code(error_code: str) -> str:
    """The SpatialQuery.Result constant an error code is reported as (ERROR_INTERNAL for an unknown one)."""
    return ACTION_CODES.get(error_code, "ERROR_INTERNAL")


class GoalError(Exception):
    """A goal that cannot be answered; ``code`` is one of GoalCode or ErrorCode."""

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
    target_frame: str  # "" = the frames' world frame
    max_steps: int | None  # None = agent.max_steps
    timeout_s: float | None  # None = agent.deadline_s


def make_query(goal, settings: NodeSettings, now_s: float, tf: TransformSource) -> Query:
    """Check ``goal`` (a SpatialQuery.Goal) and fill in defaults; GoalError with the code of the first problem.
    ``max_frames`` is capped at what the agent shows (``NodeSettings.max_frames_limit``)."""
    question = str(goal.question).strip()
    if not question:
        raise GoalError(GoalCode.EMPTY_QUESTION, "the goal's question is empty")
    choices = tuple(str(choice).strip() for choice in goal.choices)
    if any(not choice for choice in choices):
        raise GoalError(GoalCode.EMPTY_QUESTION, f"the goal's choices include an empty one: {list(goal.choices)}")
    cameras = None
    if goal.cameras:
        resolved = [settings.camera(str(key).strip()) for key in goal.cameras]
        unknown = [key for key, camera in zip(goal.cameras, resolved) if camera is None]
        if unknown:
            listing = ", ".join(f"{c.name} ({c.image_topic})" for c in settings.cameras)
            raise GoalError(GoalCode.UNKNOWN_CAMERA, f"unknown camera(s) {unknown}; configured cameras: {listing}")
        cameras = tuple(dict.fromkeys(camera.name for camera in resolved))
    target = str(goal.target_frame).strip().lstrip("/")
    world = settings.core.frames.world_frame.strip().lstrip("/")
    if target and target != world and target not in tf.frames():
        known = ", ".join(tf.frames()) or "none (no TF received yet)"
        raise GoalError(GoalCode.UNKNOWN_TARGET_FRAME,
                        f"target_frame {target!r} is not in the TF tree; known frames: {known}")
    # No code means "bad argument": a window that cannot hold frames is NO_FRAMES, a bad timeout DEADLINE_EXCEEDED.
    for name, code in (("window_sec", GoalCode.NO_FRAMES), ("timeout_sec", ErrorCode.DEADLINE_EXCEEDED)):
        value = float(getattr(goal, name))
        if not math.isfinite(value) or value < 0:
            raise GoalError(code, f"{name} must be a finite number >= 0 (0 = the node's default), got {value}")
    stamp_s = int(goal.stamp.sec) + int(goal.stamp.nanosec) * 1e-9
    query = settings.node.query
    return Query(
        question=question, choices=choices, cameras=cameras,
        window_s=float(goal.window_sec) or query.window_s,
        max_frames=min(int(goal.max_frames) or query.max_frames, settings.max_frames_limit),
        end_s=stamp_s if stamp_s > 0 else now_s, target_frame=target,
        max_steps=int(goal.max_steps) or None, timeout_s=float(goal.timeout_sec) or None,
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
