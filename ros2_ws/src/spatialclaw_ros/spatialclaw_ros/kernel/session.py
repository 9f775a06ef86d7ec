"""One question's kernel session (parent side): execute cells, serve host calls, survive restarts.

The loop in ``_run`` watches four things at once: messages from the worker (images, host
requests, the result), the cell's deadline, the CancelToken and the worker's death. On a deadline
or cancel it sends SIGINT; if the cell has not stopped ``interrupt_grace_s`` later, the worker is
killed and a fresh one takes over, re-running earlier successful cells if configured (their host
calls answered from a record of the original replies, images suppressed).
"""

from __future__ import annotations

import itertools
import logging
import queue
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..cancel import CancelToken
from ..frames import FrameSet
from . import protocol
from .layers import SandboxLayer
from .host import ANSWER_SERVICE, HostError, HostHandler, HostReply, HostRequest
from .process import Event, WorkerProcess
from .start import KernelInit
from .results import CellResult, CellStatus, RestartReport, ShownImage, VariableChanges, VariableSummary
from .static_check import check_cell, rejection_message

if TYPE_CHECKING:
    from .pool import KernelPool

log = logging.getLogger(__name__)

INIT_TIMEOUT_S = 60.0  # loading frames and building the namespace
POLL_S = 0.05  # how often the loop looks at the deadline and the CancelToken
CANCEL_GRACE_S = 0.5  # a cancelled question does not wait the full interrupt grace
MAX_IMAGES_PER_CELL = 32
MAX_TEXT_CHARS = 1_100_000  # stdout/stderr accepted from the worker (it caps at 1,000,000 itself)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class HostCallRecord:
    """One host call of a successful cell, kept to answer it again during a restore."""

    service: str
    reply: HostReply | None
    error: str = ""


@dataclass
class _HostDone:
    """A host call finished on its handler thread; ``run_id`` ties it to the cell that asked."""

    run_id: int
    request_id: object
    service: str
    reply: HostReply | None
    error: str = ""


@dataclass
class CellRecord:
    """A successful cell, kept so that a restarted kernel can re-run it."""

    code: str
    timeout_s: float
    host_calls: list[HostCallRecord]


@dataclass
class _Run:
    """What the parent saw while one cell ran."""

    run_id: int
    status: CellStatus = CellStatus.OK
    stdout: str = ""
    stderr: str = ""
    error: str = ""
    variables: VariableChanges = field(default_factory=VariableChanges)
    images: list[ShownImage] = field(default_factory=list)
    answer: dict | None = None
    host_calls: list[HostCallRecord] = field(default_factory=list)
    images_dropped: int = 0
    worker_lost: str = ""  # why the worker was killed or died during the cell ("" when it is fine)


class _Replay:
    """Answers a re-run cell's host calls from the record of the original run, in order."""

    def __init__(self, calls: list[HostCallRecord]) -> None:
        self._calls = list(calls)

    def next(self, service: str) -> HostCallRecord:
        if not self._calls:
            return HostCallRecord(service, None, f"restore: '{service}' was not called when this cell first ran")
        call = self._calls.pop(0)
        if call.service != service:
            return HostCallRecord(service, None, f"restore: expected a '{call.service}' call, got '{service}'")
        return call


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None if ``data`` is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _text(header: dict, key: str) -> str:
    value = header.get(key)
    return value[:MAX_TEXT_CHARS] if isinstance(value, str) else ""


def _summaries(entries: object) -> list[VariableSummary]:
    if not isinstance(entries, list):
        return []
    return [VariableSummary(*entry) for entry in entries
            if isinstance(entry, list) and len(entry) == 3 and all(isinstance(x, str) for x in entry)]


def _names(entries: object) -> list[str]:
    return [name for name in entries if isinstance(name, str)] if isinstance(entries, list) else []


