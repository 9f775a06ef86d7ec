"""The kernel worker process: imports, sandboxes itself, then runs one question's cells.

Started by ``WorkerProcess`` through the launcher (launcher.py: its own PID namespace) as ``python -m
spatialclaw_ros.kernel.worker --fd N --scratch DIR --limits JSON --policy JSON --launch-report JSON``. Sequence:
heavy imports, runtime guards, OS sandbox (a required layer that fails ends it with EXIT_SANDBOX_MISSING), ``ready``
with every layer's status; then ``init`` (frames are in the scratch dir) builds the namespace; then one ``execute``
after another until the parent goes away.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import sys
import traceback
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import scipy.interpolate  # noqa: F401 - warm imports the agent's cells commonly need
import scipy.linalg  # noqa: F401
import scipy.ndimage  # noqa: F401
import scipy.optimize  # noqa: F401
import scipy.signal  # noqa: F401
import scipy.spatial  # noqa: F401
import scipy.stats  # noqa: F401
from matplotlib import font_manager  # noqa: F401 - builds the font list before the sandbox

from .. import tools  # noqa: F401 - the tool modules load before the sandbox
from ..frames import FrameSet
from . import guards, variables
from .execution import run_cell
from .namespace import KernelServices, bind_services, build_namespace, show_open_figures
from .start import INIT, KernelInit
from .layers import LayerReport, SandboxLayer, SandboxMissing, SandboxPolicy, die_with_parent, exit_missing
from .sandbox import SandboxLimits, apply_sandbox
from .worker_channel import WorkerChannel


class InterruptGate:
    """SIGINT raises KeyboardInterrupt only while the gate is open (while agent code runs)."""

    def __init__(self) -> None:
        self._open = False
        signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame) -> None:
        if self._open:
            raise KeyboardInterrupt

    @contextmanager
    def opened(self):
        """Open the gate for the duration of the block."""
        self._open = True
        try:
            yield
        finally:
            self._open = False


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="inherited socket of the channel")
    parser.add_argument("--scratch", type=Path, required=True, help="the only writable directory")
    parser.add_argument("--limits", type=json.loads, required=True, help="SandboxLimits as JSON")
    parser.add_argument("--policy", type=SandboxPolicy.from_json, help="SandboxPolicy as JSON; none: no OS sandbox")
    parser.add_argument("--launch-report", type=json.loads, default=[], help="the launcher's layers (JSON list)")
    return parser.parse_args(argv)


def sandbox(args: argparse.Namespace, scratch: Path) -> dict:
    """Apply the OS sandbox the policy asks for; the report for ``ready`` (ends the process if a layer is missing)."""
    if args.policy is None:
        return {"os_sandbox": False, "layers": [], "rlimits": {}}
    report = LayerReport(args.policy, [SandboxLayer.from_json(layer) for layer in args.launch_report])
    try:
        rlimits = apply_sandbox(scratch, SandboxLimits(**args.limits), report)
    except SandboxMissing as error:
        exit_missing(error)
    return {"os_sandbox": True, "layers": report.to_list(), "rlimits": rlimits}


def serve(channel: WorkerChannel, scratch: Path, limits: SandboxLimits, gate: InterruptGate) -> None:
    """Build the question's namespace on ``init``, then answer ``execute`` messages until EOF."""
    message = channel.receive()
    if message.type != INIT:
        raise RuntimeError(f"expected '{INIT}' from the parent, got '{message.type}'")
    init = KernelInit.from_header(message.header)
    services = KernelServices(
        host=channel,
        emit_image=lambda label, png: channel.send({"type": "image", "label": label}, blobs={"png": png}),
        image_max_side=init.image_max_side,
    )
    try:
        bind_services(services)
        namespace = build_namespace(FrameSet.load(scratch), channel, init.backends)
    except Exception:
        channel.send({"type": "init_error", "error": traceback.format_exc(limit=-3)})
        return
    tracker = variables.VariableTracker(dict(namespace))
    tracker.update(namespace)
    channel.send({"type": "initialized"})
    cell = 0
    while True:
        message = channel.receive()
        if message.type != "execute":
            continue  # a late reply to a host call that an interrupt abandoned
        cell += 1
        services.quiet = bool(message.header.get("quiet"))
        outcome = run_cell(message.header["code"], namespace, f"<cell {cell}>", gate.opened, limits.memory_mb)
        try:
            with gate.opened():
                changes = tracker.update(namespace, message.header["code"])
        except KeyboardInterrupt:
            changes = {"new": [], "changed": [], "deleted": []}
        channel.send({
            "type": "result", "status": outcome.status, "stdout": outcome.stdout, "stderr": outcome.stderr,
            "error": outcome.error, "variables": changes, "names": tracker.names,
        })


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process."""
    args = _arguments(argv)
    scratch = args.scratch.resolve()
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != scratch]  # `-m` put the cwd first
    die_with_parent()
    faulthandler.enable()
    cv2.setNumThreads(0)
    plt.show = show_open_figures
    channel = WorkerChannel(Connection(args.fd))
    gate = InterruptGate()
    guards.install()
    channel.send({"type": "ready", "pid": os.getpid(), "sandbox": sandbox(args, scratch)})
    try:
        serve(channel, scratch, SandboxLimits(**args.limits), gate)
    except EOFError:
        pass  # the parent closed the channel: the question is over
    return 0


if __name__ == "__main__":
    sys.exit(main())
