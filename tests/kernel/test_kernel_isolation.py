"""The OS layer alone keeps the process that owns a kernel safe: attacks run with the static check off.

host_harness.py owns the kernel in a process of its own and runs every attack of host_escapes.py; each must
fail in the kernel (an error the cell reports), and the owner must stay alive, unchanged (rlimits, nice value,
affinity, scheduling, I/O priority, process group) and unsignalled. Further tests take each layer alone.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from host_escapes import HOST_ESCAPES

from spatialclaw_ros.kernel import launcher
from spatialclaw_ros.kernel.layers import EXIT_SANDBOX_MISSING, SandboxPolicy

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="the attacks use x86-64 syscall numbers")
HERE = Path(__file__).resolve().parent
HARNESS_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def harness() -> dict:
    """Run the harness once; its outcome per attack."""
    done = subprocess.run([sys.executable, str(HERE / "host_harness.py")], capture_output=True, text=True,
                          timeout=HARNESS_TIMEOUT_S)
    assert done.returncode == 0, (f"the process owning the kernel ended with {done.returncode} "
                                  f"({'signal ' + signal.Signals(-done.returncode).name if done.returncode < 0 else 'status'})"
                                  f": {done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    report["by_description"] = {outcome["description"]: outcome for outcome in report["outcomes"]}
    return report


def test_the_corpus_is_large_and_the_owner_survives_all_of_it(harness):
    assert len(HOST_ESCAPES) >= 30
    assert len(harness["outcomes"]) == len(HOST_ESCAPES)
    assert harness["last_cell"] == "kernel still serving\n"


@pytest.mark.parametrize("escape", HOST_ESCAPES, ids=[escape.description for escape in HOST_ESCAPES])
def test_the_attack_fails_and_leaves_the_owner_untouched(harness, escape):
    outcome = harness["by_description"][escape.description]
    assert outcome["status"] == "error", outcome
    assert "ESCAPED" not in outcome["stdout"]
    assert outcome["error"].split(":")[0].endswith(("Error", "Exception"))
    assert outcome["changed"] == {}, f"the owner's state changed: {outcome['changed']}"
    assert outcome["signals"] == [], f"the owner received {outcome['signals']}"


def test_the_kernel_error_says_what_refused_the_attack(harness):
    errors = {description: outcome["error"].split("\n")[0] for description, outcome in harness["by_description"].items()}
    assert errors["kill(parent, SIGKILL)"] == "PermissionError: [Errno 1] Operation not permitted"
    assert errors["list /proc"].startswith("PermissionError")
    assert errors["forward reference registered through functools.singledispatch"].startswith(
        "TypeError: the type annotation string")
    assert errors["matplotlib module:// backend imports a module"].startswith(
        "ValueError: matplotlib's backend is fixed to Agg")


def run_launched(code: str, optional: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``code`` in a plain Python started by the launcher: the PID namespace alone, no seccomp or Landlock."""
    policy = SandboxPolicy(optional_layers=optional).to_json()
    return subprocess.run([sys.executable, "-m", launcher.__name__, "--policy", policy, "--", sys.executable, "-c",
                           code], capture_output=True, text=True, timeout=60)


def test_the_pid_namespace_alone_hides_the_parent():
    code = ("import os, resource, sys\nprint(os.getpid(), os.getppid(), sys.argv[1] == '--launch-report')\n"
            f"for attempt in (lambda: os.kill({os.getpid()}, 15), lambda: os.setpriority(os.PRIO_PROCESS, "
            f"{os.getpid()}, 19), lambda: resource.prlimit({os.getpid()}, resource.RLIMIT_NOFILE, (3, 3)), "
            f"lambda: os.sched_setaffinity({os.getpid()}, {{0}})):\n"
            "    try:\n        attempt()\n        print('reached')\n"
            "    except ProcessLookupError:\n        print('no such process')\n")
    nice, limit = os.getpriority(os.PRIO_PROCESS, 0), __import__("resource").getrlimit(7)
    done = run_launched(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:5] == ["2 0 True"] + ["no such process"] * 4
    assert (os.getpriority(os.PRIO_PROCESS, 0), __import__("resource").getrlimit(7)) == (nice, limit)


def test_the_launcher_ends_the_way_the_worker_ended():
    assert run_launched("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)").returncode == -signal.SIGSEGV
    assert run_launched("import sys\nsys.exit(3)").returncode == 3


