"""The worker's own sandbox layers, applied after its imports and before any agent code runs.

Behind the launcher's PID namespace (launcher.py), in this order:
- ``sandbox_uid``: a worker started by root becomes ``KernelConfig.sandbox_uid`` with no capabilities, so no
  permission check of the kernel lets it touch the parent or another user's process even if it could name one. It
  keeps CAP_DAC_READ_SEARCH only where the Python installation is unreadable to that uid (e.g. pyenv under /root);
  Landlock still limits reading to the installation.
- not dumpable (no ptrace, no core, no /proc access by the same uid);
- ``landlock``: read-only Python/system files, read-write scratch dir, nothing else;
- ``seccomp``: no sockets, processes, exec, mounts, kernel administration; signals, resource limits, priorities,
  affinities and scheduling only for the worker itself (arguments checked); no F_SETOWN/F_SETSIG, no TIOCSTI;
- rlimits: address space, CPU time, file size, no new processes, no core files.
A layer that cannot be applied raises SandboxMissing unless the policy makes it optional (layers.py).
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

from .layers import LayerReport, SandboxPolicy, die_with_parent, libc

# Both load native libraries (libseccomp is located with ldconfig), so they must be imported before Landlock
# forbids executing anything. A missing one is reported as a missing layer.
try:
    import landlock
    from landlock import FSAccess
except Exception as exc:  # pragma: no cover - depends on the installation
    landlock, FSAccess, LANDLOCK_MISSING = None, None, f"the landlock package is unavailable: {exc}"
else:
    LANDLOCK_MISSING = ""
try:
    import pyseccomp as seccomp
except Exception as exc:  # pragma: no cover - no libseccomp on this system
    seccomp, SECCOMP_MISSING = None, f"pyseccomp/libseccomp is unavailable: {exc}"
else:
    SECCOMP_MISSING = ""

PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
CAP_DAC_READ_SEARCH = 2
LINUX_CAPABILITY_VERSION_3 = 0x20080522
CLONE_THREAD = 0x00010000
MB = 1024 * 1024

#: System paths the worker may read (besides the Python installation and sys.path).
SYSTEM_READ_PATHS = ("/usr", "/lib", "/lib64", "/etc/ld.so.cache", "/usr/share", "/dev/urandom")
#: Files the worker may read and write.
SYSTEM_READ_WRITE_FILES = ("/dev/null",)

#: Syscalls refused with EPERM outright: networking, processes, tracing, namespaces, mounts, kernel administration.
DENIED_SYSCALLS = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    "sendto", "sendmsg", "sendmmsg", "recvmsg", "recvmmsg",
    "execve", "execveat", "fork", "vfork",
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "process_mrelease", "kcmp",
    "tkill", "pidfd_open", "pidfd_send_signal", "pidfd_getfd",
    "mount", "umount2", "unshare", "setns", "chroot", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "mount_setattr", "open_by_handle_at", "name_to_handle_at",
    "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "init_module", "finit_module", "delete_module",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd", "fanotify_init",
    "reboot", "kexec_load", "kexec_file_load", "swapon", "swapoff", "syslog", "acct", "quotactl", "quotactl_fd",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname", "iopl", "ioperm",
    "vhangup",
)
#: Signal-sending syscalls allowed only when the target (argument 0) is this process.
SELF_ONLY_SYSCALLS = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")
#: Syscalls that name a process in argument 0, allowed only with 0 (the caller).
CALLER_ONLY_SYSCALLS = ("prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr",
                        "migrate_pages", "move_pages", "get_robust_list", "setpgid")
#: Syscalls allowed only with these exact arguments: (argument, value) pairs, each checked alone.
#: setpriority(PRIO_PROCESS, 0, ...) and ioprio_set(IOPRIO_WHO_PROCESS, 0, ...): the calling process only.
EXACT_ARGUMENTS = {"setpriority": ((0, 0), (1, 0)), "ioprio_set": ((0, 1), (1, 0))}
#: Commands (argument 1, 32 bits) refused: fcntl's F_SETOWN, F_SETSIG, F_SETOWN_EX, F_SETLEASE and F_NOTIFY
#: (signals to a chosen process); ioctl's TIOCSTI, TIOCSCTTY, TIOCSPGRP, TIOCLINUX, TIOCCONS, FIOSETOWN, SIOCSPGRP.
REFUSED_COMMANDS = {"fcntl": (8, 10, 15, 1024, 1026),
                    "ioctl": (0x5412, 0x540E, 0x5410, 0x541C, 0x541D, 0x8901, 0x8902)}


@dataclass
class SandboxLimits:
    """Resource limits of one worker (from KernelConfig)."""

    memory_mb: int
    cpu_s: int
    file_size_mb: int


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _capabilities() -> int:
    """This process's permitted capability set as a bit mask."""
    data = (_CapData * 2)()
    _check(libc().capget(ctypes.byref(_CapHeader(LINUX_CAPABILITY_VERSION_3, 0)), data), "capget")
    return data[0].permitted | data[1].permitted << 32


