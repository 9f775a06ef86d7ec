"""The agent loop: plan, then steps (model reply -> one cell -> observation) until an accepted answer.

Every question gets its own session directory, kernel session and cancellation token; the token
fires when the caller cancels or the deadline passes, and stops a model call or a cell within a
second. Whatever happens, the trace, ``result.json`` and ``report.html`` are written.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from dataclasses import replace
from collections.abc import Callable, Sequence
from pathlib import Path

from ..answers import Answer, QuestionSpec, analyse_question, check_answer
from ..cancel import Cancelled, CancelToken
from ..config import Config, key_frame_limit
from ..frames import FrameSet
from ..imaging import encode_png
from ..kernel.host import ANSWER_SERVICE, HostHandler, HostReply, HostRequest
from ..kernel.pool import KernelPool
from ..kernel.results import CellResult, CellStatus, ShownImage
from ..kernel.session import KernelSession
from ..llm.client import ChatModel, ChatReply, ModelError, Usage
from ..llm.messages import message_text
from ..llm.vision import ImageEncoding
from ..perception.backends import BackendChoice
from ..perception.service import PerceptionService
from ..session_log.log import MB, SessionLog
from .context import CallContext, ContextReport, Entry, History, ImageBlock, TextBlock
from .cost import CostLedger, Measured, MeteredModel, measure_messages
from .observation import build_observation, last_step_note, output_text
from .parsing import parse_final_answer, parse_reply, strip_thinking
from .prompts import (
    final_answer_request, format_reminder, key_frame_blocks, key_frames, planner_messages,
    question_blocks, system_prompt,
)
from .result import ANSWERED, CANCELLED, FAILED, AgentEvent, AgentResult, ErrorCode
from .vlm_service import VlmService

CANCEL_POLL_S = 0.05
SUMMARY_CHARS = 200

EventCallback = Callable[[AgentEvent], None]


class AgentFailure(Exception):
    """A question ended without an answer for a reason with an error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@contextlib.contextmanager
def _kernel_failures():
    """Turn the kernel's RuntimeError (no worker could start or restart) into AgentFailure(KERNEL_FAILURE)."""
    try:
        yield
    except RuntimeError as error:
        raise AgentFailure(ErrorCode.KERNEL_FAILURE, f"the kernel failed: {error}") from error


class _CancelWatch:
    """Cancels ``token`` (reason = error code) when ``external`` is cancelled or the deadline passes."""

    def __init__(self, token: CancelToken, external: CancelToken | None, deadline_s: float) -> None:
        self._token = token
        self._external = external
        self._deadline = time.monotonic() + deadline_s
        self._deadline_s = deadline_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="agent-cancel-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(CANCEL_POLL_S):
            if self._external is not None and self._external.cancelled:
                self._token.cancel(ErrorCode.CANCELLED)
                return
            if time.monotonic() >= self._deadline:
                self._token.cancel(ErrorCode.DEADLINE_EXCEEDED)
                return

    def message(self) -> str:
        """Why the token fired, for AgentResult.error_message."""
        if self._token.reason == ErrorCode.DEADLINE_EXCEEDED:
            return f"the question's deadline of {self._deadline_s:g} s passed"
        reason = self._external.reason if self._external is not None else ""
        return f"cancelled by the caller ({reason})" if reason and reason != "cancelled" else "cancelled by the caller"

    def stop(self) -> None:
        """End the watch thread."""
        self._done.set()
        self._thread.join()


def _one_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line[:SUMMARY_CHARS]


