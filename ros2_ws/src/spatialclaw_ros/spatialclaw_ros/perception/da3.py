"""The ``da3`` reconstruction backend: Depth Anything 3 multi-view depth and poses, aligned to TF.

Runs in the PARENT process (the sandboxed kernel cannot read model files); the kernel reaches it
through the "perception.reconstruct" host service (``model_service``). Weights load from a local
directory (``from_pretrained(model_dir)``); ``from_pretrained('depth-anything/...')`` needs a network.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..frames import Frame
from .alignment import Similarity, align_poses
from .backends import ReconstructionBackend
from .camera import backproject
from .reconstruction import Reconstruction, ViewGeometry

#: ``world_frame`` of a reconstruction left in the model's own frame (frames without TF poses): not metric.
MODEL_FRAME = "da3"


def load_depth_anything_3():
    """The ``DepthAnything3`` class, imported on a CPU-only torch too (see ``torch_compat``)."""
    from .torch_compat import register_torchvision_ops

    register_torchvision_ops()
    from depth_anything_3.api import DepthAnything3

    return DepthAnything3


@dataclass(frozen=True)
class DA3Prediction:
    """Raw model outputs at the PROCESSED resolution (h, w), one entry per input frame."""

    depth: np.ndarray  # (N, h, w) float32, model units
    confidence: np.ndarray  # (N, h, w) float32, >= 1 (DA3's raw confidence)
    K: np.ndarray  # (N, 3, 3) predicted intrinsics at (h, w)
    T_camera_model: np.ndarray  # (N, 3, 4) world-to-camera in the model's frame


def scale_intrinsics(K: np.ndarray, source_hw: tuple[int, int], target_hw: tuple[int, int]) -> np.ndarray:
    """``K`` for an image resized from ``source_hw`` to ``target_hw`` (pixel centres map onto pixel centres)."""
    sy, sx = target_hw[0] / source_hw[0], target_hw[1] / source_hw[1]
    scaled = np.asarray(K, dtype=np.float64).copy()
    scaled[0, 0], scaled[0, 2] = K[0, 0] * sx, (K[0, 2] + 0.5) * sx - 0.5
    scaled[1, 1], scaled[1, 2] = K[1, 1] * sy, (K[1, 2] + 0.5) * sy - 0.5
    return scaled


def resize_map(values: np.ndarray, target_hw: tuple[int, int]) -> np.ndarray:
    """(h, w) float map bilinearly resized to ``target_hw`` (cv2, centre-aligned like ``scale_intrinsics``)."""
    return cv2.resize(values.astype(np.float32), (target_hw[1], target_hw[0]), interpolation=cv2.INTER_LINEAR)


def unit_confidence(raw: np.ndarray) -> np.ndarray:
    """DA3's confidence (>= 1, unbounded) mapped to [0, 1) as ``1 - 1/raw``: raw 2 -> 0.5, raw 10 -> 0.9."""
    return (1.0 - 1.0 / np.maximum(raw, 1.0)).astype(np.float32)


def camera_to_world(T_camera_world: np.ndarray) -> np.ndarray:
    """(4, 4) camera-to-world pose from a (3, 4) world-to-camera extrinsic."""
    T = np.eye(4)
    T[:3, :3] = T_camera_world[:3, :3].T
    T[:3, 3] = -T_camera_world[:3, :3].T @ T_camera_world[:3, 3]
    return T


def frame_resolution(frames: list[Frame], backend: str) -> tuple[int, int]:
    """The (h, w) all ``frames`` share; ValueError naming ``backend`` when they differ (one model batch, one size)."""
    sizes = sorted({(f.height, f.width) for f in frames})
    if len(sizes) > 1:
        raise ValueError(f"the {backend} backend reconstructs frames of one resolution per call, got sizes (h, w) "
                         f"{sizes}; call Reconstruct once per camera")
    return sizes[0]


