"""The paper's four action interfaces on one agent: the same frames, question message, tools, answer checking,
logging and scoring; only how the model acts differs.

- ``code``: the agent as it is (one Python cell per step, observations back, up to ``max_steps``).
- ``single-pass``: one complete program written at once and run once (``max_steps`` = 1); if it returns no
  accepted answer, the same answer-only call the code agent makes when its steps run out.
- ``tool-call``: the tools as functions through the endpoint's function-calling API; JSON arguments, each result
  stored under a name later calls pass back (``tool_calls.ToolProgram``); one model turn per step.
- ``no-tool``: the key frames and the question straight to the model, the reply's ``ANSWER:`` line parsed and
  checked the way the answer-only call's is.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..agent.context import CallContext, History, ImageBlock, TextBlock
from ..agent.loop import Agent, QuestionRun
from ..agent.observation import build_observation, output_text
from ..agent.parsing import strip_thinking
from ..agent.prompts import question_blocks, system_prompt
from ..agent.result import AgentResult
from ..answers import Answer
from ..cancel import CancelToken
from ..frames import FrameSet
from ..kernel.results import CellStatus
from ..kernel.session import KernelSession
from ..llm.client import ChatReply
from ..llm.messages import assistant_message, tool_message
from .tool_calls import ToolCallError, ToolProgram, function_definitions

CODE, SINGLE_PASS, TOOL_CALL, NO_TOOL = "code", "single-pass", "tool-call", "no-tool"
INTERFACES = (CODE, SINGLE_PASS, TOOL_CALL, NO_TOOL)
TOOL_RESULT_CHARS = 1500  # of a call's output in its tool message (the observation after it has the rest)

SINGLE_PASS_ROLE = """\
You answer spatial questions about what a robot's cameras saw by writing ONE complete Python program.
It runs once, in a kernel that holds the frames and the tools below; you will not see its output
before it must have answered."""

SINGLE_PASS_FORMAT = """\
How to reply: a brief plan, then exactly ONE fenced ```python code cell holding the whole program.
It must end by calling ReturnAnswer(value, unit=...) with the answer it computed."""

TOOL_CALL_ROLE = """\
You answer spatial questions about what a robot's cameras saw by calling functions. Every tool below
is a function of the same name (tools.Geometry.closest_point_distance is Geometry_closest_point_distance);
arguments are JSON, and each result is stored under a name (save_as, default r1, r2, ...) that later
calls pass as {"ref": "r1"}. InputImages and Metadata are stored names from the start."""

TOOL_CALL_FORMAT = """\
How to reply, every time: call one or more functions. You then see each result. When you are sure,
call ReturnAnswer with the answer: it checks that the answer fits the question and tells you why if
it does not. Use call_method for methods of a stored result."""

NO_TOOL_ROLE = """\
You answer spatial questions about what a robot's cameras saw, from the frames shown alone."""

NO_TOOL_FORMAT = """\
How to reply: a short justification, then a last line of the form
ANSWER: <value>
(a number with its unit for measurements, the option letter for multiple choice, yes or no for
yes/no questions)."""

NO_TOOL_REQUEST = """\
Answer the question from the frames: "{question}"
End with the line ANSWER: <value>."""


class SinglePassRun(QuestionRun):
    """One program, run once."""

    def system_prompt(self) -> str:
        return system_prompt(self.frames, role=SINGLE_PASS_ROLE, reply_format=SINGLE_PASS_FORMAT)


class NoToolRun(QuestionRun):
    """Frames and question straight to the model; no kernel, no plan."""

    def system_prompt(self) -> str:
        return system_prompt(self.frames, role=NO_TOOL_ROLE, reply_format=NO_TOOL_FORMAT, with_tools=False)

    def act(self, key_blocks: list[ImageBlock]) -> tuple[Answer, bool]:
        history = History(self.system_prompt(), self.config.agent.context, self.encoding)
        history.add("user", 0, question_blocks(self.spec, self.frames, "", key_blocks))
        return self.final_answer(history), False

    def final_request(self) -> str:
        return NO_TOOL_REQUEST.format(question=self.question)


class ToolCallRun(QuestionRun):
    """Structured function calls; the history keeps the calls as the API's assistant tool_calls and tool messages."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.program = ToolProgram()
        self.assistant_steps: list[int] = []  # the step of each assistant message, in order
        self.calls: dict[int, list[tuple[dict, str]]] = {}  # step -> (tool_call message part, tool message text)

    def system_prompt(self) -> str:
        return system_prompt(self.frames, role=TOOL_CALL_ROLE, reply_format=TOOL_CALL_FORMAT)

    def chat(self, role: str, messages: list[dict], step: int, context: CallContext | None = None,
             tools: list[dict] | None = None) -> ChatReply:
        """Main calls offer the functions and carry the earlier calls as tool_calls and tool messages."""
        if role == "main":
            messages, tools = self.with_tool_messages(messages), function_definitions()
        return super().chat(role, messages, step, context, tools)

    def with_tool_messages(self, messages: list[dict]) -> list[dict]:
        """Put each step's function calls back on its assistant message, followed by one tool message per call."""
        out, assistants = [], iter(self.assistant_steps)
        for message in messages:
            calls = self.calls.get(next(assistants, None), []) if message["role"] == "assistant" else []
            if not calls:
                out.append(message)
                continue
            out.append({**assistant_message(message["content"]), "tool_calls": [part for part, _ in calls]})
            out += [tool_message(part["id"], text) for part, text in calls]
        return out

    def step(self, step: int, history: History, session: KernelSession) -> Answer | None:
        messages, call = history.render()
        self.context.record(call)
        reply = self.chat("main", messages, step, call)
        self.assistant_steps.append(step)
        history.add("assistant", step, [TextBlock(strip_thinking(reply.text))])
        if not reply.tool_calls:
            self.log.event("malformed", step=step, problem="no function call", text=reply.text)
            history.add("user", step, [TextBlock("Your last reply called no function. Call a function; answer with "
                                                 "ReturnAnswer.")])
            self.emit("step", step, summary="malformed reply: no function call")
            return None
        self.calls[step], blocks = [], []
        for tool_call in reply.tool_calls:
            part = {"id": tool_call.id, "type": "function",
                    "function": {"name": tool_call.name, "arguments": tool_call.arguments}}
            try:
                code, name = self.program.cell(tool_call)
            except ToolCallError as error:
                self.calls[step].append((part, f"error: {error}"))
                blocks.append(TextBlock(f"[{tool_call.name}] error: {error}"))
                continue
            result = self.run_cell(step, f"function call {tool_call.name}", code, session)
            if result.status == CellStatus.ANSWERED:
                return Answer.from_dict(result.answer)
            if name and result.status == CellStatus.OK:
                self.program.stored(name)
            text = result.error or output_text(result) or result.status.value
            self.calls[step].append((part, f"{result.status.value}: {text[:TOOL_RESULT_CHARS]}"))
            blocks.append(TextBlock(f"[{tool_call.name}]"))
            blocks += build_observation(result, step=step, max_steps=self.max_steps,
                                        output_budget_chars=self.config.agent.output_budget_chars,
                                        encoding=self.encoding, refusals=self.refusals)
        history.add("user", step, blocks)
        return None


RUNS: dict[str, type[QuestionRun]] = {CODE: QuestionRun, SINGLE_PASS: SinglePassRun, TOOL_CALL: ToolCallRun,
                                      NO_TOOL: NoToolRun}


def ask_with(agent: Agent, interface: str, question: str, frames: FrameSet, *, choices: Sequence[str] = (),
             cancel: CancelToken | None = None, session_dir=None, max_steps: int | None = None,
             deadline_s: float | None = None) -> AgentResult:
    """``agent.ask`` through the named action interface (one of INTERFACES)."""
    if interface not in RUNS:
        raise ValueError(f"unknown interface {interface!r} (expected one of {', '.join(INTERFACES)})")
    if interface == SINGLE_PASS:
        max_steps = 1
    return RUNS[interface](agent, question, frames, choices, cancel=cancel, on_event=None, session_dir=session_dir,
                           max_steps=max_steps, deadline_s=deadline_s).run()