class QuestionRun:
    """The state of one question while it runs (session log, token, history, usage).

    ``act`` is the action interface (here code as action: one cell per step); evaluation.interfaces
    subclasses it to compare interfaces with everything else (prompt, tools, scoring, logging) the same.
    """

    def __init__(self, agent: "Agent", question: str, frames: FrameSet, choices: Sequence[str], *,
                 cancel: CancelToken | None, on_event: EventCallback | None, session_dir: str | Path | None,
                 max_steps: int | None, deadline_s: float | None) -> None:
        self.config = agent.config
        self.model = agent.model
        self.pool = agent.pool
        self.perception = agent.perception
        self.question = question
        self.frames = frames
        self.choices = list(choices)
        self.on_event = on_event
        self.max_steps = self.config.agent.max_steps if max_steps is None else max_steps
        self.deadline_s = self.config.agent.deadline_s if deadline_s is None else deadline_s
        self.started = time.monotonic()
        self.token = CancelToken()
        self.watch = _CancelWatch(self.token, cancel, self.deadline_s if self.deadline_s > 0 else float("inf"))
        self.log = SessionLog.create(self.config.agent.sessions_dir, session_dir,
                                     max_bytes=self.config.agent.session_max_mb * MB)
        self.usage = Usage()
        self.context = ContextReport()
        self.encoding = ImageEncoding.from_settings(self.config.agent.images, self.config.agent.image_max_side,
                                                    self.config.model.main.model or self.config.model.model)
        self.ledger = CostLedger()
        self.metered = MeteredModel(self.model, self.ledger, self.log, self.encoding.encoder)
        self.steps = 0
        self.refusals: list[str] = []
        self.shown: list[ShownImage] = []  # what the cells showed, in order (AgentResult.shown_images)
        self._usage_lock = threading.Lock()
        self.spec: QuestionSpec | None = None  # set once the input is valid

    # -- bookkeeping ---------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the question started."""
        return time.monotonic() - self.started

    def emit(self, stage: str, step: int, code: str = "", summary: str = "") -> None:
        """Pass an AgentEvent to the caller's on_event, if any."""
        if self.on_event is not None:
            cost = self.ledger.totals()
            self.on_event(AgentEvent(stage, step, self.max_steps, code, summary, self.elapsed(), cost.bytes_sent,
                                     cost.image_tokens, cost.text_tokens))

    def add_usage(self, reply: ChatReply) -> None:
        """Add a reply's tokens to the question's totals (vlm replies arrive on handler threads)."""
        with self._usage_lock:
            self.usage = Usage(self.usage.prompt_tokens + reply.usage.prompt_tokens,
                               self.usage.completion_tokens + reply.usage.completion_tokens,
                               self.usage.total_tokens + reply.usage.total_tokens)

    def chat(self, role: str, messages: list[dict], step: int, context: CallContext | None = None,
             tools: list[dict] | None = None) -> ChatReply:
        """One model call (offering ``tools``, function definitions, if given), logged before and after (its cost
        in a "call_cost" event)."""
        self.log.event("model_request", role=role, step=step, messages=len(messages),
                       new_message=message_text(messages[-1]), images=context.images_sent if context else 0,
                       estimated_tokens=context.estimated_tokens if context else None, context=context)
        measured = Measured.of_context(context) if context else measure_messages(messages, self.encoding.encoder)
        reply = self.model.chat(role, messages, cancel=self.token, tools=tools)
        self.add_usage(reply)
        self.log.event("model_response", role=role, step=step, text=reply.text, usage=reply.usage,
                       latency_s=reply.latency_s, attempts=reply.attempts, model=reply.model,
                       finish_reason=reply.finish_reason, tool_calls=reply.tool_calls)
        self.metered.record(role, step, measured, reply)
        return reply

    # -- running -------------------------------------------------------------------------------

    def run(self) -> AgentResult:
        """Answer the question; never raises for expected failures (they become the result's status)."""
        answer, low_confidence = None, False
        status, code, message = FAILED, ErrorCode.NONE, ""
        try:
            try:
                self.validate()
                answer, low_confidence = self.solve()
                status = ANSWERED
            except AgentFailure as failure:
                code, message = failure.code, str(failure)
            except Cancelled:
                deadline = self.token.reason == ErrorCode.DEADLINE_EXCEEDED
                status = FAILED if deadline else CANCELLED
                code = ErrorCode.DEADLINE_EXCEEDED if deadline else ErrorCode.CANCELLED
                message = self.watch.message()
            except ModelError as error:
                unreachable = error.kind in ("unreachable", "timeout")
                code = ErrorCode.MODEL_UNREACHABLE if unreachable else ErrorCode.MODEL_ERROR
                message = str(error)
        except BaseException as error:  # a bug: record it in the session, then let it surface
            message = f"{type(error).__name__}: {error}"
            self.log.event("error", code=ErrorCode.INTERNAL_ERROR, message=message, traceback=traceback.format_exc())
            self.finish(AgentResult(FAILED, None, False, self.steps, ErrorCode.INTERNAL_ERROR, message,
                                    self.log.directory, self.elapsed(), self.usage, self.context,
                                    self.ledger.totals()))
            raise
        if code:
            self.log.event("error", code=code, message=message)
        result = AgentResult(status, answer, low_confidence, self.steps, code, message, self.log.directory,
                             self.elapsed(), self.usage, self.context, self.ledger.totals(), shown_images=self.shown)
        self.finish(result)
        return result

    def finish(self, result: AgentResult) -> None:
        """Stop the watcher and end the session log (the trace's last event, the report, ``result.json``); what
        of the log could not be written becomes ``result.log_error``, and the answer stands."""
        self.watch.stop()
        result.log_error = self.log.finish(result.to_dict())
        summary = result.answer.text if result.answer else f"{result.error_code}: {result.error_message}"
        self.emit("done", result.steps, summary=summary)

    def validate(self) -> None:
        """AgentFailure(INVALID_INPUT) naming the first argument that cannot be used."""
        if not isinstance(self.question, str) or not self.question.strip():
            raise AgentFailure(ErrorCode.INVALID_INPUT, "the question is empty")
        if not isinstance(self.frames, FrameSet):
            raise AgentFailure(ErrorCode.INVALID_INPUT, f"frames must be a FrameSet, got {type(self.frames).__name__}")
        if not all(isinstance(choice, str) and choice.strip() for choice in self.choices):
            raise AgentFailure(ErrorCode.INVALID_INPUT, f"choices must be non-empty strings, got {self.choices!r}")
        if self.max_steps < 1:
            raise AgentFailure(ErrorCode.INVALID_INPUT, f"max_steps must be at least 1, got {self.max_steps}")
        if self.deadline_s <= 0:
            raise AgentFailure(ErrorCode.INVALID_INPUT, f"deadline_s must be positive, got {self.deadline_s}")

    def solve(self) -> tuple[Answer, bool]:
        """Read the question and log it with its key frames, then ``act``; returns (answer, low_confidence)."""
        agent_config = self.config.agent
        self.spec = analyse_question(self.question, self.choices)
        self.log.save_inputs(self.frames)
        self.backends = BackendChoice(self.config.perception.reconstruction, self.config.perception.segmentation)
        selected = key_frames(self.frames, key_frame_limit(agent_config))
        key_blocks = key_frame_blocks(selected, self.encoding)
        key_files = [self.log.save_image(f"key_{frame.index}", encode_png(self.encoding.pixels(frame.rgb)))
                     for frame in selected]  # lossless, at the size the model is sent
        self.log.event("question", question=self.question, choices=self.choices, metadata=self.frames.metadata(),
                       spec=self.spec, max_steps=self.max_steps, deadline_s=self.deadline_s,
                       cell_timeout_s=agent_config.cell_timeout_s, image_max_side=agent_config.image_max_side,
                       image_encoding=self.encoding, backends=self.backends,
                       key_frames=[{"label": block.label, "file": file} for block, file in zip(key_blocks, key_files)])
        return self.act(key_blocks)

    def act(self, key_blocks: list[ImageBlock]) -> tuple[Answer, bool]:
        """Code as action: plan, one cell per step until an accepted answer, else the answer-only call."""
        agent_config = self.config.agent
        plan = self.plan() if agent_config.plan else ""
        history = History(self.system_prompt(), agent_config.context, self.encoding)
        history.add("user", 0, question_blocks(self.spec, self.frames, plan, key_blocks))
        vlm = VlmService(self.metered, self.log, self.token, image_max_side=agent_config.image_max_side,
                         on_reply=self.add_usage, limits=agent_config.vlm)
        try:
            perception = self.perception.handlers(self.frames)
        except (ImportError, ValueError) as error:
            raise AgentFailure(ErrorCode.INVALID_INPUT, f"perception: {error}") from error
        handlers = {**vlm.handlers(), ANSWER_SERVICE: self.check_returned_answer, **self.timed(perception)}
        with _kernel_failures():
            session = self.pool.session(self.frames, handlers, image_max_side=agent_config.image_max_side,
                                        backends=self.backends)
        self.log.event("kernel", pid=session.pid)
        with session:
            for step in range(1, self.max_steps + 1):
                self.steps = step
                vlm.step = self.metered.step = step
                answer = self.step(step, history, session)
                if answer is not None:
                    return answer, False
        return self.final_answer(history), True

    def system_prompt(self) -> str:
        """The main conversation's system prompt."""
        return system_prompt(self.frames)

    def timed(self, handlers: dict[str, HostHandler]) -> dict[str, HostHandler]:
        """``handlers`` (model perception) that log each call's service and duration as a "perception" event."""
        def timing(service: str, handler: HostHandler) -> HostHandler:
            def handle(request: HostRequest) -> HostReply:
                started = time.monotonic()
                try:
                    return handler(request)
                finally:
                    self.log.event("perception", step=self.steps, service=service,
                                   duration_s=round(time.monotonic() - started, 4))
            return handle
        return {service: timing(service, handler) for service, handler in handlers.items()}

    def plan(self) -> str:
        """The planner's text-only plan (thinking removed)."""
        self.emit("planning", 0)
        reply = self.chat("planner", planner_messages(self.spec, self.frames), 0)
        text = strip_thinking(reply.text)
        self.log.event("plan", text=text)
        return text

    def step(self, step: int, history: History, session: KernelSession) -> Answer | None:
        """One step: model reply, then its cell and the observation; the accepted answer if there is one."""
        messages, call = history.render()
        self.context.record(call)
        reply = self.chat("main", messages, step, call)
        parsed = parse_reply(reply.text)
        history.add("assistant", step, [TextBlock(strip_thinking(reply.text))])
        if parsed.code is None:
            self.log.event("malformed", step=step, problem=parsed.problem, text=reply.text)
            reminder = [TextBlock(format_reminder(parsed.problem)), *last_step_note(step, self.max_steps)]
            history.add("user", step, reminder)
            self.emit("step", step, summary=f"malformed reply: {parsed.problem}")
            return None
        result = self.run_cell(step, parsed.reasoning, parsed.code, session)
        if result.status == CellStatus.ANSWERED:
            return Answer.from_dict(result.answer)
        history.add("user", step, build_observation(
            result, step=step, max_steps=self.max_steps, output_budget_chars=self.config.agent.output_budget_chars,
            encoding=self.encoding, refusals=self.refusals))
        return None

    def run_cell(self, step: int, reasoning: str, code: str, session: KernelSession) -> CellResult:
        """Execute one cell, log it and report the step; Cancelled if the question was cancelled meanwhile."""
        self.refusals = []
        with _kernel_failures():
            result = session.execute(code, timeout_s=self.config.agent.cell_timeout_s, cancel=self.token)
        self.log_cell(step, reasoning, code, result)
        if result.status == CellStatus.CANCELLED:
            raise Cancelled(result.error)
        self.emit("step", step, code, f"{result.status.value}: {_one_line(result.error or output_text(result))}")
        return result

    def log_cell(self, step: int, reasoning: str, code: str, result: CellResult) -> None:
        """Record a cell in the trace, its shown images as files."""
        images = [{"label": image.label, "file": self.log.save_image(f"step{step}_{number}", image.png)}
                  for number, image in enumerate(result.images, start=1)]
        self.shown += result.images
        self.log.event("cell", step=step, reasoning=reasoning, code=code, status=result.status, stdout=result.stdout,
                       stderr=result.stderr, error=result.error, variables=result.variables, images=images,
                       restart=result.restart, answer=result.answer, duration_s=result.duration_s)

    def check_returned_answer(self, request: HostRequest) -> HostReply:
        """The "answer" host service: check a ReturnAnswer value against the question."""
        value, unit = request.payload.get("value"), request.payload.get("unit")
        verdict = check_answer(self.spec, value, unit)
        answer = None
        if verdict.answer:
            answer = replace(verdict.answer, points=request.payload.get("points", [])).to_dict()
        self.log.event("answer_check", step=self.steps, value=value, unit=unit, accepted=verdict.accepted,
                       reason=verdict.reason, answer=answer)
        if not verdict.accepted:
            self.refusals.append(verdict.reason)
        return HostReply(payload={"accepted": verdict.accepted, "reason": verdict.reason, "answer": answer})

    def final_request(self) -> str:
        """The text of the answer-only call."""
        return final_answer_request(self.question, self.max_steps)

    def final_answer(self, history: History) -> Answer:
        """The answer-only call after the last step; AgentFailure(NO_ANSWER) when it gives nothing acceptable."""
        self.emit("answering", self.max_steps)
        request = Entry("user", self.max_steps, [TextBlock(self.final_request())])
        messages, call = history.render(request)
        self.context.record(call)
        reply = self.chat("main", messages, self.max_steps + 1, call)
        value = parse_final_answer(reply.text)
        if value is None:
            self.log.event("final_answer", text=reply.text, value=None, accepted=False, reason="no ANSWER: line")
            raise AgentFailure(ErrorCode.NO_ANSWER,
                               f"no answer after {self.max_steps} steps: the final answer call gave no 'ANSWER:' line")
        verdict = check_answer(self.spec, value)
        self.log.event("final_answer", text=reply.text, value=value, accepted=verdict.accepted, reason=verdict.reason,
                       answer=verdict.answer.to_dict() if verdict.answer else None)
        if not verdict.accepted:
            raise AgentFailure(ErrorCode.NO_ANSWER,
                               f"no answer after {self.max_steps} steps: the final answer {value!r} was refused "
                               f"({verdict.reason})")
        return verdict.answer