def reconstruction_from_prediction(prediction: DA3Prediction, frames: list[Frame], world_frame: str,
                                   source: str) -> Reconstruction:
    """``frames``' Reconstruction from DA3's raw ``prediction`` for them: depth and confidence at each frame's
    resolution, known intrinsics preferred, poses similarity-aligned onto TF when every frame has one (metric in
    ``world_frame``), else left in the model's frame. Shared by every backend that runs DA3 (torch, ONNX)."""
    poses = np.stack([camera_to_world(T) for T in prediction.T_camera_model])
    posed = all(f.T_world_camera is not None for f in frames)
    alignment: Similarity | None = None
    if posed:
        alignment = align_poses(poses, np.stack([f.T_world_camera for f in frames]))
        poses = np.stack([alignment.apply_pose(T) for T in poses])
    scale = alignment.scale if alignment else 1.0
    processed_hw = prediction.depth.shape[1:]
    views = []
    for n, frame in enumerate(frames):
        frame_hw = (frame.height, frame.width)
        depth = resize_map(prediction.depth[n], frame_hw) * np.float32(scale)
        if frame.K is not None:  # measured intrinsics (and lens distortion) describe the real camera
            K, distortion = frame.K.copy(), frame.distortion
        else:
            K, distortion = scale_intrinsics(prediction.K[n], processed_hw, frame_hw), None
        views.append(ViewGeometry(frame_index=frame.index, depth=depth,
                                  points=backproject(depth, K, poses[n], distortion),
                                  confidence=unit_confidence(resize_map(prediction.confidence[n], frame_hw)),
                                  K=K, T_world_camera=poses[n]))
    if alignment is None:
        recon = Reconstruction(views, world_frame=MODEL_FRAME, source=source, metric_scale=float("nan"),
                               gravity_direction=(float("nan"),) * 3)
    else:
        recon = Reconstruction(views, world_frame=world_frame, source=source)
    recon.alignment_residual_m = alignment.residual_m if alignment else None
    return recon


class DA3Backend(ReconstructionBackend):
    """Depth Anything 3 on the frames' RGB: depth, confidence and (aligned) poses at each frame's resolution.

    With TF poses on every frame the model's camera path is similarity-aligned onto them, so depth and
    points are metric in ``world_frame`` and ``reconstruction.alignment_residual_m`` holds the RMS
    camera-centre error (metres). Without poses the output stays in the model's frame ("da3", unknown
    scale: metric_scale NaN). Known intrinsics replace the predicted ones; all frames of one call share a size.
    """

    name = "da3"
    per_frame = False

    def __init__(self, model_dir: str | None = None, model_name: str = "da3-small", process_res: int = 504,
                 device: str = "cpu", *, world_frame: str = "world", allow_random_weights: bool = False) -> None:
        super().__init__(host=None, world_frame=world_frame)
        DepthAnything3 = load_depth_anything_3()
        if model_dir is not None:
            self.model = DepthAnything3.from_pretrained(model_dir)
        elif allow_random_weights:
            self.model = DepthAnything3(model_name=model_name)
        else:
            raise ValueError(
                "the da3 reconstruction backend needs model weights: set model_dir to a local directory made by "
                "DepthAnything3.save_pretrained (see models/README.md); allow_random_weights=True is for tests only")
        self.model = self.model.to(device).eval()
        self.process_res = process_res

    def predict(self, frames: list[Frame]) -> DA3Prediction:
        """Run the model on the frames' RGB (one size for all) at ``process_res``."""
        frame_resolution(frames, self.name)
        output = self.model.inference([f.rgb for f in frames], process_res=self.process_res)
        return DA3Prediction(depth=np.asarray(output.depth, dtype=np.float32),
                             confidence=np.asarray(output.conf, dtype=np.float32),
                             K=np.asarray(output.intrinsics, dtype=np.float64),
                             T_camera_model=np.asarray(output.extrinsics, dtype=np.float64))

    def reconstruct(self, frames: list[Frame]) -> Reconstruction:
        return reconstruction_from_prediction(self.predict(frames), frames, self.world_frame, self.name)
