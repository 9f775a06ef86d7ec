"""Similarity alignment (scale, rotation, translation) of a model's predicted camera poses onto TF poses.

A multi-view model such as Depth Anything 3 predicts poses in its own frame and up to scale; aligning
its camera poses to the robot's TF camera poses puts its depth and points into the metric TF world.
Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Below this spread (RMS distance of the TF camera centres from their mean, metres) the scale is unobservable.
MIN_BASELINE_M = 0.02
#: Centres whose second singular value is below this fraction of the first are treated as collinear.
COLLINEAR_RATIO = 0.05


class AlignmentError(ValueError):
    """The poses do not determine a similarity transform (too few frames, or the camera did not move)."""


@dataclass(frozen=True)
class Similarity:
    """``x_target = scale * R @ x_source + t``; ``residual_m`` is the RMS camera-centre error after alignment."""

    scale: float
    R: np.ndarray  # (3, 3) rotation
    t: np.ndarray  # (3,)
    residual_m: float
    method: str  # "umeyama" (centres alone) or "orientation" (rotation from camera orientations)

    def apply_points(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 3) source points into the target frame."""
        return self.scale * (np.asarray(points, dtype=np.float64) @ self.R.T) + self.t

    def apply_pose(self, T_source_camera: np.ndarray) -> np.ndarray:
        """Map a (4, 4) camera-to-source pose to camera-to-target; the camera's own axes stay unscaled."""
        T = np.eye(4)
        T[:3, :3] = self.R @ T_source_camera[:3, :3]
        T[:3, 3] = self.apply_points(T_source_camera[:3, 3])
        return T


def umeyama(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (scale, R, t) taking (N, 3) ``source`` onto ``target`` (Umeyama 1991).

    Needs N >= 3 points not on one line; raises AlignmentError otherwise.
    """
    source, target = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 3:
        raise ValueError(f"umeyama needs two (N, 3) arrays of one shape, got {source.shape} and {target.shape}")
    if len(source) < 3:
        raise AlignmentError(f"umeyama needs at least 3 points, got {len(source)}")
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    centred_s, centred_t = source - mean_s, target - mean_t
    variance_s = (centred_s ** 2).sum() / len(source)
    U, singular, Vt = np.linalg.svd(centred_t.T @ centred_s / len(source))
    if variance_s <= 0 or singular[1] <= COLLINEAR_RATIO * singular[0]:
        raise AlignmentError("umeyama: the points are (nearly) collinear, so the rotation about their line is undetermined")
    sign = np.ones(3)
    sign[2] = np.sign(np.linalg.det(U) * np.linalg.det(Vt)) or 1.0
    R = U @ np.diag(sign) @ Vt
    scale = float((singular * sign).sum() / variance_s)
    return scale, R, mean_t - scale * R @ mean_s


def mean_rotation(rotations: np.ndarray) -> np.ndarray:
    """The rotation closest (chordal L2) to the mean of (N, 3, 3) rotation matrices."""
    U, _, Vt = np.linalg.svd(np.asarray(rotations, dtype=np.float64).sum(axis=0))
    sign = np.ones(3)
    sign[2] = np.sign(np.linalg.det(U @ Vt)) or 1.0
    return U @ np.diag(sign) @ Vt


def align_poses(source_poses: np.ndarray, target_poses: np.ndarray) -> Similarity:
    """Similarity taking (N, 4, 4) camera-to-source poses onto camera-to-target (TF) poses.

    When the TF camera centres span a plane (N >= 3, not collinear) this is Umeyama on the centres.
    Otherwise (2 frames, or a straight drive) the rotation comes from the camera orientations
    (``mean_rotation`` of R_target @ R_source^T) and scale and translation from the centres given it.
    Raises AlignmentError when the centres spread less than ``MIN_BASELINE_M``: the scale is unobservable.
    """
    source_poses, target_poses = np.asarray(source_poses, dtype=np.float64), np.asarray(target_poses, dtype=np.float64)
    if source_poses.shape != target_poses.shape or source_poses.shape[1:] != (4, 4):
        raise ValueError(f"align_poses needs two (N, 4, 4) arrays of one shape, got {source_poses.shape} and {target_poses.shape}")
    source, target = source_poses[:, :3, 3], target_poses[:, :3, 3]
    spread = float(np.sqrt(((target - target.mean(axis=0)) ** 2).sum(axis=1).mean()))
    if len(source) < 2 or spread < MIN_BASELINE_M:
        raise AlignmentError(
            f"the {len(source)} camera position(s) spread {spread:.3f} m (RMS) in TF, less than {MIN_BASELINE_M} m: the "
            "model's scale cannot be fixed from the poses; pass frames taken from positions further apart")
    try:
        scale, R, t = umeyama(source, target)
        method = "umeyama"
    except AlignmentError:
        R = mean_rotation(target_poses[:, :3, :3] @ np.transpose(source_poses[:, :3, :3], (0, 2, 1)))
        rotated = (source - source.mean(axis=0)) @ R.T
        denominator = float((rotated ** 2).sum())
        if denominator <= 0:
            raise AlignmentError("the model put every camera at the same position, so its scale is undetermined") from None
        scale = float((rotated * (target - target.mean(axis=0))).sum() / denominator)
        t = target.mean(axis=0) - scale * R @ source.mean(axis=0)
        method = "orientation"
    if scale <= 0:
        raise AlignmentError(f"the predicted camera path is mirrored relative to TF (scale {scale:.3g}); not aligned")
    residual = float(np.sqrt(((scale * source @ R.T + t - target) ** 2).sum(axis=1).mean()))
    return Similarity(scale=scale, R=R, t=t, residual_m=residual, method=method)
