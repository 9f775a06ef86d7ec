"""Every text the agent sends to a model: system prompts, the question message, reminders, the final request.

Tool documentation is generated from the tools' docstrings and signatures (tools.catalog), so the
prompt cannot drift from the code.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Sequence

from ..answers import QuestionSpec, describe_expected
from ..frames import Frame, FrameSet
from ..image_types import FrameImage, VisualFeedback
from ..kernel.namespace import PROMPT_OBJECTS, LocateAnswer
from ..kernel.static_check import ALLOWED_MODULES, PRELOADED
from ..llm.messages import system_message, user_message
from ..llm.vision import ImageEncoding
from ..tools import TOOL_CLASSES
from ..perception.reconstruction import Reconstruction
from ..perception.segmentation import PerFrameMask
from ..tools.catalog import describe_object, describe_tools
from ..video import evenly_spaced
from .context import Block, ImageBlock, TextBlock

SYSTEM_ROLE = """\
You answer spatial questions about what a robot's cameras saw. You work in a persistent Python
kernel: each reply of yours runs as one code cell, you then see what it printed and showed, and
variables persist from cell to cell."""

CONVENTIONS = """\
Conventions:
- Camera axes follow OpenCV: x right, y down, z forward. Lengths are metres, angles degrees.
- The world frame '{world_frame}' has z up (REP 103: x forward, y left, z up). Camera poses are
  4x4 camera-to-world matrices; intrinsics are pinhole fx, fy, cx, cy in pixels at the frame's own
  resolution; depth is the camera z in metres.
- Frames are addressed by their ABSOLUTE index (image.frame_index, Metadata.frame_indices), never
  by list position.
