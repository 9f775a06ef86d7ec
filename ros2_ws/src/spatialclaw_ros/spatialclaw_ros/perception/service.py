"""``PerceptionService``: the model perception backends of one owner, loaded when it says, reported, freed.

Models belong to this object, not to the process: its owner (an ``Agent``, the ROS node across its lifecycle)
decides when they load and warm up (the node's configure step; an ``Agent``'s first question when nobody did),
asks which provider each really runs on (``report``: ``spatialclaw doctor``, ``/diagnostics``), and frees them
(``close``: the node's cleanup, ``Agent.close``). Weight-free backends (``sensor``, ``classical``) need nothing here.
Each question gets host handlers over the loaded models (``handlers``), aligned to that question's world frame.
"""

from __future__ import annotations

import copy
import gc
import logging
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from ..config import PerceptionConfig
from ..frames import FrameSet
from ..kernel.host import HostHandler
from .backends import ReconstructionBackend
from .model_service import (HOST_RECONSTRUCTION_BACKENDS, HOST_SEGMENTATION_BACKENDS, SEGMENT_SERVICE, SERVICE,
                            reconstruction_handler, segmentation_handler)
from .onnx_runtime import RuntimeEnvironment

log = logging.getLogger(__name__)

#: What a weight-free backend reports as its provider.
NO_MODEL = "no model"
#: The world frame backends are built in; each question's handlers re-frame them (``_in_world_frame``).
LOAD_FRAME = "world"


@dataclass(frozen=True)
class BackendStatus:
    """One configured perception backend as its owner sees it."""

    name: str  # the configured backend, e.g. "da3-onnx"
    kind: str  # "reconstruction" or "segmentation"
    provider: str  # what it really runs on: an onnxruntime provider, "torch cuda", or NO_MODEL
    loaded: bool
    detail: str = ""  # providers left out and why (e.g. a known-bad TensorRT), where its engines are cached

    def line(self) -> str:
        """``da3-onnx (reconstruction): CPUExecutionProvider; detail``."""
        state = self.provider if self.loaded else "not loaded"
        return f"{self.name} ({self.kind}): {state}" + (f"; {self.detail}" if self.detail else "")


