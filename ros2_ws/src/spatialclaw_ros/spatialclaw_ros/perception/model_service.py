"""Host services for model perception: the models run in the parent, the kernel sends requests and gets arrays.

The sandboxed kernel cannot read model files or reach a GPU, so model backends live in the parent
process (owned by a ``service.PerceptionService``) behind host handlers, and inside the kernel thin
backends ask for their results:
- "perception.reconstruct" (``da3``, ``da3-onnx``): payload ``{"frame_indices": [...]}``; reply payload
  ``Reconstruction.to_arrays`` metadata plus ``alignment_residual_m``, reply arrays
  ``{depth,points,confidence,K,T_world_camera}_<frame index>``. Kernel side: ``HostReconstructionBackend``.
- "perception.segment" (``sam3``, ``sam3-onnx``): payload ``{"prompt": prompt_payload(...)}``, array ``image``
  (H, W, 3) uint8; reply payload ``{"scores": [...]}``, array ``masks`` (K, H, W) bool. Kernel side:
  ``HostSegmenter``.
"""

from __future__ import annotations

import numpy as np

from ..frames import Frame, FrameSet
from ..kernel.host import HostClient, HostError, HostHandler, HostReply, HostRequest
from .alignment import AlignmentError
from .backends import (BoxPrompt, MissingInputError, Prompt, ReconstructionBackend, Reconstructor, Segment,
                       SegmentationBackend, TextPrompt, prompt_from_payload, prompt_payload)
from .reconstruction import Reconstruction

SERVICE = "perception.reconstruct"
SEGMENT_SERVICE = "perception.segment"
#: Backends that run in the parent behind these services (the kernel uses the Host* backends below).
HOST_RECONSTRUCTION_BACKENDS = ("da3", "da3-onnx")
HOST_SEGMENTATION_BACKENDS = ("sam3", "sam3-onnx")


def reconstruction_handler(frames: FrameSet, backend: ReconstructionBackend) -> HostHandler:
    """Host handler that reconstructs the question's frames named in ``payload["frame_indices"]`` with ``backend``."""
    if backend.world_frame != frames.world_frame:
        raise ValueError(f"the {backend.name} backend aligns to world frame {backend.world_frame!r} but the "
                         f"question's frames are in {frames.world_frame!r}")
    by_index = {f.index: f for f in frames.frames}

    def handle(request: HostRequest) -> HostReply:
        selected = _select(by_index, request.payload.get("frame_indices"))
        try:
            recon = backend.reconstruct(selected)
        except (AlignmentError, MissingInputError, ValueError) as error:
            raise HostError(f"{SERVICE} ({backend.name}): {error}") from error
        meta, arrays = recon.to_arrays()
        return HostReply({**meta, "alignment_residual_m": recon.alignment_residual_m}, arrays)

    return handle


def _select(by_index: dict[int, Frame], frame_indices) -> list[Frame]:
    if not isinstance(frame_indices, list) or not frame_indices:
        raise HostError(f'{SERVICE}: payload needs "frame_indices", a non-empty list of absolute frame indices')
    unknown = [i for i in frame_indices if i not in by_index]
    if unknown:
        raise HostError(f"{SERVICE}: no frames {unknown}; valid frame indices: {list(by_index)}")
    return [by_index[i] for i in frame_indices]


def reconstruction_from_reply(reply: HostReply) -> Reconstruction:
    """The ``Reconstruction`` a "perception.reconstruct" reply carries, with ``alignment_residual_m`` set."""
    recon = Reconstruction.from_arrays(reply.payload, reply.arrays)
    recon.alignment_residual_m = reply.payload["alignment_residual_m"]
    return recon


def segmentation_handler(model, name: str = "sam3") -> HostHandler:
    """Host handler that segments the request's ``image`` with ``model.segment`` (a ``SAM3Model`` or
    ``SAM3OnnxModel``); ``name`` is the backend its errors name."""

    def handle(request: HostRequest) -> HostReply:
        image = request.arrays.get("image")
        if image is None or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            got = "none" if image is None else f"{image.dtype} {image.shape}"
            raise HostError(f'{SEGMENT_SERVICE}: needs an "image" array, (H, W, 3) uint8 RGB; got {got}')
        try:
            found = model.segment(image, prompt_from_payload(request.payload.get("prompt")))
        except ValueError as error:
            raise HostError(f"{SEGMENT_SERVICE} ({name}): {error}") from error
        masks = np.stack([s.mask for s in found]) if found else np.zeros((0, *image.shape[:2]), dtype=bool)
        return HostReply({"scores": [s.score for s in found]}, {"masks": masks.astype(bool)})

    return handle


class HostReconstructionBackend(ReconstructionBackend):
    """Kernel-side backend for model reconstruction: asks the parent's "perception.reconstruct" service."""

    name = "host"
    per_frame = False

    def __init__(self, *, host: HostClient | None, world_frame: str) -> None:
        super().__init__(host=_connected(host, "reconstruction"), world_frame=world_frame)

    def reconstruct(self, frames: list[Frame]) -> Reconstruction:
        return reconstruction_from_reply(self.host.call(SERVICE, {"frame_indices": [f.index for f in frames]}))


class HostSegmenter(SegmentationBackend):
    """Kernel-side ``sam3`` and ``sam3-onnx`` backend: each segmentation is a "perception.segment" call; tracking
    runs here."""

    name = "sam3"
    summary = ("sam3 (SAM 3): a text prompt segments every instance scoring at least its threshold; a box or points "
               "(background points honoured) segment one object; video masks follow each object by re-projecting "
               "its 3D points into each frame and re-segmenting it there (needs depth and camera poses)")

    def __init__(self, *, host: HostClient | None, reconstruct: Reconstructor) -> None:
        super().__init__(host=_connected(host, "segmentation"), reconstruct=reconstruct)

    def segment_image(self, frame: Frame, prompt: Prompt) -> list[Segment]:
        reply = self.host.call(SEGMENT_SERVICE, {"prompt": prompt_payload(prompt)}, {"image": frame.rgb})
        return [Segment(mask, float(score)) for mask, score in zip(reply.arrays["masks"], reply.payload["scores"])]

    def count(self, frame: Frame, name: str) -> int:
        return len(self.segment_image(frame, TextPrompt(name)))

    def refine(self, frame: Frame, recon: Reconstruction, box: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        prompt = BoxPrompt(tuple(float(v) for v in box), tuple((float(x), float(y)) for x, y in seeds))
        return self.segment_image(frame, prompt)[0].mask


def _connected(host: HostClient | None, kind: str) -> HostClient:
    if host is None:
        raise ValueError(f"a model {kind} backend runs in the parent process and needs a host connection; "
                         "none is available here")
    return host
