"""The trace writer is off the caller's path: events return while the disk is blocked, keep their order, are
flushed at close and at interpreter exit (a crash included), and a disk that falls far behind drops, never waits."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from fault_support import strict_lines

from spatialclaw_ros.session_log import SessionLog, read_trace
from spatialclaw_ros.session_log.log import MB, PENDING_MAX_BYTES, TRACE_FILE


def blocked_trace(directory):
    """A session directory whose trace.jsonl is a FIFO nobody reads yet: any write to it blocks."""
    (directory / "images").mkdir(parents=True)
    os.mkfifo(directory / TRACE_FILE)
    return directory


def drain(path, into: bytearray, chunk_delay_s: float = 0.0) -> threading.Thread:
    """Read the FIFO at ``path`` to its end in a thread (slowly, with ``chunk_delay_s`` between reads)."""
    def read():
        with open(path, "rb") as fifo:
            while chunk := fifo.read(65536):
                into.extend(chunk)
                time.sleep(chunk_delay_s)
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_events_return_while_the_disk_is_blocked_and_keep_their_order(tmp_path):
    directory = blocked_trace(tmp_path / "s")
    log = SessionLog(directory)
    done = threading.Event()

    def produce():
        for number in range(2000):
            log.event("cell", step=number, stdout="y" * 1000)
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    assert done.wait(30), "event() waited for a disk that never took a byte"
    assert not log.flush(timeout_s=0.2)  # nothing could be written yet
    received = bytearray()
    reader = drain(directory / TRACE_FILE, received, chunk_delay_s=0.001)
    log.close()
    reader.join(30)
    lines = received.decode("utf-8").splitlines()
    assert [int(line.split('"step":')[1].split(",")[0]) for line in lines] == list(range(2000))
    assert log.error == ""


def test_a_disk_that_falls_far_behind_drops_instead_of_waiting(tmp_path):
    directory = blocked_trace(tmp_path / "s")
    log = SessionLog(directory, max_bytes=4096 * MB)
    started = time.monotonic()
    for number in range(PENDING_MAX_BYTES // 60_000 + 100):
        log.event("cell", step=number, stdout="z" * 60_000)
    assert time.monotonic() - started < 60
    received = bytearray()
    reader = drain(directory / TRACE_FILE, received)
    log.close()
    reader.join(30)
    assert "items" in log.error and "not written: the disk fell 64 MB behind" in log.error
    kinds = [line.split('"kind":"')[1].split('"')[0] for line in received.decode("utf-8").splitlines()]
    total = PENDING_MAX_BYTES // 60_000 + 100
    assert 900 < kinds.count("cell") < total  # up to the 64 MB the writer may hold
    assert kinds.count("cell") + kinds.count("dropped") == total  # the rest each replaced by a note


def test_queued_events_are_written_at_interpreter_exit(tmp_path):
    """A process that crashes with an uncaught exception, never closing its log, still leaves every event."""
    program = ("import sys\n"
               "from spatialclaw_ros.session_log import SessionLog\n"
               f"log = SessionLog({str(tmp_path / 's')!r})\n"
               "for number in range(500):\n"
               "    log.event('cell', step=number, stdout='w' * 2000)\n"
               "raise RuntimeError('crashed before closing the log')\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "RuntimeError: crashed before closing the log" in done.stderr
    events = strict_lines(tmp_path / "s" / TRACE_FILE)
    assert [event["step"] for event in events] == list(range(500))


def test_many_threads_and_a_final_result(tmp_path):
    log = SessionLog(tmp_path / "s")
    threads = [threading.Thread(target=lambda i=i: [log.event("vlm", step=i, n=k) for k in range(50)])
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.finish({"status": "answered"}) == ""
    events = read_trace(tmp_path / "s")
    assert len(events) == 401 and events[-1]["kind"] == "result"
    for i in range(8):  # each thread's events in its own order
        assert [event["n"] for event in events if event.get("step") == i] == list(range(50))
    log.event("late", step=1)  # after the end: counted, never written, never raised
    assert len(read_trace(tmp_path / "s")) == 401 and "the session log was already closed" in log.error