def _set_capabilities(mask: int) -> None:
    """Effective and permitted sets to exactly ``mask``, inheritable empty."""
    data = (_CapData * 2)()
    for word in range(2):
        bits = (mask >> (32 * word)) & 0xFFFFFFFF
        data[word].effective = data[word].permitted = bits
    _check(libc().capset(ctypes.byref(_CapHeader(LINUX_CAPABILITY_VERSION_3, 0)), data), "capset")


def _read_paths(scratch: Path) -> list[str]:
    """Existing paths the worker needs to read: the Python installation, sys.path, system libraries."""
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path, *SYSTEM_READ_PATHS]
    paths = []
    for path in candidates:
        if path and os.path.exists(path) and Path(path).resolve() != scratch.resolve() and path not in paths:
            paths.append(path)
    return paths


def _readable(paths: list[str]) -> bool:
    """Whether the real uid may read (and enter) every one of ``paths`` by file permissions alone."""
    return all(os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0)) for path in paths)


def _become_sandbox_uid(policy: SandboxPolicy, scratch: Path, read_paths: list[str]) -> str:
    """As root: hand the scratch dir over, then become the sandbox uid without capabilities (but CAP_DAC_READ_SEARCH
    where the installation is unreadable to it). Returns what was done; OSError when it cannot be done."""
    uid = gid = policy.sandbox_uid
    keep = 1 << CAP_DAC_READ_SEARCH if _capabilities() & (1 << CAP_DAC_READ_SEARCH) else 0
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for capability in range(last + 1):
        if not keep >> capability & 1:
            _check(libc().prctl(PR_CAPBSET_DROP, capability, 0, 0, 0), "PR_CAPBSET_DROP")
    for path in [scratch, *scratch.iterdir()]:
        os.chown(path, uid, gid)
    _check(libc().prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "PR_SET_KEEPCAPS")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if keep and _readable(read_paths):
        keep = 0
    _set_capabilities(keep)
    _check(libc().prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "PR_SET_KEEPCAPS")
    if keep:
        return (f"uid {uid}, no capabilities but CAP_DAC_READ_SEARCH (the Python installation is not readable by "
                f"uid {uid}; Landlock limits what is read)")
    return f"uid {uid}, no capabilities"


def _apply_sandbox_uid(policy: SandboxPolicy, scratch: Path, read_paths: list[str], report: LayerReport) -> None:
    if os.geteuid() != 0:
        report.add("sandbox_uid", True, f"not root: the invoking user's uid {os.geteuid()}, no capabilities")
        return
    try:
        detail = _become_sandbox_uid(policy, scratch, read_paths)
    except OSError as error:
        report.add("sandbox_uid", False, f"could not become uid {policy.sandbox_uid}: {error}")
        return
    die_with_parent()  # a uid change clears the parent-death signal
    report.add("sandbox_uid", True, detail)