def test_an_interrupt_reaches_the_worker_through_the_launcher():
    policy = SandboxPolicy().to_json()
    code = ("import signal, sys, time\nsignal.signal(signal.SIGINT, lambda *a: (print('interrupted', flush=True), "
            "sys.exit(0)))\nprint('ready', flush=True)\ntime.sleep(30)")
    process = subprocess.Popen([sys.executable, "-m", launcher.__name__, "--policy", policy, "--", sys.executable,
                                "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGINT)
    assert process.stdout.readline() == "interrupted\n"
    assert process.wait(timeout=10) == 0


def test_a_missing_layer_stops_the_launch_with_its_name_and_the_setting(monkeypatch):
    def refuse(flags):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(launcher, "_unshare", refuse)
    with pytest.raises(SystemExit) as stopped:
        launcher.main(["--policy", SandboxPolicy().to_json(), "--", "/bin/true"])
    assert stopped.value.code == EXIT_SANDBOX_MISSING


def test_a_missing_required_layer_message(capsys, monkeypatch):
    def refuse(flags):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(launcher, "_unshare", refuse)
    with pytest.raises(SystemExit):
        launcher.main(["--policy", SandboxPolicy().to_json(), "--", "/bin/true"])
    message = capsys.readouterr().err.strip()
    assert message.startswith("kernel sandbox layer 'pid_namespace' is missing: ")
    assert "Operation not permitted" in message and "apparmor_restrict_unprivileged_userns" in message
    assert message.endswith("To accept a weaker sandbox, set kernel.optional_layers: [pid_namespace]")


@pytest.mark.skipif(os.geteuid() != 0, reason="the dedicated uid is for a parent running as root")
def test_the_uid_layer_alone_refuses_signals_and_limits_on_root_processes(tmp_path):
    """A process that only became the sandbox uid (no namespace, no seccomp) cannot touch its root parent."""
    code = ("import os, resource\nfrom pathlib import Path\nfrom spatialclaw_ros.kernel import sandbox\n"
            "from spatialclaw_ros.kernel.layers import LayerReport, SandboxPolicy\n"
            "report = LayerReport(SandboxPolicy())\n"
            f"sandbox._apply_sandbox_uid(report.policy, Path({str(tmp_path)!r}), [], report)\n"
            "print(os.getuid(), report.layers[0].detail)\n"
            f"for attempt in (lambda: os.kill({os.getpid()}, 15), lambda: os.setpriority(os.PRIO_PROCESS, "
            f"{os.getpid()}, 19), lambda: resource.prlimit({os.getpid()}, resource.RLIMIT_NOFILE, (3, 3))):\n"
            "    try:\n        attempt()\n        print('reached')\n"
            "    except PermissionError:\n        print('refused')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert lines[0].startswith("65534 uid 65534, no capabilities")
    assert lines[1:4] == ["refused"] * 3
    assert os.stat(tmp_path).st_uid == 65534  # the scratch dir was handed over


def test_the_seccomp_filter_alone_refuses_every_target_but_itself():
    """A process with only the seccomp filter (same uid, same PID namespace) against a victim it can name."""
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        code = ("import fcntl, os, resource\nfrom spatialclaw_ros.kernel import sandbox\n"
                "from spatialclaw_ros.kernel.layers import LayerReport, SandboxPolicy\n"
                "sandbox._apply_seccomp(LayerReport(SandboxPolicy()))\n"
                f"victim = {victim.pid}\nr, w = os.pipe()\n"
                "attempts = {'kill': lambda: os.kill(victim, 15), 'prlimit': lambda: resource.prlimit(victim, 7, (3, 3)),\n"
                "    'setpriority': lambda: os.setpriority(os.PRIO_PROCESS, victim, 19),\n"
                "    'sched_setaffinity': lambda: os.sched_setaffinity(victim, {0}),\n"
                "    'F_SETOWN': lambda: fcntl.fcntl(r, fcntl.F_SETOWN, victim),\n"
                "    'own limits': lambda: resource.setrlimit(7, resource.getrlimit(7)),\n"
                "    'own priority': lambda: os.setpriority(os.PRIO_PROCESS, 0, 1)}\n"
                "for name, attempt in attempts.items():\n"
                "    try:\n        attempt()\n        print(name, 'allowed')\n"
                "    except PermissionError:\n        print(name, 'refused')\n")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split("\n")[:7] == [
            "kill refused", "prlimit refused", "setpriority refused", "sched_setaffinity refused", "F_SETOWN refused",
            "own limits allowed", "own priority allowed"]
        assert victim.poll() is None
        assert os.getpriority(os.PRIO_PROCESS, victim.pid) == 0
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as an unprivileged user")
def test_an_unprivileged_user_gets_its_own_user_and_pid_namespaces():
    """The non-root route (a robot's ROS user): unprivileged user namespaces carry the PID namespace."""
    import spatialclaw_ros

    package_root = str(Path(spatialclaw_ros.__file__).resolve().parents[1])
    python = "/usr/bin/python3"
    readable = subprocess.run([python, "-c", f"import os; os.listdir({package_root!r})"], user=65534, group=65534,
                              extra_groups=[], capture_output=True) if os.path.exists(python) else None
    if readable is None or readable.returncode != 0:
        pytest.skip(f"uid 65534 cannot run {python} on the package at {package_root}")
    code = f"import os, sys\nprint(os.getuid(), os.getpid(), os.getppid())\nos.kill({os.getpid()}, 15)"
    done = subprocess.run([python, "-m", launcher.__name__, "--policy", SandboxPolicy().to_json(), "--", python, "-c",
                           code], user=65534, group=65534, extra_groups=[], capture_output=True, text=True,
                          env={"PYTHONPATH": package_root}, timeout=60)
    assert done.stdout == "65534 2 0\n"
    assert done.stderr.strip().endswith("ProcessLookupError: [Errno 3] No such process")
