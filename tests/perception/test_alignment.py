"""Similarity alignment of predicted camera poses onto TF poses: exact recovery, noise, degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from spatialclaw_ros.perception.alignment import AlignmentError, align_poses, umeyama

TRUE_SCALE = 2.5
TRUE_R = Rotation.from_euler("zyx", [40, -15, 70], degrees=True).as_matrix()
TRUE_T = np.array([1.0, -2.0, 0.5])


def random_poses(rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    """(N, 4, 4) camera-to-source poses at ``centres`` with random orientations."""
    poses = np.tile(np.eye(4), (len(centres), 1, 1))
    poses[:, :3, :3] = Rotation.random(len(centres), random_state=rng.integers(1 << 31)).as_matrix()
    poses[:, :3, 3] = centres
    return poses


def to_target(poses: np.ndarray) -> np.ndarray:
    """The poses after the true similarity (what TF would report)."""
    target = poses.copy()
    target[:, :3, :3] = TRUE_R @ poses[:, :3, :3]
    target[:, :3, 3] = TRUE_SCALE * poses[:, :3, 3] @ TRUE_R.T + TRUE_T
    return target


def assert_true_similarity(similarity, atol=1e-9) -> None:
    assert similarity.scale == pytest.approx(TRUE_SCALE, abs=atol)
    np.testing.assert_allclose(similarity.R, TRUE_R, atol=atol)
    np.testing.assert_allclose(similarity.t, TRUE_T, atol=atol)


def test_umeyama_recovers_a_known_similarity_exactly():
    source = np.random.default_rng(0).normal(size=(6, 3))
    scale, R, t = umeyama(source, TRUE_SCALE * source @ TRUE_R.T + TRUE_T)
    assert scale == pytest.approx(TRUE_SCALE, abs=1e-12)
    np.testing.assert_allclose(R, TRUE_R, atol=1e-12)
    np.testing.assert_allclose(t, TRUE_T, atol=1e-12)


def test_umeyama_refuses_collinear_points():
    line = np.outer(np.arange(4.0), [1.0, 2.0, 0.0])
    with pytest.raises(AlignmentError, match="collinear"):
        umeyama(line, line)


def test_spread_centres_use_umeyama_and_map_every_pose_exactly():
    rng = np.random.default_rng(1)
    source = random_poses(rng, rng.normal(size=(5, 3)))
    target = to_target(source)
    similarity = align_poses(source, target)
    assert similarity.method == "umeyama"
    assert_true_similarity(similarity)
    assert similarity.residual_m == pytest.approx(0.0, abs=1e-9)
    for s, t in zip(source, target):
        np.testing.assert_allclose(similarity.apply_pose(s), t, atol=1e-9)


@pytest.mark.parametrize("centres", [np.array([[0.0, 0, 0], [0.3, 0.1, 0]]),  # two frames
                                     np.outer(np.arange(4.0), [0.1, 0.05, 0.0])])  # a straight drive
def test_two_frames_or_a_straight_path_use_orientations_and_recover_exactly(centres):
    source = random_poses(np.random.default_rng(2), centres)
    similarity = align_poses(source, to_target(source))
    assert similarity.method == "orientation"
    assert_true_similarity(similarity)
    assert similarity.residual_m == pytest.approx(0.0, abs=1e-9)


def test_noisy_poses_align_close_to_the_truth_and_report_the_residual():
    rng = np.random.default_rng(3)
    source = random_poses(rng, rng.uniform(-2, 2, size=(20, 3)))
    target = to_target(source)
    noise = rng.normal(scale=0.01, size=(20, 3))
    target[:, :3, 3] += noise
    similarity = align_poses(source, target)
    assert similarity.scale == pytest.approx(TRUE_SCALE, rel=0.01)
    assert np.degrees(Rotation.from_matrix(similarity.R @ TRUE_R.T).magnitude()) < 0.5
    rms_noise = float(np.sqrt((noise ** 2).sum(axis=1).mean()))
    assert 0.5 * rms_noise < similarity.residual_m <= rms_noise


def test_one_frame_or_a_camera_that_did_not_move_is_refused():
    rng = np.random.default_rng(4)
    with pytest.raises(AlignmentError, match="cannot be fixed"):
        align_poses(random_poses(rng, np.zeros((1, 3))), to_target(random_poses(rng, np.zeros((1, 3)))))
    still = random_poses(rng, np.full((3, 3), 0.001) * np.arange(3)[:, None])
    with pytest.raises(AlignmentError, match="cannot be fixed"):
        align_poses(still, to_target(still))