def _apply_landlock(scratch: Path, read_paths: list[str], report: LayerReport) -> None:
    """Restrict file access: read-only system and Python paths, read-write scratch, nothing else."""
    if landlock is None:
        report.add("landlock", False, LANDLOCK_MISSING)
        return
    try:
        abi = landlock.landlock_abi_version()
    except Exception as exc:  # not Linux, Landlock not built in or disabled at boot
        report.add("landlock", False, f"the Linux kernel offers no Landlock: {exc}")
        return
    file_rights = FSAccess.all_file()
    read_dir = FSAccess.READ_FILE | FSAccess.READ_DIR
    write_dir = (read_dir | FSAccess.WRITE_FILE | FSAccess.REMOVE_DIR | FSAccess.REMOVE_FILE
                 | FSAccess.MAKE_DIR | FSAccess.MAKE_REG)
    if abi >= 3:
        write_dir |= FSAccess.TRUNCATE
    ruleset = landlock.Ruleset()
    for path in read_paths:
        ruleset.allow(path, rules=read_dir if os.path.isdir(path) else FSAccess.READ_FILE)
    for path in SYSTEM_READ_WRITE_FILES:
        if os.path.exists(path):
            ruleset.allow(path, rules=(FSAccess.READ_FILE | FSAccess.WRITE_FILE) & file_rights)
    ruleset.allow(str(scratch), rules=write_dir)
    ruleset.apply()
    report.add("landlock", True, f"ABI {abi}: reads only the Python installation and system libraries, writes only "
                                 f"its scratch dir")


def _apply_seccomp(report: LayerReport) -> None:
    """Load a default-allow filter that refuses the syscalls above, checking arguments where they name a target."""
    if seccomp is None:
        report.add("seccomp", False, SECCOMP_MISSING)
        return
    arch = seccomp.system_arch()
    denied = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    rules.set_attr(seccomp.Attr.CTL_TSYNC, 1)
    filtered = set()

    def add(action, name, *args):
        if seccomp.resolve_syscall(arch, name) < 0:
            return  # this architecture has no such syscall
        rules.add_rule(action, name, *args)
        filtered.add(name)

    for name in DENIED_SYSCALLS:
        add(denied, name)
    add(denied, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))  # processes, not threads
    add(seccomp.ERRNO(errno.ENOSYS), "clone3")  # glibc then falls back to clone() for threads
    for name in SELF_ONLY_SYSCALLS:
        add(denied, name, seccomp.Arg(0, seccomp.NE, os.getpid()))
    for name in CALLER_ONLY_SYSCALLS:
        add(denied, name, seccomp.Arg(0, seccomp.NE, 0))
    for name, pairs in EXACT_ARGUMENTS.items():
        for argument, value in pairs:
            add(denied, name, seccomp.Arg(argument, seccomp.NE, value))
    for name, commands in REFUSED_COMMANDS.items():
        for command in commands:  # the kernel reads these as 32-bit: compare the low half only
            add(denied, name, seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, command))
    rules.load()
    report.add("seccomp", True, f"{len(filtered)} syscalls refused or limited to the kernel process itself")


def _apply_rlimits(limits: SandboxLimits) -> dict[str, int]:
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


def apply_sandbox(scratch: Path, limits: SandboxLimits, report: LayerReport) -> dict[str, int]:
    """Apply every layer to this (single-threaded) process, adding each to ``report`` (SandboxMissing for a
    required one that fails); returns the rlimits set."""
    read_paths = _read_paths(scratch)  # before the uid changes: paths it cannot see would drop out
    _apply_sandbox_uid(report.policy, scratch, read_paths, report)
    _check(libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "PR_SET_DUMPABLE")
    _apply_landlock(scratch, read_paths, report)
    _apply_seccomp(report)
    return _apply_rlimits(limits)
