"""The ``da3-onnx`` reconstruction backend: Depth Anything 3 exported to ONNX, run by onnxruntime, without torch.

Same interface and outputs as ``da3``: this module repeats DA3's input preprocessing (numpy + cv2, from the
constants the export's JSON sidecar records), runs the graph ``models/export_da3_onnx.py`` wrote, and hands the
raw outputs to da3's post-processing (``reconstruction_from_prediction``). An export has one static shape (views,
height, width); TensorRT builds its engines from the same graph through onnxruntime's TensorRT provider, where
installed (providers, FP16 and the keyed engine cache: ``onnx_runtime``). Runs in the parent process like ``da3``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ..config import OnnxRuntimeConfig
from ..frames import Frame
from .backends import ReconstructionBackend
from .da3 import DA3Prediction, frame_resolution, reconstruction_from_prediction
from .onnx_runtime import InputShape, OnnxSession, RuntimeEnvironment, open_session
from .reconstruction import Reconstruction

#: Names of the graph's input, (N, 3, H, W) float32 normalised RGB, and outputs, in the order the export writes them.
INPUT_NAME = "images"
OUTPUT_NAMES = ("depth", "confidence", "intrinsics", "extrinsics")
#: The model family ``onnx_runtime`` checks TensorRT versions against.
FAMILY = "depth-anything-3"
#: The one resize rule implemented here: DA3's default (long side to process_res, then each side to the nearest
#: multiple of the patch size), the one ``da3`` uses.
RESIZE_METHOD = "upper_bound_resize"
#: The start of the command a refusal suggests (it adds --views, --height and --width for the refused frames).
EXPORT_COMMAND = "python models/export_da3_onnx.py --model-dir DIR --out FILE.onnx"


@dataclass(frozen=True)
class DA3OnnxSpec:
    """What an export fixed (the JSON sidecar next to the .onnx), so that the runtime preprocesses without guessing."""

    views: int  # static N of the (N, 3, height, width) input
    height: int
    width: int
    process_res: int  # DA3's process_res that maps frames onto (height, width)
    process_res_method: str
    patch_size: int
    mean: tuple[float, float, float]  # ImageNet normalisation of RGB in [0, 1]
    std: tuple[float, float, float]
    ref_view_strategy: str
    model_name: str  # the DA3 preset, e.g. "da3-small"
    package_version: str  # depth-anything-3's version at export
    opset: int

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> DA3OnnxSpec:
        values = json.loads(path.read_text())
        return cls(**{**values, "mean": tuple(values["mean"]), "std": tuple(values["std"])})


def sidecar_path(onnx_path: Path) -> Path:
    """Where the export's sidecar lies: ``FILE.json`` next to ``FILE.onnx``."""
    return Path(onnx_path).with_suffix(".json")


def _nearest_multiple(value: int, step: int) -> int:
    """DA3's rounding to the patch grid: the nearer multiple of ``step``, the upper one on a tie, at least 1."""
    down = value // step * step
    return max(1, down + step if value - down >= step / 2 else down)


def processed_size(frame_hw: tuple[int, int], process_res: int, patch_size: int) -> tuple[int, int]:
    """(h, w) at which DA3 processes a ``frame_hw`` image (``upper_bound_resize``): the size its export must have."""
    scale = process_res / max(frame_hw)
    return tuple(_nearest_multiple(max(1, round(side * scale)), patch_size) for side in frame_hw)


def _resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """``rgb`` at (height, width) as DA3 resizes: cubic when either side grows, area otherwise; unchanged if equal."""
    if rgb.shape[:2] == (height, width):
        return rgb
    enlarge = height > rgb.shape[0] or width > rgb.shape[1]
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC if enlarge else cv2.INTER_AREA)


