"""Fixtures of the fault-injection tests: small frames for the Python API and real tmpfs mounts."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from spatialclaw_ros.frames import Frame, FrameSet


@pytest.fixture
def frames():
    """Two small frames for the Python API."""
    return FrameSet([Frame(index=i, rgb=np.full((40, 50, 3), 80 * i, np.uint8)) for i in range(2)])


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(size)`` mounts a fresh tmpfs of ``size`` (e.g. "256k") under ``tmp_path`` and returns its path;
    unmounted after the test. Skips, saying why, when not root or when mounting is not allowed here."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root: run the fault tests as root to cover read-only and full disks")
    mounts = []

    def mount(size: str):
        path = tmp_path / f"tmpfs{len(mounts)}"
        path.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(path)
        return path

    yield mount
    for path in reversed(mounts):
        subprocess.run(["umount", "-l", str(path)], check=False)

