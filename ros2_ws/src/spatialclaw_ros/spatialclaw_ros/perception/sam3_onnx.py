"""The ``sam3-onnx`` segmentation backend: SAM 3 exported in four parts, run by onnxruntime, without torch.

``models/export_sam3_onnx.py`` writes the parts, so that the ``sam3`` backend's caches keep working: the image
encoder (run once per image, cached), the text encoder (once per phrase, cached), the grounding head with its mask
decoder (text prompts: every instance, scores and masks) and the interactive decoder (boxes and points: one object).
Every shape is static except the interactive decoder's point count, which a TensorRT optimisation profile bounds
(``SAM3OnnxSpec.points``). This module repeats the package's preprocessing (antialiased bilinear resize to the square
input, normalisation) and post-processing (thresholds, small-hole filling, bilinear resize to the frame) in numpy
and cv2, from the constants the export's JSON sidecar records, and tokenizes with ``clip_tokenizer``. Runs in the
parent process behind the "perception.segment" host service, like ``sam3``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import sparse

from ..config import OnnxRuntimeConfig
from .backends import Prompt, Segment, TextPrompt
from .cache import PerceptionCache, content_digest
from .clip_tokenizer import ClipTokenizer
from .onnx_runtime import InputShape, OnnxSession, RuntimeEnvironment, open_session
from .sam3 import checked_rgb, default_bpe_path, interactive_prompt

#: The sidecar in an export folder.
SIDECAR = "sam3_onnx.json"
#: The model family ``onnx_runtime`` checks TensorRT versions against.
FAMILY = "sam3"
#: The command that writes an export folder (the start of it: a refusal names the whole thing in models/README.md).
EXPORT_COMMAND = "python models/export_sam3_onnx.py"
#: Point labels of the interactive decoder for a box's two corners (SAM's convention; 1 / 0 are fore- / background).
BOX_CORNER_LABELS = (2, 3)


@dataclass(frozen=True)
class Part:
    """One exported graph: its file in the export folder and its input and output names, in order."""

    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


IMAGE_FEATURES = ("fpn_0", "fpn_1", "fpn_2")  # the grounding head's image features, high resolution first
INSTANCE_FEATURES = ("inst_fpn_0", "inst_fpn_1", "inst_embed")  # the interactive decoder's
PARTS = {
    "image_encoder": Part("image_encoder.onnx", ("image",), IMAGE_FEATURES + INSTANCE_FEATURES),
    "text_encoder": Part("text_encoder.onnx", ("tokens",), ("text_features", "text_mask")),
    "grounding": Part("grounding.onnx", IMAGE_FEATURES + ("text_features", "text_mask"),
                      ("scores", "boxes", "mask_logits")),
    "interactive": Part("interactive.onnx", INSTANCE_FEATURES + ("point_coords", "point_labels"),
                        ("mask_logits", "iou")),
}


@dataclass(frozen=True)
class SAM3OnnxSpec:
    """What an export fixed (``sam3_onnx.json`` in its folder): the runtime's preprocessing, post-processing and the
    shape of every graph input, so that nothing is guessed."""

    model: str  # "sam3" (the 840 M-parameter model) or "sam3-tiny" (tests)
    random_weights: bool  # True: an export for trials and tests, its masks mean nothing
    resolution: int  # the square input every image is resized to
    mean: tuple[float, float, float]  # normalisation of RGB in [0, 1]
    std: tuple[float, float, float]
    context_length: int  # tokens per phrase
    num_queries: int  # grounding head's instance queries
    mask_probability: float  # a grounding mask's pixel is on the instance above this sigmoid
    mask_threshold: float  # an interactive mask's pixel is on the object above this logit
    max_hole_area: float  # background holes up to this many low-resolution pixels are filled (interactive masks)
    points: tuple[int, int, int]  # interactive decoder's prompt points: min, opt, max (TensorRT profile)
    shapes: dict[str, list[int]]  # every static graph input's shape, by input name
    package_version: str  # sam3's version at export
    opset: int

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> SAM3OnnxSpec:
        values = json.loads(path.read_text())
        return cls(**{**values, "mean": tuple(values["mean"]), "std": tuple(values["std"]),
                      "points": tuple(values["points"])})

    def input_shapes(self, part: str) -> dict[str, InputShape]:
        """The shapes ``part``'s inputs take: static, but the prompt points' count ranges over ``points``."""
        low, opt, high = self.points
        dynamic = {"point_coords": InputShape((1, low, 2), (1, opt, 2), (1, high, 2)),
                   "point_labels": InputShape((1, low), (1, opt), (1, high))}
        return {name: dynamic.get(name) or InputShape.static(self.shapes[name]) for name in PARTS[part].inputs}


def _resampling(source: int, target: int) -> sparse.csr_matrix:
    """(target, source) weights of one axis of torch's antialiased bilinear resize: a triangle filter around each
    target pixel's centre, widened by the scale when shrinking, rows summing to one."""
    scale = source / target
    support = max(scale, 1.0)
    centres = (np.arange(target) + 0.5) * scale
    distance = (np.arange(source)[None, :] + 0.5 - centres[:, None]) / support
    weights = np.clip(1.0 - np.abs(distance), 0.0, None)
    return sparse.csr_matrix(weights / weights.sum(axis=1, keepdims=True))