- Every reconstruction is in this one metric, z-up world frame (not a per-call Y-up frame): heights
  are world z, and recon.gravity_direction points down."""

REPLY_FORMAT = """\
How to reply, every time: a brief reasoning (what the last output told you, what you do next),
then exactly ONE fenced ```python code cell. Print the numbers you need; pass images to show()
to see them in the next message. When you are sure, call ReturnAnswer(value, unit=...) inside a
cell: it checks that the answer fits the question and tells you why if it does not."""

NAMESPACE_INTRO = """\
Already defined in the kernel: {preloaded}. Code written for the reference SpatialClaw kernel runs
unchanged (plus the metric, TF-grounded extras below). The kernel is sandboxed: cells cannot read or
write files, start processes or open connections; they may import only {modules}; names and
attributes that start with '_' are refused. Reference:"""

PLANNER_SYSTEM = """\
You plan how a coding agent should answer a spatial question about camera frames. You cannot see
the images; the agent can, and it runs Python with the tools summarised below. Write a short
numbered plan (at most 8 steps) naming the tools to use, then a checklist of what to verify
before answering (units, which object is which, frame indices). Be brief."""

FINAL_ANSWER_REQUEST = """\
You have used all {max_steps} steps; no more code will run. From everything above, give your
best answer to the question: "{question}"
Reply with a short justification and then a last line of the form
ANSWER: <value>
(a number with its unit for measurements, the option letter for multiple choice, yes or no for
yes/no questions)."""


#: Types the perception tools return, documented with their methods since the agent works with them directly.
RETURNED_TYPES = {"FrameImage": FrameImage, "VisualFeedback": VisualFeedback, "LocateAnswer": LocateAnswer,
                  "Reconstruction": Reconstruction, "PerFrameMask": PerFrameMask}


def frame_label(frame: Frame) -> str:
    """How a key frame is named to the model: absolute index, camera and stamp."""
    return f"frame {frame.index} (camera {frame.camera}, t={frame.stamp:.2f} s)"


def key_frames(frames: FrameSet, max_key_frames: int) -> list[Frame]:
    """Up to ``max_key_frames`` frames spread evenly over the question's frames, in order."""
    return [frames.frames[i] for i in evenly_spaced(len(frames.frames), max_key_frames)]


def key_frame_blocks(frames: Sequence[Frame], encoding: ImageEncoding) -> list[ImageBlock]:
    """The key frames as labelled image blocks, as ``encoding`` sends them."""
    return [ImageBlock(label=frame_label(frame), image=encoding.encode(frame.rgb), key_frame=True,
                       source_size=(frame.width, frame.height)) for frame in frames]


def _first_paragraph(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


@functools.lru_cache(maxsize=1)
def tool_reference() -> str:
    """The generated reference of the kernel namespace: prompt objects first, then every tool namespace."""
    objects = "\n\n".join(describe_object(name, obj) for name, obj in {**PROMPT_OBJECTS, **RETURNED_TYPES}.items())
    return f"{objects}\n\n{describe_tools()}"


@functools.lru_cache(maxsize=1)
def tool_summary() -> str:
    """One paragraph per namespace object and tool (first docstring paragraph), for the planner."""
    lines = [f"- {name}: {_first_paragraph(obj)}" for name, obj in PROMPT_OBJECTS.items()]
    lines += [f"- tools.{name}: {_first_paragraph(cls)}" for name, cls in TOOL_CLASSES.items()]
    return "\n".join(lines)


def system_prompt(frames: FrameSet, *, role: str = SYSTEM_ROLE, reply_format: str = REPLY_FORMAT,
                  with_tools: bool = True) -> str:
    """The main conversation's system prompt for a question on ``frames``; ``role`` and ``reply_format`` vary
    with the action interface (evaluation.interfaces), and ``with_tools=False`` leaves out the kernel reference."""
    parts = [role, CONVENTIONS.format(world_frame=frames.world_frame), reply_format]
    if with_tools:
        parts += [NAMESPACE_INTRO.format(preloaded=PRELOADED, modules=", ".join(sorted(ALLOWED_MODULES))),
                  tool_reference()]
    return "\n\n".join(parts)


def frames_description(frames: FrameSet) -> str:
    """Frame metadata as compact text: the Metadata dict and one line per frame."""
    lines = ["Metadata: " + json.dumps(frames.metadata())]
    for frame in frames.frames:
        present = {"depth": frame.depth is not None, "pose": frame.T_world_camera is not None,
                   "intrinsics": frame.K is not None}
        extras = "".join(f", {name}" for name, available in present.items() if available)
        lines.append(f"- {frame_label(frame)}: {frame.width}x{frame.height}{extras}")
    return "\n".join(lines)


def question_text(spec: QuestionSpec) -> str:
    """The question followed by its labelled options, one per line."""
    text = f"Question: {spec.question}"
    if spec.choices:
        text += "\nOptions:\n" + "\n".join(f"  {option}" for option in spec.options)
    return text


def planner_messages(spec: QuestionSpec, frames: FrameSet) -> list[dict]:
    """The planning call's messages (text only)."""
    user = "\n\n".join([question_text(spec), frames_description(frames),
                        "Tools available to the agent:\n" + tool_summary()])
    return [system_message(PLANNER_SYSTEM), user_message(user)]


def question_blocks(spec: QuestionSpec, frames: FrameSet, plan: str,
                    key_frame_images: list[ImageBlock]) -> list[Block]:
    """The first user message of the main conversation: question, answer form, plan, frames, key frames."""
    parts = [question_text(spec), f"Answer with: {describe_expected(spec)}"]
    if plan:
        parts.append("Plan from a planner that did not see the images (adapt it as needed):\n" + plan.strip())
    parts.append(frames_description(frames))
    parts.append(f"{len(key_frame_images)} key frames follow; every frame is available in InputImages.")
    return [TextBlock("\n\n".join(parts)), *key_frame_images]


def format_reminder(problem: str) -> str:
    """The user message sent after a malformed reply."""
    return (f"Your last reply could not be run: {problem}. Reply with a brief reasoning followed by "
            "exactly one ```python fenced code cell (one cell per reply; nothing else is executed).")


def final_answer_request(question: str, max_steps: int) -> str:
    """The text of the answer-only call made when the steps run out."""
    return FINAL_ANSWER_REQUEST.format(question=question, max_steps=max_steps)
