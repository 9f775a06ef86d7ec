"""PerceptionService: the configured perception backends of one owner (the ROS node, an Agent), checked and
loaded by ``load``, serving a question's host calls through ``handlers``, freed by ``close``.

Interim version (ros stream) of the contract the trt stream implements: it wraps today's
``model_service.host_handlers``, whose loaded models still live in that module's caches; ``load`` checks the
configured model files and ``close`` empties those caches.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ..config import Config, PerceptionConfig
from ..frames import FrameSet
from ..kernel.host import HostHandler
from . import model_service


@dataclass(frozen=True)
class BackendStatus:
    """One configured backend: what it does, which backend, where it runs, and whether it is loaded."""

    name: str  # "reconstruction" or "segmentation"
    kind: str  # the backend, e.g. "sensor", "da3"
    provider: str  # where it runs: "kernel" (no model), a torch device, onnxruntime providers
    loaded: bool


class PerceptionService:
    """The perception backends ``config`` names; loads nothing until ``load``."""

    def __init__(self, config: PerceptionConfig) -> None:
        self.config = config
        self._loaded = False

    def load(self) -> None:
        """Check the configured backends' model files; ValueError naming the setting when one is missing."""
        from ..doctor import check_perception

        check = check_perception(Config(perception=self.config))
        if not check.ok:
            raise ValueError(check.detail)
        self._loaded = True

    @property
    def loaded(self) -> bool:
        return self._loaded

    def handlers(self, frames: FrameSet) -> dict[str, HostHandler]:
        """The host services the configured backends need for one question (none for sensor + classical)."""
        return model_service.host_handlers(self.config, frames)

    def report(self) -> list[BackendStatus]:
        """The configured backends and where they run."""
        config = self.config
        reconstruction = {"sensor": "kernel", "da3": config.da3.device,
                          "da3-onnx": "onnxruntime " + (config.da3_onnx.providers or "default")}[config.reconstruction]
        segmentation = {"classical": "kernel", "sam3": config.sam3.device}[config.segmentation]
        return [BackendStatus("reconstruction", config.reconstruction, reconstruction, self._loaded),
                BackendStatus("segmentation", config.segmentation, segmentation, self._loaded)]

    def close(self) -> None:
        """Free the loaded models (GPU memory too, where torch holds any)."""
        for cached in (model_service._da3_backend, model_service._da3_onnx_backend, model_service._sam3_model):
            cached.cache_clear()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        self._loaded = False