def resize_antialiased(rgb: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8 as torchvision's ``Resize`` (bilinear, antialiased) makes it, to within
    one grey level (torchvision rounds between its two passes)."""
    height, width = rgb.shape[:2]
    rows = _resampling(height, size) @ rgb.reshape(height, -1).astype(np.float32)  # (size, W * 3)
    columns = _resampling(width, size) @ rows.reshape(size, width, 3).transpose(1, 0, 2).reshape(width, -1)
    resized = columns.reshape(size, size, 3).transpose(1, 0, 2)
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8)


def preprocess(rgb: np.ndarray, spec: SAM3OnnxSpec) -> np.ndarray:
    """(1, 3, resolution, resolution) float32 image-encoder input from (H, W, 3) uint8 RGB, as ``Sam3Processor``
    makes it: resized to the square input (aspect not kept), scaled to [0, 1] and normalised."""
    unit = resize_antialiased(rgb, spec.resolution).astype(np.float32) / np.float32(255)
    normalised = (unit - np.float32(spec.mean)) / np.float32(spec.std)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])


def resize_logits(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w) float32 mask logits bilinearly resized to (height, width), pixel centres aligned (torch's
    ``interpolate(mode="bilinear", align_corners=False)``)."""
    return cv2.resize(logits, (width, height), interpolation=cv2.INTER_LINEAR)


def fill_small_holes(logits: np.ndarray, threshold: float, max_area: float) -> np.ndarray:
    """``logits`` with each 8-connected background region (<= ``threshold``) of at most ``max_area`` pixels raised to
    ``threshold + 10``: SAM's hole filling of interactive masks, before they are resized."""
    background = (logits <= threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(background, connectivity=8)
    small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] <= max_area)
    holes = np.isin(labels, small[small > 0])  # label 0 is the foreground
    return np.where(holes, np.float32(threshold + 10.0), logits)


