"""The ``sensor`` reconstruction backend: exact metric points from measured depth, CameraInfo and TF.

Confidence per pixel: 1.0 where depth is valid, ``EDGE_CONFIDENCE`` on the far side of a depth
discontinuity (mixed "flying" pixels live there), 0.0 where the sensor gave no depth.
"""

from __future__ import annotations

import numpy as np

from ..frames import Frame
from .backends import MissingInputError, ReconstructionBackend
from .camera import backproject, depth_edges
from .reconstruction import Reconstruction, ViewGeometry

#: Below the tools' default ``conf_threshold`` of 0.3, so depth-edge pixels are left out of 3D statistics.
EDGE_CONFIDENCE = 0.1

_NEEDS = {"depth": "no depth image", "K": "no intrinsics (CameraInfo)", "T_world_camera": "no camera pose (TF)"}


def check_sensor_inputs(frames: list[Frame]) -> None:
    """Raise MissingInputError naming every frame that lacks depth, intrinsics or a pose."""
    problems = [f"frame {f.index}: {why}" for f in frames for attr, why in _NEEDS.items() if getattr(f, attr) is None]
    if problems:
        raise MissingInputError(
            "the 'sensor' reconstruction backend needs measured depth, intrinsics and a camera pose for every "
            f"frame, but {'; '.join(problems)}. For cameras without a depth sensor configure the 'da3' "
            "reconstruction backend (monocular depth), or pass only frames that have these inputs.")


class SensorBackend(ReconstructionBackend):
    """Back-projects each frame's metric depth with its intrinsics into the TF world frame."""

    name = "sensor"
    per_frame = True

    def reconstruct(self, frames: list[Frame]) -> Reconstruction:
        check_sensor_inputs(frames)
        return Reconstruction([self.view(f) for f in frames], world_frame=self.world_frame, source=self.name)

    @staticmethod
    def view(frame: Frame) -> ViewGeometry:
        """One frame's depth, world points and confidence (inputs already checked)."""
        depth = frame.depth.astype(np.float32)
        valid = np.isfinite(depth)
        confidence = np.where(valid, 1.0, 0.0).astype(np.float32)
        confidence[depth_edges(depth)] = EDGE_CONFIDENCE
        points = backproject(depth, frame.K, frame.T_world_camera, frame.distortion)
        return ViewGeometry(frame_index=frame.index, depth=depth, points=points, confidence=confidence,
                            K=frame.K.copy(), T_world_camera=frame.T_world_camera.copy())
