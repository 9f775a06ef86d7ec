"""Attacks on the process that owns a kernel, as data: each runs with the static check OFF, so only the OS layer
(launcher.py, sandbox.py) and the runtime guards (guards.py) stand in the way.

Every attack raises when it fails; one that got through prints ESCAPED. Placeholders filled in by the harness:
{parent_pid}, {parent_pgid} and {parent_uid} of the owning process (as an attacker would guess them). Syscall
numbers are x86-64's. ``syscall(number, *args)`` (from PRELUDE) raises OSError like the os module does.
"""

from __future__ import annotations

from dataclasses import dataclass

PRELUDE = """\
import ctypes, fcntl, functools, os, resource, signal, struct, sys, typing
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
def syscall(number, *args):
    result = _libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result
PARENT, PARENT_GROUP, PARENT_UID = {parent_pid}, {parent_pgid}, {parent_uid}
CHANNEL = int(sys.argv[sys.argv.index('--fd') + 1])
buffer = ctypes.create_string_buffer(256)
r, w = os.pipe()
"""


@dataclass(frozen=True)
class HostEscape:
    description: str
    code: str  # runs after PRELUDE


HOST_ESCAPES = [
    # signals by every route
    HostEscape("kill(parent, SIGTERM)", "os.kill(PARENT, signal.SIGTERM)"),
    HostEscape("kill(parent, SIGKILL)", "os.kill(PARENT, signal.SIGKILL)"),
    HostEscape("kill(getppid(), SIGKILL)", "os.kill(os.getppid(), signal.SIGKILL)"),
    HostEscape("kill(-1): every process it may signal", "os.kill(-1, signal.SIGKILL)"),
    HostEscape("killpg(the parent's process group)", "os.killpg(PARENT_GROUP, signal.SIGTERM)"),
    HostEscape("kill(1): the host's or the namespace's init", "os.kill(1, signal.SIGKILL)"),
    HostEscape("raw kill with the pid's high bits set", "syscall(62, PARENT | 1 << 32, signal.SIGTERM)"),
    HostEscape("tgkill(parent, parent)", "syscall(234, PARENT, PARENT, signal.SIGUSR1)"),
    HostEscape("tkill(parent)", "syscall(200, PARENT, signal.SIGUSR1)"),
    HostEscape("rt_sigqueueinfo(parent)",
               "struct.pack_into('iii', buffer, 0, signal.SIGUSR1, 0, -1)\n"
               "syscall(129, PARENT, signal.SIGUSR1, ctypes.addressof(buffer))"),
    HostEscape("rt_tgsigqueueinfo(parent)",
               "struct.pack_into('iii', buffer, 0, signal.SIGUSR1, 0, -1)\n"
               "syscall(297, PARENT, PARENT, signal.SIGUSR1, ctypes.addressof(buffer))"),
    HostEscape("pidfd_open + pidfd_send_signal", "fd = syscall(434, PARENT, 0)\nsyscall(424, fd, signal.SIGTERM, 0, 0)"),
    HostEscape("fcntl F_SETOWN(parent) + F_SETSIG + O_ASYNC on a pipe, then a write",
               "fcntl.fcntl(r, fcntl.F_SETOWN, PARENT)\nfcntl.fcntl(r, 10, signal.SIGKILL)\n"
               "fcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC | os.O_NONBLOCK)\nos.write(w, b'x')"),
    HostEscape("fcntl F_SETOWN(getppid()) + O_ASYNC (the reported attack)",
               "fcntl.fcntl(r, fcntl.F_SETOWN, os.getppid())\nfcntl.fcntl(r, 10, signal.SIGTERM)\n"
               "fcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC)\nos.write(w, b'x')"),
    HostEscape("fcntl F_SETOWN(-parent's group)", "fcntl.fcntl(r, fcntl.F_SETOWN, -PARENT_GROUP)"),
    HostEscape("fcntl F_SETOWN_EX(F_OWNER_PID, parent)", "fcntl.fcntl(r, 15, struct.pack('ii', 1, PARENT))"),
    HostEscape("fcntl F_SETSIG alone", "fcntl.fcntl(r, 10, signal.SIGKILL)"),
    HostEscape("raw fcntl F_SETOWN with the command's high bits set", "syscall(72, r, 8 | 1 << 32, PARENT)"),
    HostEscape("F_SETOWN on the channel socket, then MSG_OOB (SIGURG)",
               "fcntl.fcntl(CHANNEL, fcntl.F_SETOWN, PARENT)"),
    HostEscape("MSG_OOB on the channel socket",
               "import socket\nsocket.socket(fileno=os.dup(CHANNEL)).send(b'x', socket.MSG_OOB)"),
    HostEscape("F_SETOWN on the inherited log file (stdout)", "fcntl.fcntl(1, fcntl.F_SETOWN, PARENT)"),
    HostEscape("F_NOTIFY on the scratch dir", "fcntl.fcntl(os.open('.', os.O_RDONLY), 1026, 0x80000002)"),
    HostEscape("F_SETLEASE on a scratch file",
               "fd = os.open('lease', os.O_RDONLY | os.O_CREAT)\nfcntl.fcntl(fd, 1024, fcntl.F_RDLCK)"),
    HostEscape("ioctl FIOSETOWN(parent) + FIOASYNC on a pipe",
               "fcntl.ioctl(r, 0x8901, struct.pack('i', PARENT))\nfcntl.ioctl(r, 0x5452, struct.pack('i', 1))\n"
               "os.write(w, b'x')"),
    HostEscape("ioctl SIOCSPGRP(parent)", "fcntl.ioctl(r, 0x8902, struct.pack('i', PARENT))"),
    HostEscape("ioctl TIOCSTI into fds 0-2", "for fd in (0, 1, 2):\n    fcntl.ioctl(fd, 0x5412, b'x')"),
    HostEscape("raw ioctl TIOCSTI with the command's high bits set",
               "syscall(16, 0, 0x5412 | 1 << 32, ctypes.addressof(buffer))"),
    HostEscape("open /dev/tty", "open('/dev/tty', 'wb')"),
    # resource limits, priorities, affinity, scheduling, I/O priority
    HostEscape("prlimit(parent, RLIMIT_NOFILE, (3, 3))", "resource.prlimit(PARENT, resource.RLIMIT_NOFILE, (3, 3))"),
    HostEscape("prlimit(getppid(), RLIMIT_NOFILE, (3, 3)) (the reported attack)",
               "ppid = os.getppid()\nif not ppid:\n    raise ProcessLookupError('no parent in sight')\n"
               "resource.prlimit(ppid, resource.RLIMIT_NOFILE, (3, 3))"),
    HostEscape("raw prlimit64 with the pid's high bits set",
               "struct.pack_into('QQ', buffer, 0, 3, 3)\nsyscall(302, PARENT | 1 << 32, 7, ctypes.addressof(buffer), 0)"),
    HostEscape("setpriority(PRIO_PROCESS, parent, 19)", "os.setpriority(os.PRIO_PROCESS, PARENT, 19)"),
    HostEscape("setpriority(PRIO_PGRP, the parent's group, 19)", "os.setpriority(os.PRIO_PGRP, PARENT_GROUP, 19)"),
    HostEscape("setpriority(PRIO_USER, the parent's uid, 19)", "os.setpriority(os.PRIO_USER, PARENT_UID, 19)"),
    HostEscape("sched_setaffinity(parent, {0})", "os.sched_setaffinity(PARENT, {{0}})"),
    HostEscape("sched_setscheduler(parent, SCHED_IDLE)", "os.sched_setscheduler(PARENT, os.SCHED_IDLE, os.sched_param(0))"),
    HostEscape("sched_setparam(parent)", "os.sched_setparam(PARENT, os.sched_param(0))"),
    HostEscape("sched_setattr(parent, SCHED_IDLE)",
               "struct.pack_into('II', buffer, 0, 48, 5)\nsyscall(314, PARENT, ctypes.addressof(buffer), 0)"),
    HostEscape("ioprio_set(IOPRIO_WHO_PROCESS, parent, idle)", "syscall(251, 1, PARENT, 3 << 13)"),
    HostEscape("ioprio_set(IOPRIO_WHO_USER, the parent's uid, idle)", "syscall(251, 3, PARENT_UID, 3 << 13)"),
    HostEscape("setpgid(parent, parent)", "os.setpgid(PARENT, PARENT)"),
    # tracing, memory, comparing, profiling
    HostEscape("ptrace(PTRACE_ATTACH, parent)", "syscall(101, 16, PARENT, 0, 0)"),
    HostEscape("ptrace(PTRACE_SEIZE, parent)", "syscall(101, 0x4206, PARENT, 0, 0)"),
    HostEscape("process_vm_readv(parent)",
               "struct.pack_into('QQQQ', buffer, 0, ctypes.addressof(buffer) + 64, 8, 0x400000, 8)\n"
               "syscall(310, PARENT, ctypes.addressof(buffer), 1, ctypes.addressof(buffer) + 16, 1, 0)"),
    HostEscape("kcmp(parent, self)", "syscall(312, PARENT, os.getpid(), 0, 0, 0)"),
    HostEscape("migrate_pages(parent)", "syscall(256, PARENT, 64, ctypes.addressof(buffer), ctypes.addressof(buffer))"),
    HostEscape("move_pages(parent)", "syscall(279, PARENT, 0, 0, 0, 0, 0)"),
    HostEscape("get_robust_list(parent)",
               "syscall(274, PARENT, ctypes.addressof(buffer), ctypes.addressof(buffer) + 16)"),
    HostEscape("perf_event_open on the parent",
               "struct.pack_into('II', buffer, 0, 1, 128)\nsyscall(298, ctypes.addressof(buffer), PARENT, -1, -1, 0)"),
    # the view of other processes
    HostEscape("read the parent's /proc status", "print(open('/proc/%d/status' % PARENT).read())"),
    HostEscape("list /proc", "print(os.listdir('/proc'))"),
    # string-to-code routes past the static check, carrying a payload aimed at the parent
    HostEscape("forward reference registered through functools.singledispatch",
               "T = typing.Optional[\"__import__('os').kill(%d, 9)\" % PARENT]\n"
               "def handler(x: T):\n    pass\nfunctools.singledispatch(lambda x: 0).register(handler)"),
    HostEscape("forward reference through typing.get_type_hints",
               "T = typing.List[\"__import__('resource').prlimit(%d, 7, (3, 3))\" % PARENT]\n"
               "def handler(x: T):\n    pass\ntyping.get_type_hints(handler)"),
    HostEscape("matplotlib module:// backend imports a module",
               "import matplotlib.pyplot as plt\nplt.rcParams['backend'] = 'module://os'\nplt.figure()"),
]
