"""Re-run a recorded session's cells in a fresh kernel without a model and check that they reproduce.

vlm answers and answer verdicts come from the trace, in the order they were recorded, so a
deterministic session reproduces exactly. A step matches when the cell's status and stdout are
the same as recorded (stdout compared as the log bounds it). Cells recorded as cancelled were stopped
from outside and are not re-run; a cell the log could not keep whole (left out at the size cap, or
code cut to the string bound) cannot be re-run and counts as a mismatch saying so.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

from .config import KernelConfig
from .frames import FrameSet
from .kernel.host import ANSWER_SERVICE, HostError, HostHandler, HostReply, HostRequest
from .kernel.pool import KernelPool
from .perception.backends import BackendChoice
from .session_log.encoding import CHANGES_KEY, bound_text
from .session_log.log import DROPPED_KIND, INPUTS_DIR, read_trace

REPLAYED_SERVICES = ("vlm.locate", "vlm.ask_with_thinking", ANSWER_SERVICE)


@dataclass
class StepComparison:
    """One recorded cell against its replay."""

    step: int
    recorded_status: str
    replayed_status: str
    status_match: bool
    output_match: bool
    replayed_stdout: str
    note: str = ""  # why the step could not be re-run, if it could not

    @property
    def matches(self) -> bool:
        """Same status and same stdout."""
        return self.status_match and self.output_match


@dataclass
class ReplayReport:
    """All steps of a replayed session."""

    session_dir: Path
    steps: list[StepComparison]

    @property
    def all_match(self) -> bool:
        """Every step matches."""
        return all(step.matches for step in self.steps)


def _recorded_replies(events: list[dict]) -> dict[str, deque]:
    """Per host service, the recorded replies in order (a recorded error becomes HostError)."""
    replies: dict[str, deque] = {service: deque() for service in REPLAYED_SERVICES}
    for event in events:
        if event["kind"] == "vlm":
            replies[event["service"]].append(
                HostError(event["error"]) if event.get("error") else HostReply(payload={"result": event["result"]}))
        elif event["kind"] == "answer_check":
            replies[ANSWER_SERVICE].append(HostReply(payload={"accepted": event["accepted"], "reason": event["reason"],
                                                        "answer": event.get("answer")}))
    return replies


def _handlers(replies: dict[str, deque]) -> dict[str, HostHandler]:
    def handler_for(service: str) -> HostHandler:
        def handle(request: HostRequest) -> HostReply:
            if not replies[service]:
                raise HostError(f"replay: the recording has no more '{service}' replies")
            reply = replies[service].popleft()
            if isinstance(reply, HostError):
                raise reply
            return reply
        return handle
    return {service: handler_for(service) for service in REPLAYED_SERVICES}


def replay_session(session_dir: str | Path, kernel: KernelConfig) -> ReplayReport:
    """Replay every recorded cell of ``session_dir`` in a fresh kernel and compare status and stdout."""
    session_dir = Path(session_dir)
    events = read_trace(session_dir)
    question = next((event for event in events if event["kind"] == "question"), None)
    if question is None:
        raise ValueError(f"{session_dir}: the trace has no question event (the session failed before it started)")
    frames = FrameSet.load(session_dir / INPUTS_DIR)
    cells = [event for event in events if event["kind"] == "cell" and event["status"] != "cancelled"
             or event["kind"] == DROPPED_KIND and event.get("dropped_kind") == "cell"]
    comparisons = []
    with KernelPool(kernel) as pool:
        with pool.session(frames, _handlers(_recorded_replies(events)),
                          image_max_side=question["image_max_side"],
                          backends=BackendChoice(**question["backends"])) as session:
            for cell in cells:
                note = _unreplayable(cell)
                if note:
                    comparisons.append(StepComparison(cell.get("step", 0), cell.get("status", "not logged"),
                                                      "not run", False, False, "", note))
                    continue
                result = session.execute(cell["code"], timeout_s=question["cell_timeout_s"])
                comparisons.append(StepComparison(
                    step=cell["step"], recorded_status=cell["status"], replayed_status=result.status.value,
                    status_match=result.status.value == cell["status"],
                    output_match=bound_text(result.stdout) == cell["stdout"], replayed_stdout=result.stdout))
    return ReplayReport(session_dir, comparisons)


def _unreplayable(cell: dict) -> str:
    """Why a recorded cell cannot be re-run ("" when it can)."""
    if cell["kind"] == DROPPED_KIND:
        return f"the cell was not logged: {cell.get('reason')}"
    if "code" in cell.get(CHANGES_KEY, {}):
        return f"the logged code is incomplete ({cell[CHANGES_KEY]['code']})"
    return ""
