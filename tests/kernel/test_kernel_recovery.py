"""Timeouts, kills, crashes, memory exhaustion and cancellation, with restart and restore."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from kernel_support import HostLog

from spatialclaw_ros.cancel import CancelToken
from spatialclaw_ros.config import KernelConfig
from spatialclaw_ros.kernel.host import HostReply, HostRequest
from spatialclaw_ros.kernel.pool import KernelPool
from spatialclaw_ros.kernel.results import CellStatus

SWALLOWING_LOOP = "import time\nwhile True:\n    try:\n        time.sleep(5)\n    except KeyboardInterrupt:\n        pass"


def wait_until_dead(pid: int) -> None:
    """Wait until ``pid`` is a zombie (dead, not yet reaped by its Popen) or gone."""
    for _ in range(200):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
        except FileNotFoundError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not die")


def ok(session, code: str):
    result = session.execute(code, timeout_s=20)
    assert result.status is CellStatus.OK, result.error
    return result


def test_infinite_loop_times_out_and_keeps_the_namespace(pool, frames):
    with pool.session(frames, {}) as session:
        ok(session, "kept = 41")
        pid = session.pid
        result = session.execute("spin = 0\nwhile True:\n    spin += 1", timeout_s=1.0)
        assert result.status is CellStatus.TIMEOUT
        assert result.error.startswith("TimeoutError: the cell ran past its 1 s limit and was interrupted; "
                                       "variables from earlier cells are intact")
        assert "cell line 3: spin += 1" in result.error or "cell line 2: while True:" in result.error
        assert result.restart is None
        assert session.pid == pid
        assert ok(session, "kept + 1").stdout == "42\n"
        assert int(ok(session, "spin").stdout) > 0  # the interrupted cell's work is still there


def test_timeout_while_waiting_for_a_host_call_keeps_the_kernel_usable(pool, frames):
    release = threading.Event()

    def slow_locate(request: HostRequest) -> HostReply:
        release.wait(10)
        return HostReply({"result": [1, 2]})

    def broken_ask(request: HostRequest):
        return {"result": "a dict, not a HostReply"}

    with pool.session(frames, {"vlm.locate": slow_locate, "vlm.ask_with_thinking": broken_ask}) as session:
        ok(session, "kept = 3")
        result = session.execute("xy = vlm.locate(InputImages[0], 'cup')", timeout_s=0.5)
        assert result.status is CellStatus.TIMEOUT
        assert result.restart is None
        release.set()  # the late reply belongs to the interrupted cell and is dropped
        assert ok(session, "kept").stdout == "3\n"
        assert ok(session, "xy = vlm.locate(InputImages[0], 'cup')\nxy").stdout == "[1, 2]\n"
        broken = session.execute("vlm.ask_with_thinking(InputImages[0], 'room?')", timeout_s=20)
        assert broken.error.startswith("RuntimeError: host service 'vlm.ask_with_thinking' failed: TypeError: "
                                       "the handler returned dict, not HostReply")


def test_swallowed_interrupt_is_killed_restarted_and_restored(pool, frames):
    host = HostLog()
    with pool.session(frames, host.handlers()) as session:
        ok(session, "a = 5\nb = [1, 2]")
        ok(session, "where = vlm.locate(InputImages[0], 'the cup')\nshow(InputImages[0])")
        failing = session.execute("broken = undefined_name", timeout_s=20)
        assert failing.status is CellStatus.ERROR
        old_pid = session.pid
        calls_before = len(host.requests)

        result = session.execute(SWALLOWING_LOOP, timeout_s=0.5)

        assert result.status is CellStatus.TIMEOUT
        assert "did not stop when interrupted; the kernel was restarted" in result.error
        assert result.restart is not None
        assert result.restart.reason.startswith("timeout: the cell did not stop within 0.5 s")
        assert result.restart.restored == ["a", "b", "where"]
        assert result.restart.lost == []
        assert session.pid != old_pid
        assert ok(session, "print(a, b, where)").stdout == "5 [1, 2] [250, 750]\n"
        assert len(host.requests) == calls_before  # the re-run was answered from the record


def test_restart_without_restore_reports_what_was_lost(frames):
    config = KernelConfig(pool_size=1, memory_limit_mb=2048, interrupt_grace_s=0.5, restore_after_restart=False)
    with KernelPool(config) as pool, pool.session(frames, {}) as session:
        ok(session, "a = 1\nb = 2")
        result = session.execute(SWALLOWING_LOOP, timeout_s=0.5)
        assert result.status is CellStatus.TIMEOUT
        assert result.restart.restored == []
        assert result.restart.lost == ["a", "b"]
        assert session.execute("a", timeout_s=20).error.startswith("NameError: name 'a' is not defined")


def test_worker_killed_from_outside_is_a_crash_and_is_restored(pool, frames):
    with pool.session(frames, {}) as session:
        ok(session, "survivor = 'yes'")
        killer = threading.Timer(0.5, os.kill, (session.pid, signal.SIGKILL))
        killer.start()
        result = session.execute("import time\ntime.sleep(30)", timeout_s=60)
        killer.join()
        assert result.status is CellStatus.CRASHED
        assert "killed by SIGKILL" in result.error
        assert result.duration_s < 30  # noticed at once, not at the cell's timeout
        assert result.restart.reason == "crash: kernel process killed by SIGKILL"
        assert result.restart.restored == ["survivor"]
        assert ok(session, "survivor").stdout == "'yes'\n"


def test_worker_dead_between_cells_is_restarted_by_the_next_cell(pool, frames):
    with pool.session(frames, {}) as session:
        ok(session, "value = 3")
        os.kill(session.pid, signal.SIGKILL)
        wait_until_dead(session.pid)
        result = session.execute("value * 2", timeout_s=20)
        assert result.status is CellStatus.OK
        assert result.stdout == "6\n"
        assert result.restart.reason == "the kernel process had died (killed by SIGKILL)"
        assert result.restart.restored == ["value"]


@pytest.fixture(scope="module")
def unchecked_1gb_pool():
    """Static check off, OS sandbox on: code the check would refuse reaches the OS layer."""
    kernel_pool = KernelPool(KernelConfig(pool_size=1, memory_limit_mb=1024, static_check=False, interrupt_grace_s=0.5))
    yield kernel_pool
    kernel_pool.close()


def test_real_segfault_is_a_crash(unchecked_1gb_pool, frames):
    with unchecked_1gb_pool.session(frames, {}) as session:
        ok(session, "before = 1")
        result = session.execute("import faulthandler\nfaulthandler._sigsegv()", timeout_s=60)
        assert result.status is CellStatus.CRASHED
        assert "killed by SIGSEGV" in result.error
        assert result.duration_s < 30
        assert result.restart.restored == ["before"]


def test_memory_exhaustion_is_a_memory_error_and_the_kernel_stays_usable(unchecked_1gb_pool, frames):
    with unchecked_1gb_pool.session(frames, {}) as session:
        pid = session.pid
        result = session.execute("chunks = []\nwhile True:\n    chunks.append(np.ones(10**7))", timeout_s=60)
        assert result.status is CellStatus.ERROR
        assert result.error.startswith("MemoryError: the cell ran out of memory (kernel limit of 1024 MB)")
        assert "cell line 3: chunks.append(np.ones(10**7))" in result.error
        assert ok(session, "del chunks\nint(np.ones(1000).sum())").stdout == "1000\n"
        assert session.pid == pid


def test_cancel_interrupts_the_cell_and_keeps_the_namespace(pool, frames):
    with pool.session(frames, {}) as session:
        ok(session, "kept = 'still here'")
        token = CancelToken()
        canceller = threading.Timer(0.5, token.cancel, ("user pressed stop",))
        canceller.start()
        result = session.execute("import time\ntime.sleep(30)", timeout_s=60, cancel=token)
        canceller.join()
        assert result.status is CellStatus.CANCELLED
        assert result.duration_s < 30
        assert result.restart is None
        assert ok(session, "kept").stdout == "'still here'\n"


def test_cancel_of_a_cell_that_ignores_interrupts_stops_the_kernel(pool, frames):
    with pool.session(frames, {}) as session:
        ok(session, "kept = 1")
        token = CancelToken()
        canceller = threading.Timer(0.3, token.cancel)
        canceller.start()
        result = session.execute(SWALLOWING_LOOP, timeout_s=60, cancel=token)
        canceller.join()
        assert result.status is CellStatus.CANCELLED
        assert result.duration_s < 30
        follow_up = session.execute("kept", timeout_s=20)
        assert follow_up.stdout == "1\n"
        assert follow_up.restart.reason == "cancelled: the cell did not stop when interrupted"
        assert follow_up.restart.restored == ["kept"]
