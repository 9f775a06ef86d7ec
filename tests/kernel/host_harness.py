"""Stand-in for a process that owns a kernel (``spatialclaw ask``, the ROS node), run as its own process by
test_kernel_isolation.py so that an attack that got through would harm it, not pytest.

It starts a kernel with the static check OFF, runs every attack of host_escapes.py in one session, and after each
records its own state (every rlimit, nice value, CPU affinity, scheduling policy and priority, I/O priority,
process group and session) and every signal it received, then prints one JSON list of outcomes on stdout.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from host_escapes import HOST_ESCAPES, PRELUDE  # noqa: E402
from kernel_support import make_frames  # noqa: E402

from spatialclaw_ros.config import KernelConfig  # noqa: E402
from spatialclaw_ros.kernel.pool import KernelPool  # noqa: E402

#: Signals a kernel may cause in its owner legitimately: a child process ended, a write to a closed channel.
EXPECTED_SIGNALS = {signal.SIGCHLD, signal.SIGPIPE}
SETTLE_S = 0.2  # for a signal an attack set up to arrive late (SIGIO after a write)
IOPRIO_GET, IOPRIO_WHO_PROCESS = 252, 1

received: list[str] = []


def record(signum: int, frame) -> None:
    received.append(signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else str(signum))


def state() -> dict:
    """What an attack on this process could change."""
    libc = ctypes.CDLL(None, use_errno=True)
    return {
        "rlimits": {name: resource.getrlimit(getattr(resource, name)) for name in dir(resource)
                    if name.startswith("RLIMIT_")},
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "affinity": sorted(os.sched_getaffinity(0)),
        "scheduler": os.sched_getscheduler(0),
        "sched_priority": os.sched_getparam(0).sched_priority,
        "ioprio": libc.syscall(IOPRIO_GET, IOPRIO_WHO_PROCESS, 0),
        "process_group": os.getpgid(0),
        "session": os.getsid(0),
    }


def main() -> None:
    for signum in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP} - EXPECTED_SIGNALS:
        signal.signal(signum, record)
    placeholders = {"parent_pid": os.getpid(), "parent_pgid": os.getpgid(0), "parent_uid": os.getuid()}
    before = state()
    outcomes = []
    config = KernelConfig(pool_size=1, memory_limit_mb=2048, static_check=False)
    with KernelPool(config) as pool, pool.session(make_frames(), {}) as session:
        for escape in HOST_ESCAPES:
            result = session.execute((PRELUDE + escape.code + "\nprint('ESCAPED')").format(**placeholders),
                                     timeout_s=20)
            time.sleep(SETTLE_S)
            after = state()
            outcomes.append({
                "description": escape.description, "status": result.status.value, "error": result.error,
                "stdout": result.stdout, "changed": {key: [before[key], after[key]] for key in before
                                                     if before[key] != after[key]},
                "signals": list(received)})
            received.clear()
        alive = session.execute("print('kernel still serving')", timeout_s=20).stdout
    print(json.dumps({"outcomes": outcomes, "last_cell": alive}))


if __name__ == "__main__":
    main()
