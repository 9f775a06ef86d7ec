"""Fixtures shared by the test folders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spatialclaw_ros.config import KernelConfig
from spatialclaw_ros.kernel.pool import KernelPool


@pytest.fixture
def images(tmp_path):
    """Two small PNG files (red, green) for ``spatialclaw ask --images``."""
    paths = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0)]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.full((40, 50, 3), colour, np.uint8)).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="session")
def pool():
    """A real kernel pool with the default sandbox and one warm worker, shared by the tests that build Agents."""
    kernel_pool = KernelPool(KernelConfig(pool_size=1, memory_limit_mb=2048))
    yield kernel_pool
    kernel_pool.close()
