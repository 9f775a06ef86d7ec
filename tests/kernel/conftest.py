"""Fixtures of the kernel tests: the question's frames and a real kernel pool."""

from __future__ import annotations

import pytest
from kernel_support import make_frames

from spatialclaw_ros.config import KernelConfig
from spatialclaw_ros.frames import FrameSet
from spatialclaw_ros.kernel.pool import KernelPool


@pytest.fixture(scope="module")
def frames() -> FrameSet:
    return make_frames()


@pytest.fixture(scope="module")
def pool():
    """A pool with the default sandbox, one warm worker, a short interrupt grace."""
    kernel_pool = KernelPool(KernelConfig(pool_size=1, memory_limit_mb=2048, interrupt_grace_s=0.5))
    yield kernel_pool
    kernel_pool.close()