class KernelSession:
    """A question's persistent kernel: one fresh worker, killed when the session closes."""

    def __init__(self, pool: "KernelPool", worker: WorkerProcess, frames: FrameSet,
                 handlers: dict[str, HostHandler], init: KernelInit) -> None:
        self._pool = pool
        self._config = pool.config
        self._frames = frames
        self._handlers = dict(handlers)
        self._init = init
        self._history: list[CellRecord] = []
        self._names: set[str] = set()
        self._pending_restart = ""
        self._closed = False
        self._run_ids = itertools.count(1)
        self._worker = self._attach(worker)

    # lifecycle
    def _attach(self, worker: WorkerProcess) -> WorkerProcess:
        """Give ``worker`` the question's frames and wait until its namespace is built."""
        try:
            self._frames.save(worker.scratch)
            worker.send(self._init.header())
            worker.wait_for("initialized", INIT_TIMEOUT_S)
        except BaseException:
            worker.close()
            raise
        return worker

    @property
    def pid(self) -> int:
        """Process id of the current worker (it changes after a restart)."""
        return self._worker.pid

    @property
    def sandbox_layers(self) -> list[SandboxLayer]:
        """The OS sandbox layers of the current worker (empty when kernel.os_sandbox is off)."""
        return list(self._worker.layers)

    @property
    def rlimits(self) -> dict[str, int]:
        """The resource limits the current worker set on itself."""
        return dict(self._worker.rlimits)

    def close(self) -> None:
        """Kill the worker and delete its scratch dir; a running execute() returns CANCELLED."""
        if not self._closed:
            self._closed = True
            self._worker.close()
            self._pool.forget(self)

    def __enter__(self) -> "KernelSession":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # execution
    def execute(self, code: str, *, timeout_s: float, cancel: CancelToken | None = None) -> CellResult:
        """Run one cell in the persistent namespace and report what happened (never raises for cell errors)."""
        started = time.monotonic()
        if self._closed:
            raise RuntimeError("this kernel session is closed")
        if self._config.static_check:
            violations = check_cell(code)
            if violations:
                return CellResult(status=CellStatus.REJECTED, error=rejection_message(violations),
                                  duration_s=time.monotonic() - started)
        restart = None
        if self._pending_restart or not self._worker.alive():
            reason = self._pending_restart or f"the kernel process had died ({self._worker.describe_exit()})"
            restart = self._restart(reason)
        run = self._run(code, timeout_s, cancel)
        if run.worker_lost and run.status is CellStatus.CANCELLED:
            self._pending_restart = run.worker_lost  # restart when (if) the next cell comes
        elif run.worker_lost:
            restart = self._restart(run.worker_lost)
        elif run.status is CellStatus.OK:
            self._history.append(CellRecord(code, timeout_s, run.host_calls))
        return CellResult(status=run.status, stdout=run.stdout, stderr=run.stderr, error=run.error,
                          variables=run.variables, images=run.images, answer=run.answer, restart=restart,
                          duration_s=time.monotonic() - started)

    def _run(self, code: str, timeout_s: float, cancel: CancelToken | None, replay: _Replay | None = None) -> _Run:
        """Send one cell and follow it to its end: result, timeout, cancel, crash or session close."""
        worker = self._worker
        run = _Run(run_id=next(self._run_ids))
        worker.send({"type": "execute", "code": code, "quiet": replay is not None})
        deadline = time.monotonic() + timeout_s
        stop, stopped_at, grace = "", 0.0, 0.0
        while True:
            now = time.monotonic()
            if not stop:
                if self._closed:
                    stop, grace = "closed", 0.0
                elif cancel is not None and cancel.cancelled:
                    stop, grace = "cancelled", min(self._config.interrupt_grace_s, CANCEL_GRACE_S)
                elif now >= deadline:
                    stop, grace = "timeout", self._config.interrupt_grace_s
                if stop:
                    worker.interrupt()
                    stopped_at = now
            elif now - stopped_at >= grace:
                worker.kill()
                return self._killed(run, stop, timeout_s)
            try:
                event = worker.events.get(timeout=POLL_S)
            except queue.Empty:
                if not worker.alive():  # normally the reader reports the closed channel first
                    return self._died(run, worker, stop, "channel closed")
                continue
            if event.kind == "closed":
                return self._died(run, worker, stop, event.detail)
            if event.kind == "host_done":
                if event.detail.run_id == run.run_id:  # else a call that an interrupt abandoned
                    self._reply(worker, run, event.detail)
            elif event.message.type == "image":
                self._collect_image(run, event.message)
            elif event.message.type == "host_request":
                self._dispatch(worker, run, event.message, replay)
            elif event.message.type == "result":
                return self._finish(run, event.message.header, stop, timeout_s)

    def _finish(self, run: _Run, header: dict, stop: str, timeout_s: float) -> _Run:
        """Fill ``run`` from the worker's result message."""
        run.stdout = _text(header, "stdout")
        run.stderr = "\n".join(filter(None, [_text(header, "stderr").rstrip("\n"), run.stderr.strip()]))
        error = _text(header, "error")
        variables = header.get("variables") if isinstance(header.get("variables"), dict) else {}
        run.variables = VariableChanges(new=_summaries(variables.get("new")), changed=_summaries(variables.get("changed")),
                                        deleted=_names(variables.get("deleted")))
        self._names = set(_names(header.get("names")))
        where = "\n".join(error.splitlines()[1:])
        if stop == "timeout":
            run.status = CellStatus.TIMEOUT
            run.error = (f"TimeoutError: the cell ran past its {timeout_s:g} s limit and was interrupted; "
                         f"variables from earlier cells are intact\n{where}").rstrip()
        elif stop in ("cancelled", "closed"):
            run.status = CellStatus.CANCELLED
            run.error = f"the question was cancelled while this cell ran\n{where}".rstrip()
        elif run.answer is not None:
            run.status = CellStatus.ANSWERED
        elif header.get("status") == "ok":
            run.status = CellStatus.OK
        else:
            run.status, run.error = CellStatus.ERROR, error or "the cell failed without an error message"
        return run

    def _killed(self, run: _Run, stop: str, timeout_s: float) -> _Run:
        """The worker ignored the interrupt and was killed."""
        if stop == "timeout":
            run.status = CellStatus.TIMEOUT
            run.error = (f"TimeoutError: the cell ran past its {timeout_s:g} s limit and did not stop when "
                         "interrupted; the kernel was restarted")
            run.worker_lost = f"timeout: the cell did not stop within {self._config.interrupt_grace_s:g} s of an interrupt"
        else:
            run.status = CellStatus.CANCELLED
            run.error = "the question was cancelled while this cell ran; the kernel was stopped"
            run.worker_lost = "cancelled: the cell did not stop when interrupted"
        return run

    def _died(self, run: _Run, worker: WorkerProcess, stop: str, detail: object) -> _Run:
        """The channel closed mid-cell: a crash, or our own kill after close()."""
        if stop == "closed" or self._closed:
            run.status, run.error = CellStatus.CANCELLED, "the kernel session was closed while this cell ran"
            run.worker_lost = "the session was closed"
            return run
        how = worker.describe_exit()  # the launcher ends the way the worker did, a moment after the channel closed
        worker.kill()
        if how == "still running":  # it closed the channel but lived on
            how = f"closed its channel and was {worker.describe_exit()}"
        if detail != "channel closed":
            how += f" after a {detail}"
        hint = ""
        if "SIGXCPU" in how:
            hint = f"; the kernel's CPU time limit of {self._config.cpu_limit_s} s is used up"
        elif "SIGKILL" in how:
            hint = "; it may have run out of memory"
        run.status = CellStatus.CRASHED
        run.error = f"KernelCrashed: the kernel process died while running this cell ({how}{hint}); it was restarted"
        run.worker_lost = f"crash: kernel process {how}"
        return run

    # images and host calls
    def _collect_image(self, run: _Run, message: protocol.Message) -> None:
        """Keep a shown image after checking that it is a PNG within the size limit."""
        png = message.blobs.get("png", b"")
        size = png_size(png)
        if size is None or max(size) > self._init.image_max_side:
            run.stderr += f"\n[show(): an image was dropped: not a PNG of at most {self._init.image_max_side} px]"
        elif len(run.images) == MAX_IMAGES_PER_CELL:
            run.images_dropped += 1
            if run.images_dropped == 1:
                run.stderr += f"\n[show(): only the first {MAX_IMAGES_PER_CELL} images of a cell are kept]"
        else:
            label = message.header.get("label")
            run.images.append(ShownImage(label=label[:200] if isinstance(label, str) else "", png=png,
                                         width=size[0], height=size[1]))

    def _dispatch(self, worker: WorkerProcess, run: _Run, message: protocol.Message, replay: _Replay | None) -> None:
        """Answer a host request: from the replay record, or by a handler on its own thread."""
        request_id = message.header.get("id")
        service = message.header.get("service")
        payload = message.header.get("payload")
        if not isinstance(service, str) or not isinstance(payload, dict):
            self._reply(worker, run, _HostDone(run.run_id, request_id, str(service), None, "malformed host request"))
            return
        if replay is not None:
            call = replay.next(service)
            self._reply(worker, run, _HostDone(run.run_id, request_id, service, call.reply, call.error))
            return
        request = HostRequest(service=service, payload=payload, arrays=message.arrays)
        threading.Thread(target=self._serve_request, args=(worker, run.run_id, request_id, request),
                         name=f"kernel-host-{service}", daemon=True).start()

    def _serve_request(self, worker: WorkerProcess, run_id: int, request_id: object, request: HostRequest) -> None:
        """Handler thread: call the service and queue its reply (or error) for the session loop."""
        reply, error = None, ""
        handler = self._handlers.get(request.service)
        if handler is None:
            error = f"unknown host service '{request.service}'; available: {', '.join(sorted(self._handlers))}"
        else:
            try:
                reply = handler(request)
                if not isinstance(reply, HostReply):
                    raise TypeError(f"the handler returned {type(reply).__name__}, not HostReply")
            except HostError as exc:
                error = str(exc) or f"host service '{request.service}' refused the call"
            except Exception as exc:  # a broken handler must not hang the kernel
                log.exception("host service %s failed", request.service)
                error = f"host service '{request.service}' failed: {type(exc).__name__}: {exc}"
        worker.events.put(Event("host_done", detail=_HostDone(run_id, request_id, request.service, reply, error)))

    def _reply(self, worker: WorkerProcess, run: _Run, done: _HostDone) -> None:
        """Send a host reply to the worker, record it for replay and note an accepted answer."""
        reply, error = done.reply, done.error
        if reply is not None and not error:
            try:
                frame = protocol.encode({"type": "host_reply", "id": done.request_id, "ok": True,
                                         "payload": reply.payload}, reply.arrays)
            except (TypeError, ValueError) as exc:
                reply, error = None, f"host service '{done.service}' returned a reply that cannot be sent: {exc}"
        run.host_calls.append(HostCallRecord(done.service, reply, error))
        if reply is None or error:
            worker.send({"type": "host_reply", "id": done.request_id, "ok": False, "error": error or "no reply"})
            return
        if done.service == ANSWER_SERVICE and reply.payload.get("accepted"):
            answer = reply.payload.get("answer")
            run.answer = dict(answer) if isinstance(answer, dict) else {}
        worker.send_frame(frame)

    # restarts
    def _fresh_worker(self) -> None:
        """Replace the worker with a fresh one from the pool, holding the same frames."""
        self._worker.close()
        self._names = set()
        self._worker = self._attach(self._pool.acquire())

    def _restart(self, reason: str) -> RestartReport:
        """Start a fresh worker and, if configured, silently re-run the earlier successful cells.

        A cell that fails when re-run is dropped from the history and the rest still run; the
        report compares the variables before and after.
        """
        before = set(self._names)
        self._pending_restart = ""
        self._fresh_worker()
        kept: list[CellRecord] = []
        if self._config.restore_after_restart:
            for record in self._history:
                run = self._run(record.code, record.timeout_s, None, _Replay(record.host_calls))
                if run.worker_lost:  # the re-run itself hung or crashed: start over, empty
                    self._fresh_worker()
                    kept = []
                    break
                if run.status is CellStatus.OK:
                    kept.append(record)
        self._history = kept
        return RestartReport(reason=reason, restored=sorted(before & self._names), lost=sorted(before - self._names))