def preprocess(rgb: np.ndarray, spec: DA3OnnxSpec) -> np.ndarray:
    """(3, h, w) float32 model input from (H, W, 3) uint8 RGB, as DA3's InputProcessor makes it: the same two cv2
    resizes (long side to process_res, then onto the patch grid) and ImageNet normalisation."""
    scale = spec.process_res / max(rgb.shape[:2])
    rgb = _resize(rgb, max(1, round(rgb.shape[0] * scale)), max(1, round(rgb.shape[1] * scale)))
    rgb = _resize(rgb, spec.height, spec.width)
    unit = rgb.astype(np.float32) / np.float32(255)
    normalised = (unit - np.float32(spec.mean)) / np.float32(spec.std)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))


class DA3OnnxBackend(ReconstructionBackend):
    """Depth Anything 3 from an ONNX export: what ``da3`` computes, for exactly the export's view count and size.

    ``runtime`` (``perception.onnx``) picks the onnxruntime providers: by default TensorRT (FP16, keyed engine
    cache), then CUDA, then CPU, those this machine can run; ``environment`` overrides what is detected here.
    """

    name = "da3-onnx"
    per_frame = False

    def __init__(self, onnx_path: str | Path, runtime: OnnxRuntimeConfig | None = None, *, world_frame: str = "world",
                 environment: RuntimeEnvironment | None = None) -> None:
        super().__init__(host=None, world_frame=world_frame)
        self.onnx_path = Path(onnx_path)
        if self.onnx_path.suffix != ".onnx" or not sidecar_path(self.onnx_path).is_file():
            raise ValueError(f"the {self.name} backend needs perception.da3_onnx.onnx_path: a FILE.onnx written by "
                             f"models/export_da3_onnx.py, with its FILE.json beside it (see models/README.md); got "
                             f"{str(onnx_path)!r}")
        self.spec = DA3OnnxSpec.load(sidecar_path(self.onnx_path))
        if self.spec.process_res_method != RESIZE_METHOD:
            raise ValueError(f"{self.onnx_path} was exported for DA3's {self.spec.process_res_method!r} preprocessing; "
                             f"the da3-onnx backend implements {RESIZE_METHOD!r} only")
        shape = InputShape.static((self.spec.views, 3, self.spec.height, self.spec.width))
        self.session = open_session(self.onnx_path, runtime or OnnxRuntimeConfig(), family=FAMILY,
                                    shapes={INPUT_NAME: shape}, environment=environment)

    @property
    def sessions(self) -> dict[str, OnnxSession]:
        """The export's one graph, by part name (as ``SAM3OnnxModel.sessions``)."""
        return {"graph": self.session}

    @property
    def provider(self) -> str:
        """What the graph runs on: onnxruntime's first provider for the session."""
        return self.session.provider

    def warm_up(self) -> None:
        """One run at the export's shape, so that the first question pays no TensorRT build."""
        self.session.warm_up()

    def predict(self, frames: list[Frame]) -> DA3Prediction:
        """Run the export on the frames' RGB: as ``DA3Backend.predict``, for frames that fit the export's shape."""
        spec = self.spec
        frame_hw = frame_resolution(frames, self.name)
        fitted = processed_size(frame_hw, spec.process_res, spec.patch_size)
        if (len(frames), *fitted) != (spec.views, spec.height, spec.width):
            raise ValueError(
                f"{self.onnx_path} takes exactly {spec.views} views processed at {spec.height}x{spec.width} (h x w, "
                f"process_res {spec.process_res}); got {len(frames)} frames of {frame_hw[0]}x{frame_hw[1]}, processed "
                f"at {fitted[0]}x{fitted[1]}. Export a graph for them: "
                f"`{EXPORT_COMMAND} --views {len(frames)} --height {fitted[0]} --width {fitted[1]}`")
        images = np.stack([preprocess(f.rgb, spec) for f in frames])
        depth, confidence, K, extrinsics = self.session.run({INPUT_NAME: images}, OUTPUT_NAMES)
        return DA3Prediction(depth=depth.astype(np.float32), confidence=confidence.astype(np.float32),
                             K=K.astype(np.float64), T_camera_model=extrinsics.astype(np.float64))

    def reconstruct(self, frames: list[Frame]) -> Reconstruction:
        return reconstruction_from_prediction(self.predict(frames), frames, self.world_frame, self.name)
