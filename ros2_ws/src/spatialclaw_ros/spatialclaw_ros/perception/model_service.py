"""The "perception.reconstruct" host service: model reconstruction runs in the parent, the kernel gets arrays.

The sandboxed kernel cannot read model files or reach a GPU, so a model backend (e.g. ``DA3Backend``)
lives in the parent process behind ``reconstruction_handler``; inside the kernel
``HostReconstructionBackend`` asks for frames by absolute index and rebuilds the ``Reconstruction``.
Request payload ``{"frame_indices": [...]}``; reply payload ``Reconstruction.to_arrays`` metadata plus
``alignment_residual_m``, reply arrays ``{depth,points,confidence,K,T_world_camera}_<frame index>``.
"""

from __future__ import annotations

import functools

from ..config import PerceptionConfig
from ..frames import Frame, FrameSet
from ..kernel.host import HostClient, HostError, HostHandler, HostReply, HostRequest
from .alignment import AlignmentError
from .backends import MissingInputError, ReconstructionBackend
from .reconstruction import Reconstruction

SERVICE = "perception.reconstruct"
#: Reconstruction backends that run in the parent behind SERVICE (the kernel uses HostReconstructionBackend).
HOST_RECONSTRUCTION_BACKENDS = ("da3",)


@functools.lru_cache(maxsize=2)
def _da3_backend(model_dir: str, process_res: int, device: str, world_frame: str) -> ReconstructionBackend:
    """A loaded Depth Anything 3 backend, kept for the process: loading the weights is the slow part."""
    from .da3 import DA3Backend  # torch is imported only when this backend is chosen

    return DA3Backend(model_dir=model_dir or None, process_res=process_res, device=device, world_frame=world_frame)


def host_handlers(config: PerceptionConfig, frames: FrameSet) -> dict[str, HostHandler]:
    """The host services the configured perception backends need for one question (none for "sensor")."""
    if config.reconstruction not in HOST_RECONSTRUCTION_BACKENDS:
        return {}
    da3 = config.da3
    return {SERVICE: reconstruction_handler(frames, _da3_backend(da3.model_dir, da3.process_res, da3.device,
                                                                 frames.world_frame))}


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


class HostReconstructionBackend(ReconstructionBackend):
    """Kernel-side backend for model reconstruction: asks the parent's "perception.reconstruct" service."""

    name = "host"
    per_frame = False

    def __init__(self, *, host: HostClient | None, world_frame: str) -> None:
        if host is None:
            raise ValueError("a model reconstruction backend runs in the parent process and needs a host connection; "
                             "none is available here")
        super().__init__(host=host, world_frame=world_frame)

    def reconstruct(self, frames: list[Frame]) -> Reconstruction:
        return reconstruction_from_reply(self.host.call(SERVICE, {"frame_indices": [f.index for f in frames]}))
