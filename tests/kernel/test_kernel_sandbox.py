"""The sandbox end to end: static refusals in a live session, and the OS layer alone (static check off)."""

from __future__ import annotations

import ast
import os
import socket
from pathlib import Path

import pytest
from escape_corpus import OS_ESCAPES, STATIC_ESCAPES

from spatialclaw_ros.config import KernelConfig
from spatialclaw_ros.kernel.pool import KernelPool
from spatialclaw_ros.kernel.process import worker_environment
from spatialclaw_ros.kernel.results import CellStatus

landlock = pytest.importorskip("landlock")


def test_static_escapes_are_rejected_by_a_live_session(pool, frames):
    with pool.session(frames, {}) as session:
        for escape in STATIC_ESCAPES:
            result = session.execute(escape.code, timeout_s=20)
            assert result.status is CellStatus.REJECTED, escape.description
        assert session.execute("print('still fine')", timeout_s=20).stdout == "still fine\n"


@pytest.fixture(scope="module")
def unchecked_pool():
    kernel_pool = KernelPool(KernelConfig(pool_size=1, memory_limit_mb=2048, static_check=False))
    yield kernel_pool
    kernel_pool.close()


@pytest.fixture(scope="module")
def listener():
    """A TCP listener on 127.0.0.1 that the kernel must not reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    yield server
    server.close()


def test_every_os_layer_is_active_and_required_by_default(unchecked_pool, frames):
    with unchecked_pool.session(frames, {}) as session:
        layers = {layer.name: layer for layer in session.sandbox_layers}
        rlimits = session.rlimits
        probe = session.execute("import os\nprint(os.getpid(), os.getppid(), os.getuid())", timeout_s=20)
    assert list(layers) == ["pid_namespace", "sandbox_uid", "landlock", "seccomp"]
    assert all(layer.active and layer.required for layer in layers.values())
    assert layers["landlock"].detail.startswith(f"ABI {landlock.landlock_abi_version()}:")
    pid, ppid, uid = map(int, probe.stdout.split())
    assert (pid, ppid) == (2, 0)  # PID 2 of its own namespace; its parent is outside, invisible
    assert uid == (KernelConfig().sandbox_uid if os.geteuid() == 0 else os.geteuid())
    assert rlimits == {"RLIMIT_AS": 2048 * 2**20, "RLIMIT_CPU": 1800, "RLIMIT_FSIZE": 256 * 2**20,
                       "RLIMIT_NPROC": 0, "RLIMIT_CORE": 0}


@pytest.mark.parametrize("escape", OS_ESCAPES, ids=[e.description for e in OS_ESCAPES])
def test_os_layer_alone_stops_the_escape(unchecked_pool, frames, listener, tmp_path, escape):
    outside = tmp_path / "escaped.txt"
    code = escape.code.format(outside=outside, port=listener.getsockname()[1], parent_pid=os.getpid())
    with unchecked_pool.session(frames, {}) as session:
        result = session.execute(code, timeout_s=20)
        assert result.status is CellStatus.ERROR, (escape.description, result)
        assert escape.expected_error in result.error
        assert session.execute("print('alive')", timeout_s=20).stdout == "alive\n"
    assert not outside.exists()
    with pytest.raises(BlockingIOError):
        listener.accept()  # no connection ever arrived
    assert os.getppid() > 0  # and we, the parent, are still here to check


def test_writing_inside_the_scratch_dir_works(unchecked_pool, frames):
    with unchecked_pool.session(frames, {}) as session:
        result = session.execute("import os\nopen('notes.txt', 'w').write('kept')\n"
                                 "print(open(os.path.join(os.environ['TMPDIR'], 'notes.txt')).read())", timeout_s=20)
        assert result.stdout == "kept\n"


def test_the_kernel_cannot_see_the_parents_api_key(frames, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret-4242")
    monkeypatch.setenv("SPATIALCLAW_API_KEY", "sk-parent-secret-4242")
    with KernelPool(KernelConfig(pool_size=0, static_check=False)) as fresh_pool, \
            fresh_pool.session(frames, {}) as session:
        result = session.execute("import os\nprint(sorted(os.environ))\nprint('sk-parent' in str(os.environ))",
                                 timeout_s=20)
    names, leaked = result.stdout.splitlines()
    assert "API_KEY" not in names
    assert leaked == "False"
    # Set inside the worker by its own start-up: cv2 on import, and the ROS 2 wheels' bootstrap .pth where installed.
    own = set(worker_environment(Path("/scratch"))) | {"LD_LIBRARY_PATH", "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
    assert set(ast.literal_eval(names)) <= own
