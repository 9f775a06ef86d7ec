"""Running the CUDA-first model packages (``depth_anything_3``, ``sam3``) on a CPU-only torch.

Three gaps, each closed as narrowly as it allows: torchvision from PyPI is a CUDA build whose import
fails on CPU torch; ``sam3`` creates tensors with ``device="cuda"`` and calls ``.cuda()`` /
``.pin_memory()``; ``sam3`` imports triton for one video-tracker kernel at package import.
Imports torch, so only model backends (parent process) import this module.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types

import torch
from torch.overrides import TorchFunctionMode


def register_torchvision_ops() -> None:
    """Let ``torchvision`` import on a CPU-only torch.

    Its import registers fake kernels for ``nms``/``qnms``, ops its C++ library would have defined;
    defining those two schemas first lets the pure-Python transforms import. torchvision's C++ ops
    stay unavailable (neither model package uses them).
    """
    if hasattr(torch.ops.torchvision, "nms"):
        return
    library = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    register_torchvision_ops.library = library  # a Library unregisters its ops when garbage-collected


def stub_sam3_triton_kernel() -> None:
    """Where triton is absent, stand in for ``sam3.model.edt``, the one sam3 module that imports it.

    Only the video tracker's distance transform uses it, and the ``sam3`` backend never runs that
    tracker; calling the stand-in raises. All of triton is never stubbed.
    """
    if importlib.util.find_spec("triton") is not None or "sam3.model.edt" in sys.modules:
        return

    def edt_triton(*_args, **_kwargs):
        raise RuntimeError("sam3's triton distance transform needs triton and a CUDA GPU")

    module = types.ModuleType("sam3.model.edt")
    module.edt_triton = edt_triton
    sys.modules["sam3.model.edt"] = module


def _is_cuda(value) -> bool:
    return isinstance(value, (str, torch.device)) and str(value).startswith("cuda")


class CudaToCpu(TorchFunctionMode):
    """Inside this mode, tensors asked for on ``cuda`` are made on the CPU and ``.cuda()`` / ``.pin_memory()``
    return the tensor itself: ``sam3`` hard-codes ``device="cuda"`` in places, in construction and inference."""

    def __torch_function__(self, func, types_, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if _is_cuda(kwargs.get("device")):
            kwargs["device"] = "cpu"
        name = getattr(func, "__name__", "")
        if name in ("cuda", "pin_memory"):
            return args[0]
        if name == "to":
            args = tuple("cpu" if _is_cuda(a) else a for a in args)
        return func(*args, **kwargs)


def device_mode(device: str) -> contextlib.AbstractContextManager:
    """The mode a CUDA-first package runs under on ``device``: ``CudaToCpu`` on the CPU, nothing on a GPU."""
    return CudaToCpu() if not str(device).startswith("cuda") else contextlib.nullcontext()
