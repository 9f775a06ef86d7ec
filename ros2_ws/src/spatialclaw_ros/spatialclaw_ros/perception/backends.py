"""Perception backend interfaces, prompt types, and the registry that configuration picks backends from.

Backends are named in configuration ("sensor", "classical"; model backends such as "da3" or "sam3"
plug in here) and imported only when chosen, so a heavy model backend costs nothing unless used.
A model backend runs in the parent process and is reached through a host call; everything it
returns (Reconstruction, masks) is plain arrays so that it crosses the channel without pickle.
"""

from __future__ import annotations

import dataclasses
import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from ..frames import Frame
from ..kernel.host import HostClient
from .reconstruction import Reconstruction
from .tracking import follow_objects

#: Backend name -> "module:Class", imported on first use.
RECONSTRUCTION_BACKENDS: dict[str, str] = {
    "sensor": "spatialclaw_ros.perception.sensor:SensorBackend",
    "da3": "spatialclaw_ros.perception.model_service:HostReconstructionBackend",  # the model runs in the parent
    "da3-onnx": "spatialclaw_ros.perception.model_service:HostReconstructionBackend",  # likewise
}
SEGMENTATION_BACKENDS: dict[str, str] = {
    "classical": "spatialclaw_ros.perception.classical:ClassicalSegmenter",
    "sam3": "spatialclaw_ros.perception.model_service:HostSegmenter",  # the model runs in the parent
    "sam3-onnx": "spatialclaw_ros.perception.model_service:HostSegmenter",  # likewise
}


@dataclass(frozen=True)
class BackendChoice:
    """The perception backends a question's tools use (tools.Reconstruct, tools.SAM3; ``Metadata.perception``)."""

    reconstruction: str = "sensor"
    segmentation: str = "classical"


class MissingInputError(ValueError):
    """A frame lacks an input (depth, pose, intrinsics) that the chosen backend needs."""


class ReconstructionBackend(ABC):
    """Turns frames into a metric Reconstruction in the TF world frame."""

    name: ClassVar[str]
    #: True when each frame's output depends on that frame alone, so outputs are cached per frame.
    per_frame: ClassVar[bool]

    def __init__(self, *, host: HostClient | None, world_frame: str) -> None:
        self.host = host
        self.world_frame = world_frame

    @abstractmethod
    def reconstruct(self, frames: list[Frame]) -> Reconstruction:
        """Reconstruct ``frames`` (1..64); outputs at each frame's resolution, ordered like ``frames``."""


#: What segmentation backends call to get depth and poses: frames -> Reconstruction (cached).
Reconstructor = Callable[[list[Frame]], Reconstruction]


@dataclass(frozen=True)
class BoxPrompt:
    """A pixel box [x1, y1, x2, y2] (x2, y2 exclusive, like tools.Mask.bounding_box) around one object,
    optionally with pixel points (x, y) known to lie on it (tracking's seeds)."""

    box: tuple[float, float, float, float]
    points: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class PointPrompt:
    """Pixel points (x, y) on one object; label 1 = on the object (foreground), 0 = not on it (background)."""

    points: tuple[tuple[float, float], ...]
    labels: tuple[int, ...]


@dataclass(frozen=True)
class TextPrompt:
    """A short noun phrase naming the object(s), e.g. "red chair"."""

    text: str
    confidence_threshold: float = 0.3


Prompt = BoxPrompt | PointPrompt | TextPrompt
_PROMPT_TYPES = {"box": BoxPrompt, "points": PointPrompt, "text": TextPrompt}


def prompt_payload(prompt: Prompt) -> dict:
    """JSON-safe form of a prompt, for a host call: its fields and ``"type"``."""
    kind = next(name for name, cls in _PROMPT_TYPES.items() if isinstance(prompt, cls))
    return {"type": kind, **dataclasses.asdict(prompt)}


def prompt_from_payload(payload: dict) -> Prompt:
    """The prompt ``prompt_payload`` describes; ValueError naming what is malformed (it comes from the kernel)."""
    fields = dict(payload) if isinstance(payload, dict) else {}
    cls = _PROMPT_TYPES.get(fields.pop("type", None))
    if cls is None:
        raise ValueError(f"a prompt needs a type among {sorted(_PROMPT_TYPES)}, got {payload!r:.200}")
    try:
        if cls is TextPrompt:
            return TextPrompt(str(fields["text"]), float(fields.get("confidence_threshold", 0.3)))
        points = tuple((float(x), float(y)) for x, y in fields.get("points", ()))
        if cls is BoxPrompt:
            x1, y1, x2, y2 = (float(v) for v in fields["box"])
            return BoxPrompt((x1, y1, x2, y2), points)
        return PointPrompt(points, tuple(int(v) for v in fields["labels"]))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"malformed {cls.__name__} payload {payload!r:.200}: {error}") from None


@dataclass(frozen=True)
class Segment:
    """One instance found in one image: an (H, W) bool mask and the backend's score in [0, 1]."""

    mask: np.ndarray
    score: float

    @property
    def nbytes(self) -> int:
        return self.mask.nbytes


class SegmentationBackend(ABC):
    """Segments objects in frames from prompts, and follows them through the other frames."""

    name: ClassVar[str]
    #: One line for the agent: what this backend can and cannot do.
    summary: ClassVar[str]

    def __init__(self, *, host: HostClient | None, reconstruct: Reconstructor) -> None:
        self.host = host
        self.reconstruct = reconstruct

    @abstractmethod
    def segment_image(self, frame: Frame, prompt: Prompt) -> list[Segment]:
        """Instances that ``prompt`` selects in ``frame``: exactly one for box and point prompts."""

    @abstractmethod
    def count(self, frame: Frame, name: str) -> int:
        """How many instances of ``name`` are visible in ``frame``."""

    @abstractmethod
    def refine(self, frame: Frame, recon: Reconstruction, box: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """(H, W) bool mask of the one object in pixel ``box`` of ``frame`` that covers the (K, 2) ``seeds``
        (``recon`` holds the frame's depth and pose): how tracking re-segments an object in a further frame."""

    def track(self, frames: list[Frame], prompt_position: int, masks: list[np.ndarray]) -> list[np.ndarray]:
        """Per frame an (N, H, W) bool stack: the N ``masks`` of ``frames[prompt_position]`` followed through
        ``frames`` by re-projecting their 3D points (``tracking``); an empty mask where an object is not visible."""
        try:
            recon = self.reconstruct(frames)
        except MissingInputError as error:
            raise MissingInputError(f"the {self.name} backend follows objects between frames with depth and camera "
                                    f"poses: {error}") from None
        return follow_objects(frames, recon, prompt_position, masks, self.refine)


def _load(registry: dict[str, str], kind: str, name: str) -> type:
    if name not in registry:
        raise ValueError(f"unknown {kind} backend {name!r}; available: {', '.join(sorted(registry))}")
    module, attribute = registry[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def make_reconstruction_backend(name: str, *, host: HostClient | None, world_frame: str) -> ReconstructionBackend:
    """The reconstruction backend registered as ``name``."""
    return _load(RECONSTRUCTION_BACKENDS, "reconstruction", name)(host=host, world_frame=world_frame)


def make_segmentation_backend(name: str, *, host: HostClient | None, reconstruct: Reconstructor) -> SegmentationBackend:
    """The segmentation backend registered as ``name``."""
    return _load(SEGMENTATION_BACKENDS, "segmentation", name)(host=host, reconstruct=reconstruct)