class PerceptionService:
    """The configured model backends (``perception.*``): nothing loads at construction; ``load`` builds and warms
    them, ``handlers`` serves a question, ``report`` says what each runs on, ``close`` frees them (GPU memory too).

    ``environment`` overrides the onnxruntime providers, GPU and TensorRT found on this machine (tests)."""

    def __init__(self, config: PerceptionConfig, *, environment: RuntimeEnvironment | None = None) -> None:
        self.config = config
        self.environment = environment
        self.reconstruction: ReconstructionBackend | None = None
        self.segmenter = None  # a SAM3Model or SAM3OnnxModel: ``segment(rgb, prompt)``
        self._loaded = False
        self._lock = threading.Lock()

    def __enter__(self) -> PerceptionService:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def load(self) -> None:
        """Build the configured model backends, load their weights and run each ONNX graph once (TensorRT builds or
        loads its engines there, not in a question). ValueError naming the setting when a model file is missing or
        unusable; ImportError when a backend's package is not installed. Loading again does nothing."""
        with self._lock:
            if self._loaded:
                return
            config = self.config
            if config.reconstruction in HOST_RECONSTRUCTION_BACKENDS:
                self.reconstruction = self._reconstruction_backend()
            if config.segmentation in HOST_SEGMENTATION_BACKENDS:
                self.segmenter = self._segmentation_model()
            for model in (self.reconstruction, self.segmenter):
                if hasattr(model, "warm_up"):
                    model.warm_up()
            self._loaded = True
        for status in self.report():
            log.info("perception backend %s", status.line())

    def _reconstruction_backend(self) -> ReconstructionBackend:
        config = self.config
        if config.reconstruction == "da3-onnx":
            from .da3_onnx import DA3OnnxBackend  # onnxruntime is imported only when this backend is chosen

            return DA3OnnxBackend(config.da3_onnx.onnx_path, config.onnx, world_frame=LOAD_FRAME,
                                  environment=self.environment)
        da3 = config.da3
        if not da3.model_dir or not Path(da3.model_dir).is_dir():
            raise ValueError(f"the da3 reconstruction backend needs perception.da3.model_dir: a directory made by "
                             f"DepthAnything3.save_pretrained (see models/README.md), got {da3.model_dir!r}")
        from .da3 import DA3Backend  # torch is imported only when this backend is chosen

        return DA3Backend(model_dir=da3.model_dir, process_res=da3.process_res, device=da3.device,
                          world_frame=LOAD_FRAME)

    def _segmentation_model(self):
        config = self.config
        if config.segmentation == "sam3-onnx":
            from .sam3_onnx import SAM3OnnxModel  # onnxruntime is imported only when this backend is chosen

            settings = config.sam3_onnx
            return SAM3OnnxModel(settings.export_dir, config.onnx, bpe_path=settings.bpe_path,
                                 cache_mb=settings.cache_mb, environment=self.environment)
        from .sam3 import SAM3Model  # torch is imported only when this backend is chosen

        settings = config.sam3
        return SAM3Model.load(settings.checkpoint, settings.bpe_path, settings.device, settings.cache_mb)

    def handlers(self, frames: FrameSet) -> dict[str, HostHandler]:
        """The host services the configured backends give one question about ``frames`` (none for sensor +
        classical); loads the models first if nobody did."""
        self.load()
        handlers = {}
        if self.reconstruction is not None:
            handlers[SERVICE] = reconstruction_handler(frames, _in_world_frame(self.reconstruction,
                                                                               frames.world_frame))
        if self.segmenter is not None:
            handlers[SEGMENT_SERVICE] = segmentation_handler(self.segmenter, self.config.segmentation)
        return handlers

    def report(self) -> list[BackendStatus]:
        """Per configured backend (reconstruction first): the provider it really runs on and what was left out."""
        config = self.config
        return [self._status(config.reconstruction, "reconstruction", self.reconstruction,
                             config.reconstruction in HOST_RECONSTRUCTION_BACKENDS, config.da3.device),
                self._status(config.segmentation, "segmentation", self.segmenter,
                             config.segmentation in HOST_SEGMENTATION_BACKENDS, config.sam3.device)]

    def _status(self, name: str, kind: str, model, needs_model: bool, torch_device: str) -> BackendStatus:
        if not needs_model:
            return BackendStatus(name, kind, NO_MODEL, True)
        if model is None:
            return BackendStatus(name, kind, "", False)
        sessions = getattr(model, "sessions", {})  # the ONNX backends' onnxruntime sessions, by part
        if not sessions:
            return BackendStatus(name, kind, f"torch {torch_device}", True)
        notes = []
        for part, session in sessions.items():
            plan = session.plan
            where = f"{part} " if len(sessions) > 1 else ""
            notes += [f"{where}{note}" for note in plan.warnings + plan.notes]
            if plan.engine_folder is not None:
                notes.append(f"{where}engines in {plan.engine_folder}")
        return BackendStatus(name, kind, model.provider, True, "; ".join(notes))

    def close(self) -> None:
        """Drop the models and give their memory back (the CUDA caching allocator's too, where torch has a GPU)."""
        with self._lock:
            self.reconstruction = self.segmenter = None
            self._loaded = False
        gc.collect()
        torch = sys.modules.get("torch")  # only a torch backend imports it; never import it here
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


def _in_world_frame(backend: ReconstructionBackend, world_frame: str) -> ReconstructionBackend:
    """``backend`` aligning to ``world_frame``: itself, or a shallow copy that shares its model."""
    if backend.world_frame == world_frame:
        return backend
    framed = copy.copy(backend)
    framed.world_frame = world_frame
    return framed
