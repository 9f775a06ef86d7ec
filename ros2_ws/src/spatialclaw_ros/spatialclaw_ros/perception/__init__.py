"""Perception behind ``tools.Reconstruct`` and ``tools.SAM3``: backends chosen by name, their outputs, and a cache.

ROS-free and model-free by default: the ``sensor`` reconstruction backend (measured depth, CameraInfo,
TF) and the ``classical`` segmenter (GrabCut refined with depth). Model backends register in
``backends.py`` and are imported only when configured.
"""

from .backends import make_reconstruction_backend, make_segmentation_backend
from .reconstruction import Reconstruction
from .segmentation import PerFrameMask

__all__ = ["PerFrameMask", "Reconstruction", "make_reconstruction_backend", "make_segmentation_backend"]
