"""Starts a kernel worker where it can see and name no other process: in a PID namespace of its own.

Run by the parent as ``python -m spatialclaw_ros.kernel.launcher --policy JSON -- WORKER COMMAND ...``; it imports
the standard library only. Steps:

1. A PID namespace for this process's children: as root directly, otherwise (or where root lacks the privilege,
   as in a container) inside a new user namespace that maps only the caller's own uid and gid: Linux's
   unprivileged user namespaces, which Ubuntu's AppArmor may forbid; then the layer is missing.
2. Two children in it: PID 1, which only reaps (so the worker's own signals behave as for any process), and the
   worker (PID 2, its own session), which executes the worker command with ``--launch-report`` appended.
3. This process stays outside as the worker's supervisor: SIGINT is passed on to the worker, and it ends the
   way the worker ended (same exit status, or killed by the same signal), so the parent sees the worker's fate.

Inside, ``getppid()`` is 0 and no pid names a process outside: kill, prlimit, setpriority, sched_setaffinity,
ioprio_set, ptrace and fcntl(F_SETOWN) cannot reach the parent, whatever the static check missed.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import signal
import sys

from .layers import LayerReport, SandboxMissing, SandboxPolicy, die_with_parent, exit_missing, libc

CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
PID_NAMESPACE = "pid_namespace"


def _unshare(flags: int) -> None:
    if libc().unshare(flags) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def _map_own_ids(uid: int, gid: int) -> None:
    """In a fresh user namespace: map only our own uid and gid (what an unprivileged process may map)."""
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as file:
            file.write(text)


def own_pid_namespace() -> str:
    """Make this process's next children the members of a new PID namespace; returns how (OSError when impossible)."""
    failures = []
    if os.geteuid() == 0:
        try:
            _unshare(CLONE_NEWPID)
            return "own PID namespace"
        except OSError as error:
            failures.append(f"unshare(CLONE_NEWPID): {error.strerror}")
    uid, gid = os.geteuid(), os.getegid()
    try:
        _unshare(CLONE_NEWUSER | CLONE_NEWPID)
        _map_own_ids(uid, gid)
    except OSError as error:
        failures.append(f"unshare(CLONE_NEWUSER|CLONE_NEWPID): {error.strerror}")
        raise OSError("; ".join(failures) + " (unprivileged user namespaces are off: see the sysctls user."
                      "max_user_namespaces and, on Ubuntu, kernel.apparmor_restrict_unprivileged_userns)") from None
    return f"own user namespace (only uid {uid} mapped) and PID namespace"


def _reap_forever() -> None:
    """PID 1 of the namespace: reap whatever ends up here, nothing else (its death ends the namespace)."""
    die_with_parent()
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    signal.signal(signal.SIGCHLD, lambda *_: None)  # so pause() wakes for an orphan to reap
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            signal.pause()


def _start_worker(command: list[str], report: LayerReport) -> None:
    """In the worker child: a session of its own, death with the supervisor, then the worker command."""
    os.setsid()
    die_with_parent()
    try:
        os.execv(command[0], [*command, "--launch-report", json.dumps(report.to_list())])
    except OSError as error:
        print(f"kernel launcher: cannot execute {command[0]}: {error.strerror}", file=sys.stderr, flush=True)
        os._exit(127)


def _forward(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _supervise(worker: int, init: int | None) -> None:
    """Pass SIGINT on, wait for the worker, end the namespace, then end the way the worker ended."""
    signal.signal(signal.SIGINT, lambda *_: _forward(worker, signal.SIGINT))
    signal.signal(signal.SIGTERM, lambda *_: _forward(worker, signal.SIGKILL))
    _, status = os.waitpid(worker, 0)
    if init is not None:
        _forward(init, signal.SIGKILL)
        os.waitpid(init, 0)
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        if signum not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
        os.kill(os.getpid(), signum)
    os._exit(os.waitstatus_to_exitcode(status))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policy", type=SandboxPolicy.from_json, required=True, help="SandboxPolicy as JSON")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the worker command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # mirroring a worker's SIGSEGV must not dump a core here
    die_with_parent()
    report = LayerReport(args.policy)
    try:
        try:
            how = own_pid_namespace()
        except OSError as error:
            report.add(PID_NAMESPACE, False, str(error))
        else:
            report.add(PID_NAMESPACE, True, f"{how}: the kernel sees and can name no other process")
    except SandboxMissing as error:
        exit_missing(error)
    init = os.fork() if report.layers[0].active else None
    if init == 0:
        _reap_forever()
    worker = os.fork()
    if worker == 0:
        _start_worker(command, report)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the worker alone holds the channel
    _supervise(worker, init)


if __name__ == "__main__":
    main()