class SAM3OnnxModel:
    """SAM 3 from an ONNX export behind ``segment(rgb, prompt)``, what ``SAM3Model`` computes, encoder outputs cached.

    ``runtime`` (``perception.onnx``) picks the providers of all four parts: by default TensorRT (FP16, keyed engine
    cache), then CUDA, then CPU, those this machine can run; ``environment`` overrides what is detected here.
    """

    def __init__(self, export_dir: str | Path, runtime: OnnxRuntimeConfig | None = None, *, bpe_path: str = "",
                 cache_mb: int = 1024, environment: RuntimeEnvironment | None = None) -> None:
        export_dir = Path(export_dir) if export_dir else Path()
        if not export_dir.name or not (export_dir / SIDECAR).is_file():
            raise ValueError(f"the sam3-onnx segmentation backend needs perception.sam3_onnx.export_dir: a folder "
                             f"written by `{EXPORT_COMMAND}` holding {SIDECAR} (see models/README.md), "
                             f"got {str(export_dir) if export_dir.name else ''!r}")
        bpe_path = bpe_path or default_bpe_path()
        if not bpe_path or not Path(bpe_path).is_file():
            raise ValueError(f"the sam3-onnx segmentation backend needs perception.sam3_onnx.bpe_path: a local file "
                             f"(see models/README.md), got {bpe_path!r}")
        runtime = runtime or OnnxRuntimeConfig()
        self.spec = SAM3OnnxSpec.load(export_dir / SIDECAR)
        self.tokenizer = ClipTokenizer(bpe_path, self.spec.context_length)
        environment = environment or RuntimeEnvironment.detect(runtime.device_id)
        self.sessions: dict[str, OnnxSession] = {
            name: open_session(export_dir / part.file, runtime, family=FAMILY, shapes=self.spec.input_shapes(name),
                               environment=environment)
            for name, part in PARTS.items()}
        self.cache = PerceptionCache(max_bytes=cache_mb << 20)
        #: Encoder runs so far, for tests and logs: {"image": n, "text": n}.
        self.encoder_runs = {"image": 0, "text": 0}

    @property
    def provider(self) -> str:
        """What the parts run on: one provider for all, else each part's."""
        providers = {name: session.provider for name, session in self.sessions.items()}
        if len(set(providers.values())) == 1:
            return next(iter(providers.values()))
        return ", ".join(f"{name}: {provider}" for name, provider in providers.items())

    def warm_up(self) -> None:
        """Run every part once, so that the first question pays no TensorRT build."""
        for session in self.sessions.values():
            session.warm_up()

    def _run(self, part: str, *inputs: np.ndarray) -> list[np.ndarray]:
        return self.sessions[part].run(dict(zip(PARTS[part].inputs, inputs)), PARTS[part].outputs)

    def segment(self, rgb: np.ndarray, prompt: Prompt) -> list[Segment]:
        """Instances ``prompt`` selects in the (H, W, 3) uint8 ``rgb``: all above the threshold for a text prompt,
        exactly one for a box or point prompt; masks at the image's resolution."""
        rgb = checked_rgb(rgb)
        features = self._image(rgb)
        if isinstance(prompt, TextPrompt):
            return self._ground(features, self._text(prompt.text), prompt.confidence_threshold, rgb.shape[:2])
        return [self._interactive(features, prompt, rgb.shape[:2])]

    def _image(self, rgb: np.ndarray) -> tuple[np.ndarray, ...]:
        def encode() -> tuple[np.ndarray, ...]:
            self.encoder_runs["image"] += 1
            return tuple(self._run("image_encoder", preprocess(rgb, self.spec)))

        return self.cache.get_or_compute(("image", content_digest(rgb)), encode)

    def _text(self, phrase: str) -> tuple[np.ndarray, ...]:
        def encode() -> tuple[np.ndarray, ...]:
            self.encoder_runs["text"] += 1
            return tuple(self._run("text_encoder", self.tokenizer(phrase)))

        return self.cache.get_or_compute(("text", phrase), encode)

    def _ground(self, image: tuple[np.ndarray, ...], text: tuple[np.ndarray, ...], threshold: float,
                frame_hw: tuple[int, int]) -> list[Segment]:
        """Every grounded instance scoring >= ``threshold``, best first."""
        scores, _, mask_logits = self._run("grounding", *image[:len(IMAGE_FEATURES)], *text)
        scores = scores.reshape(-1)
        keep = np.flatnonzero(scores >= threshold)
        keep = keep[np.argsort(-scores[keep], kind="stable")]
        logit = np.log(self.spec.mask_probability / (1 - self.spec.mask_probability))  # sigmoid(x) > p <=> x > logit
        return [Segment(resize_logits(mask_logits[0, i], *frame_hw) > logit, float(scores[i])) for i in keep]

    def _interactive(self, image: tuple[np.ndarray, ...], prompt, frame_hw: tuple[int, int]) -> Segment:
        """The one object a box (with optional seed points) or foreground/background points select."""
        box, points, labels = interactive_prompt(prompt)
        if box is not None:
            points = np.concatenate([box.reshape(2, 2), points])
            labels = np.concatenate([np.int32(BOX_CORNER_LABELS), labels])
        low, _, high = self.spec.points
        if not low <= len(points) <= high:
            raise ValueError(f"the sam3-onnx export takes {low} to {high} prompt points (a box counts as two), got "
                             f"{len(points)}; prompt with fewer points")
        height, width = frame_hw
        coords = points / np.float32([width, height]) * np.float32(self.spec.resolution)  # pixels -> model input
        mask_logits, iou = self._run("interactive", *image[len(IMAGE_FEATURES):], coords[None].astype(np.float32),
                                     labels[None].astype(np.int32))
        spec = self.spec
        logits = fill_small_holes(mask_logits[0, 0], spec.mask_threshold, spec.max_hole_area)
        return Segment(resize_logits(logits, height, width) > spec.mask_threshold, float(np.clip(iou[0, 0], 0.0, 1.0)))
