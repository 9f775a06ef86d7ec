"""Run a benchmark: each (row, interface) once, K at a time in their own kernels, each finished row appended to
``results.jsonl`` at once so a broken run continues with ``resume``.

A row that cannot be used (missing file, unreadable answer) is reported in ``bad_rows.jsonl`` and skipped. A row
whose model call failed is not recorded (a resumed run asks it again); after ``ENDPOINT_FAILURES_TO_STOP``
such rows in a row the run stops early, since the endpoint is down, and says to resume.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..agent.loop import Agent
from ..agent.result import AgentResult, ErrorCode
from ..cancel import CancelToken
from ..config import Config
from ..session_log.log import jsonable, read_trace
from .dataset import BadRow, EvalRow, RowProblem, load_frames
from .interfaces import ask_with
from .scoring import score_answer

RESULTS_FILE = "results.jsonl"
BAD_ROWS_FILE = "bad_rows.jsonl"
SESSIONS_DIR = "sessions"
ENDPOINT_FAILURES_TO_STOP = 3
ENDPOINT_FAILURES = (ErrorCode.MODEL_UNREACHABLE, ErrorCode.MODEL_ERROR)
NOT_RECORDED = (*ENDPOINT_FAILURES, ErrorCode.CANCELLED)


@dataclass
class RunOutcome:
    """What a run did: rows recorded now and before, rows skipped, and whether the endpoint stopped it."""

    recorded: int = 0
    resumed: int = 0
    bad_rows: list[RowProblem] = field(default_factory=list)
    unfinished: int = 0  # model failures, not recorded: a resumed run asks them again
    stopped_early: str = ""  # why the run stopped before every row was tried


def read_results(path: Path) -> list[dict]:
    """The records of a ``results.jsonl`` (a torn last line from a killed run is ignored)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def session_name(row_id: str) -> str:
    """A directory name for a row id: its safe characters plus a short hash, so distinct ids never collide."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", row_id)[:60]
    return f"{safe}_{hashlib.sha1(row_id.encode()).hexdigest()[:6]}"


def trace_costs(session_dir: Path) -> dict:
    """Seconds of model calls (main, planner, vlm), kernel cells and model perception, and the kernel pids."""
    try:
        events = read_trace(session_dir)
    except FileNotFoundError:
        return {"model_s": 0.0, "kernel_s": 0.0, "perception_s": 0.0, "cells": 0, "kernel_pids": []}
    model = sum(event.get("latency_s") or 0.0 for event in events if event["kind"] in ("model_response", "vlm"))
    cells = [event for event in events if event["kind"] == "cell"]
    perception = sum(event.get("duration_s") or 0.0 for event in events if event["kind"] == "perception")
    return {"model_s": round(model, 4), "kernel_s": round(sum(cell.get("duration_s") or 0.0 for cell in cells), 4),
            "perception_s": round(perception, 4), "cells": len(cells),
            "kernel_pids": [event["pid"] for event in events if event["kind"] == "kernel"]}


class Progress:
    """A progress line with rate and ETA on a stream (stderr): redrawn in place on a terminal, one line per
    update otherwise."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._tty = stream.isatty()

    def advance(self, note: str) -> None:
        with self._lock:
            self.done += 1
            elapsed = time.monotonic() - self.started
            eta = elapsed / self.done * (self.total - self.done)
            line = (f"[eval] {self.done}/{self.total} ({100 * self.done / max(self.total, 1):.0f}%) "
                    f"{elapsed / self.done:.1f} s/question, ETA {_duration(eta)} | {note}")
            self.stream.write(("\r" + line[:150].ljust(150)) if self._tty else line + "\n")
            if self._tty and self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class Evaluation:
    """Runs rows through an agent's interfaces into ``out`` (results.jsonl, bad_rows.jsonl, sessions/)."""

    def __init__(self, config: Config, out: str | Path, interfaces: list[str], *, concurrency: int = 1,
                 max_steps: int | None = None, deadline_s: float | None = None, stream: TextIO = sys.stderr) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.out = Path(out)
        self.interfaces = list(interfaces)
        self.concurrency = concurrency
        self.max_steps = max_steps
        self.deadline_s = deadline_s
        self.stream = stream
        # One warm kernel per concurrent question; sessions go under out/sessions.
        kernel = dataclasses.replace(config.kernel, pool_size=max(config.kernel.pool_size, concurrency))
        agent = dataclasses.replace(config.agent, sessions_dir=str(self.out / SESSIONS_DIR))
        self.config = dataclasses.replace(config, kernel=kernel, agent=agent)
        self._lock = threading.Lock()
        self._endpoint_failures = 0
        self._stop = threading.Event()
        self._cancel = CancelToken()  # Ctrl-C: the questions in flight end within a second, unrecorded

    def run(self, rows: list[EvalRow], problems: list[RowProblem], *, resume: bool = False) -> RunOutcome:
        """Answer every (row, interface) not already recorded (with ``resume``), K at a time; Ctrl-C cancels the
        questions in flight (not recorded) and re-raises KeyboardInterrupt."""
        self.out.mkdir(parents=True, exist_ok=True)
        results = self.out / RESULTS_FILE
        if not resume and results.exists():
            raise FileExistsError(f"{results} exists: pass --resume to continue that run, or choose another --out")
        done = {(record["id"], record["interface"]) for record in read_results(results)}
        outcome = RunOutcome(resumed=len(done), bad_rows=list(problems))
        tasks = [(row, interface) for row in rows for interface in self.interfaces if (row.id, interface) not in done]
        for problem in problems:
            print(f"[eval] skipped {problem.id} ({problem.where}): {problem.reason}", file=self.stream)
        if done:
            print(f"[eval] resuming: {len(done)} results already in {results}", file=self.stream)
        progress = Progress(len(tasks), self.stream)
        with Agent(self.config) as agent, results.open("a", encoding="utf-8") as sink, \
                ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="eval") as pool:
            futures = [pool.submit(self._one, agent, row, interface, sink, outcome, progress) for row, interface in tasks]
            try:
                for future in futures:
                    future.result()
            except KeyboardInterrupt:
                self._stop.set()
                self._cancel.cancel("interrupted")
                pool.shutdown(cancel_futures=True)
                raise
        self._write_bad_rows(outcome.bad_rows)
        return outcome

    def _one(self, agent: Agent, row: EvalRow, interface: str, sink, outcome: RunOutcome, progress: Progress) -> None:
        """Answer one row through one interface and record it (or the reason it was skipped)."""
        if self._stop.is_set():
            return
        try:
            frames = load_frames(row, self.config.agent.max_key_frames)
        except BadRow as error:
            with self._lock:
                if not any(problem.id == row.id for problem in outcome.bad_rows):
                    outcome.bad_rows.append(RowProblem(row.id, row.benchmark or "dataset", str(error)))
            progress.advance(f"{row.id}: skipped ({error})")
            return
        session_dir = self.out / SESSIONS_DIR / interface / session_name(row.id)
        shutil.rmtree(session_dir, ignore_errors=True)  # a resumed row starts its session afresh
        started = time.time()
        result = ask_with(agent, interface, row.question, frames, choices=row.choices, cancel=self._cancel,
                          session_dir=session_dir, max_steps=self.max_steps, deadline_s=self.deadline_s)
        finished = time.time()
        if result.error_code in NOT_RECORDED:
            self._endpoint_failed(outcome, result)
            progress.advance(f"{row.id} [{interface}]: not recorded ({result.error_code})")
            return
        record = self._record(row, interface, result, started, finished)
        with self._lock:
            self._endpoint_failures = 0
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            sink.flush()
            outcome.recorded += 1
        progress.advance(f"{row.id} [{interface}]: score {record['score']:.2f}")

    def _endpoint_failed(self, outcome: RunOutcome, result: AgentResult) -> None:
        with self._lock:
            outcome.unfinished += 1
            if result.error_code not in ENDPOINT_FAILURES:
                return
            self._endpoint_failures += 1
            if self._endpoint_failures >= ENDPOINT_FAILURES_TO_STOP and not self._stop.is_set():
                outcome.stopped_early = (f"{self._endpoint_failures} questions in a row failed at the model endpoint "
                                         f"(last: {result.error_message}); rerun with --resume")
                self._stop.set()

    def _record(self, row: EvalRow, interface: str, result: AgentResult, started: float, finished: float) -> dict:
        """One results.jsonl line: the row, the answer and its score, and the question's cost."""
        summary = result.to_dict()
        truth = row.truth()
        score = score_answer(truth, row.question, row.choices, result.answer)
        return {
            "id": row.id, "interface": interface, "benchmark": row.benchmark, "question_type": row.question_type,
            "question": row.question, "choices": row.choices, "answer": row.answer, "kind": score.kind,
            "truth": score.truth, "predicted": score.predicted, "prediction": summary["answer"], "score": score.value,
            "status": result.status, "error_code": result.error_code, "error_message": result.error_message,
            "steps": result.steps, "low_confidence": result.low_confidence,
            "session_dir": str(Path(result.session_dir).resolve().relative_to(self.out.resolve())),
            "started_at": round(started, 3), "finished_at": round(finished, 3), "elapsed_s": summary["elapsed_s"],
            "tokens": summary["usage"], "cost": jsonable(summary.get("cost") or {}),
            **trace_costs(Path(result.session_dir)),
        }

    def _write_bad_rows(self, problems: list[RowProblem]) -> None:
        with (self.out / BAD_ROWS_FILE).open("w", encoding="utf-8") as out:
            for problem in problems:
                out.write(json.dumps(dataclasses.asdict(problem), ensure_ascii=False) + "\n")