class Agent:
    """Answers spatial questions about frames with a model writing cells into a sandboxed kernel."""

    def __init__(self, config: Config, *, model: ChatModel | None = None, pool: KernelPool | None = None,
                 perception: PerceptionService | None = None) -> None:
        self.config = config
        self._owns_model = model is None
        self._owns_pool = pool is None
        self._owns_perception = perception is None
        self.model = model if model is not None else ChatModel(config.model)
        self.pool = pool if pool is not None else KernelPool(config.kernel)
        #: The model perception backends; one created here loads on the first question that needs it.
        self.perception = perception if perception is not None else PerceptionService(config.perception)

    def __enter__(self) -> "Agent":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ask(self, question: str, frames: FrameSet, *, choices: Sequence[str] = (), cancel: CancelToken | None = None,
            on_event: EventCallback | None = None, session_dir: str | Path | None = None,
            max_steps: int | None = None, deadline_s: float | None = None) -> AgentResult:
        """Answer ``question`` about ``frames``; failures and cancellation come back as the result's status."""
        return QuestionRun(self, question, frames, choices, cancel=cancel, on_event=on_event,
                           session_dir=session_dir, max_steps=max_steps, deadline_s=deadline_s).run()

    def fail(self, question: str, code: str, message: str) -> AgentResult:
        """Record a question that ended before it could run (e.g. the ROS node found no frames): its session log
        and ``result.json`` are written as for any other question."""
        run = QuestionRun(self, question, None, (), cancel=None, on_event=None, session_dir=None, max_steps=None,
                          deadline_s=None)
        run.log.event("error", code=code, message=message)
        result = AgentResult(FAILED, None, False, 0, code, message, run.log.directory, run.elapsed(), run.usage,
                             run.context, run.ledger.totals())
        run.finish(result)
        return result

    def close(self) -> None:
        """Close the model client, kernel pool and perception service this agent created (not ones passed in)."""
        if self._owns_pool:
            self.pool.close()
        if self._owns_model:
            self.model.close()
        if self._owns_perception:
            self.perception.close()
