"""Fixtures shared by the test folders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def images(tmp_path):
    """Two small PNG files (red, green) for ``spatialclaw ask --images``."""
    paths = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0)]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.full((40, 50, 3), colour, np.uint8)).save(path)
        paths.append(str(path))
    return paths
