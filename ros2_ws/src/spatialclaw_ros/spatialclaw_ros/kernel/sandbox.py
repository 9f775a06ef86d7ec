"""The worker's OS-level sandbox, applied after its imports and before any agent code runs.

Layers, each reported and skipped with the reason where the kernel lacks it:
Landlock (read-only Python/system files, read-write scratch dir, nothing else), a seccomp filter
(no sockets, processes, exec, signals to others, tracing, mounts, kernel modules), non-dumpable,
and rlimits (address space, CPU time, file size, no new processes, no core files).
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

# Both load native libraries (libseccomp is located with ldconfig), so they must be imported
# before Landlock forbids executing anything. Missing pieces are reported, not fatal.
try:
    import landlock
    from landlock import FSAccess
except Exception as exc:  # pragma: no cover - depends on the installation
    landlock, FSAccess, LANDLOCK_MISSING = None, None, f"unavailable: {exc}"
else:
    LANDLOCK_MISSING = ""
try:
    import pyseccomp as seccomp
except Exception as exc:  # pragma: no cover - no libseccomp on this system
    seccomp, SECCOMP_MISSING = None, f"unavailable: {exc}"
else:
    SECCOMP_MISSING = ""

PR_SET_DUMPABLE = 4
PR_SET_PDEATHSIG = 1
CLONE_THREAD = 0x00010000
MB = 1024 * 1024

#: System paths the worker may read (besides the Python installation and sys.path).
SYSTEM_READ_PATHS = ("/usr", "/lib", "/lib64", "/etc/ld.so.cache", "/usr/share", "/dev/urandom")
#: Files the worker may read and write.
SYSTEM_READ_WRITE_FILES = ("/dev/null",)

#: Syscalls refused with EPERM outright.
DENIED_SYSCALLS = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    "execve", "execveat", "fork", "vfork",
    "ptrace", "process_vm_readv", "process_vm_writev",
    "tkill", "pidfd_open", "pidfd_send_signal", "pidfd_getfd",
    "mount", "umount2", "unshare", "setns", "chroot", "pivot_root",
    "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "init_module", "finit_module",
    "io_uring_setup", "userfaultfd",
)
#: Signal-sending syscalls allowed only when the target (argument 0) is this process.
SELF_ONLY_SYSCALLS = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")


@dataclass
class SandboxLimits:
    """Resource limits of one worker (from KernelConfig)."""

    memory_mb: int
    cpu_s: int
    file_size_mb: int


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this worker if its parent dies (not a signal the filter sees)."""
    _libc().prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)


def _read_paths(scratch: Path) -> list[str]:
    """Existing paths the worker needs to read: the Python installation, sys.path, system libraries."""
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path, *SYSTEM_READ_PATHS]
    paths = []
    for path in candidates:
        if path and os.path.exists(path) and Path(path).resolve() != scratch.resolve() and path not in paths:
            paths.append(path)
    return paths


def _apply_landlock(scratch: Path) -> dict:
    """Restrict file access: read-only system and Python paths, read-write scratch, nothing else."""
    if landlock is None:
        return {"landlock_abi": None, "landlock": LANDLOCK_MISSING}
    try:
        abi = landlock.landlock_abi_version()
    except Exception as exc:  # not Linux, Landlock not built in or disabled at boot
        return {"landlock_abi": None, "landlock": f"unavailable: {exc}"}
    file_rights = FSAccess.all_file()
    read_dir = FSAccess.READ_FILE | FSAccess.READ_DIR
    write_dir = (read_dir | FSAccess.WRITE_FILE | FSAccess.REMOVE_DIR | FSAccess.REMOVE_FILE
                 | FSAccess.MAKE_DIR | FSAccess.MAKE_REG)
    if abi >= 3:
        write_dir |= FSAccess.TRUNCATE
    ruleset = landlock.Ruleset()
    read_paths = _read_paths(scratch)
    for path in read_paths:
        rights = read_dir if os.path.isdir(path) else FSAccess.READ_FILE
        ruleset.allow(path, rules=rights)
    for path in SYSTEM_READ_WRITE_FILES:
        if os.path.exists(path):
            ruleset.allow(path, rules=(FSAccess.READ_FILE | FSAccess.WRITE_FILE) & file_rights)
    ruleset.allow(str(scratch), rules=write_dir)
    ruleset.apply()
    return {"landlock_abi": abi, "landlock": "active", "read_only": read_paths, "read_write": [str(scratch)]}


def _apply_seccomp() -> dict:
    """Load a default-allow filter that refuses process, network, signal and kernel-admin syscalls."""
    if seccomp is None:
        return {"seccomp": False, "seccomp_error": SECCOMP_MISSING}
    arch = seccomp.system_arch()
    denied = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    rules.set_attr(seccomp.Attr.CTL_TSYNC, 1)
    filtered = []

    def add(action, name, *args):
        if seccomp.resolve_syscall(arch, name) < 0:
            return  # this architecture has no such syscall
        rules.add_rule(action, name, *args)
        filtered.append(name)

    for name in DENIED_SYSCALLS:
        add(denied, name)
    add(denied, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))  # processes, not threads
    add(seccomp.ERRNO(errno.ENOSYS), "clone3")  # glibc then falls back to clone() for threads
    for name in SELF_ONLY_SYSCALLS:
        add(denied, name, seccomp.Arg(0, seccomp.NE, os.getpid()))
    rules.load()
    return {"seccomp": True, "seccomp_filtered": filtered}


def _apply_rlimits(limits: SandboxLimits) -> dict:
    """Address space, CPU seconds, file size; no child processes and no core dumps."""
    values = {
        "RLIMIT_AS": (limits.memory_mb * MB,) * 2,
        "RLIMIT_CPU": (limits.cpu_s, limits.cpu_s + 5),  # SIGXCPU at the soft limit, SIGKILL 5 s later
        "RLIMIT_FSIZE": (limits.file_size_mb * MB,) * 2,
        "RLIMIT_NPROC": (0, 0),
        "RLIMIT_CORE": (0, 0),
    }
    for name, value in values.items():
        resource.setrlimit(getattr(resource, name), value)
    return {name: value[0] for name, value in values.items()}


def apply_sandbox(scratch: Path, limits: SandboxLimits) -> dict:
    """Apply every available layer to this (single-threaded) process; returns the sandbox report."""
    report: dict = {"threads": len(os.listdir("/proc/self/task"))}
    if _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
    report["dumpable"] = False
    report.update(_apply_landlock(scratch))
    report.update(_apply_seccomp())
    report["rlimits"] = _apply_rlimits(limits)
    return report
