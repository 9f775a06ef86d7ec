"""TransformBuffer: tree walks, interpolation, static transforms, errors and the cache, with hand-computed numbers."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from spatialclaw_ros.tf_buffer import (
    ConnectivityError, ExtrapolationError, TransformBuffer, UnknownFrameError, transform_matrix, transform_parts,
)

S45 = math.sqrt(0.5)


def yaw(angle: float, x: float = 0.0, y: float = 0.0, z: float = 0.0) -> np.ndarray:
    """4x4 transform: rotation by ``angle`` about z, then translation (x, y, z)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0, x], [s, c, 0, y], [0, 0, 1, z], [0, 0, 0, 1.0]])


def apply(T: np.ndarray, point) -> np.ndarray:
    return (T @ np.append(np.asarray(point, float), 1.0))[:3]


@pytest.fixture
def robot() -> TransformBuffer:
    """map -> base_link (static: x=1, y=2, yaw 90 deg), base_link -> cam (static: x=0.5, z=1)."""
    tf = TransformBuffer()
    tf.set_transform("map", "base_link", 0.0, yaw(math.pi / 2, 1.0, 2.0), static=True)
    tf.set_transform("base_link", "cam", 0.0, ((0.5, 0.0, 1.0), (0.0, 0.0, 0.0, 1.0)), static=True)
    return tf


def test_lookup_walks_up_the_tree(robot):
    # cam origin: (0.5, 0, 1) in base_link; yaw 90 turns it to (0, 0.5, 1); plus (1, 2, 0).
    assert apply(robot.lookup("map", "cam", 5.0), [0, 0, 0]) == pytest.approx([1.0, 2.5, 1.0])
    # a point 1 m in front of the camera (cam x) -> base x -> map y.
    assert apply(robot.lookup("map", "cam", 5.0), [1, 0, 0]) == pytest.approx([1.0, 3.5, 1.0])


def test_lookup_in_the_other_direction_inverts(robot):
    # map origin in base_link: R^T (-(1, 2, 0)) = (-2, 1, 0); in cam: minus (0.5, 0, 1).
    assert apply(robot.lookup("cam", "map", 5.0), [0, 0, 0]) == pytest.approx([-2.5, 1.0, -1.0])
    np.testing.assert_allclose(robot.lookup("cam", "map", 5.0) @ robot.lookup("map", "cam", 5.0), np.eye(4), atol=1e-12)
    np.testing.assert_allclose(robot.lookup("cam", "cam", 5.0), np.eye(4))


def test_siblings_meet_at_the_common_ancestor(robot):
    robot.set_transform("base_link", "left", 0.0, yaw(0.0, 0.0, 0.2), static=True)
    robot.set_transform("base_link", "right", 0.0, yaw(math.pi, 0.0, -0.2), static=True)
    # right's origin seen from left: 0.4 m to the right (-y).
    assert apply(robot.lookup("left", "right", 0.0), [0, 0, 0]) == pytest.approx([0.0, -0.4, 0.0])
    # right's x axis points backwards in left's frame.
    assert apply(robot.lookup("left", "right", 0.0), [1, 0, 0]) == pytest.approx([-1.0, -0.4, 0.0])


def test_dynamic_transforms_interpolate_linearly_and_by_slerp():
    tf = TransformBuffer()
    tf.set_transform("odom", "base_link", 10.0, yaw(0.0))
    tf.set_transform("odom", "base_link", 12.0, yaw(math.pi / 2, 2.0, 4.0))
    T = tf.lookup("odom", "base_link", 11.0)
    expected = np.array([[S45, -S45, 0, 1.0], [S45, S45, 0, 2.0], [0, 0, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(T, expected, atol=1e-12)
    # a quarter of the way: 22.5 degrees, x = 0.5, y = 1.
    np.testing.assert_allclose(tf.lookup("odom", "base_link", 10.5), yaw(math.pi / 8, 0.5, 1.0), atol=1e-12)
    # exact sample times return the samples.
    np.testing.assert_allclose(tf.lookup("odom", "base_link", 12.0), yaw(math.pi / 2, 2.0, 4.0), atol=1e-12)


def test_slerp_takes_the_short_way_round():
    tf = TransformBuffer()
    tf.set_transform("odom", "base_link", 0.0, yaw(math.radians(170)))
    tf.set_transform("odom", "base_link", 1.0, yaw(math.radians(-170)))
    np.testing.assert_allclose(tf.lookup("odom", "base_link", 0.5), yaw(math.pi), atol=1e-12)


def test_none_means_the_latest_time_the_whole_path_shares(robot):
    robot.set_transform("cam", "tool", 3.0, yaw(0.0, 1.0))
    robot.set_transform("cam", "tool", 5.0, yaw(0.0, 3.0))
    robot.set_transform("map", "marker", 4.0, yaw(0.0, 0.0, 0.0, 7.0))
    robot.set_transform("map", "marker", 4.5, yaw(0.0, 0.0, 0.0, 9.0))
    # latest common time is 4.5: tool x = 1 + 1.5 = 2.5 in cam; marker z = 9.
    T = robot.lookup("marker", "tool", None)
    np.testing.assert_allclose(T, robot.lookup("marker", "tool", 4.5))
    assert apply(robot.lookup("cam", "tool", None), [0, 0, 0]) == pytest.approx([3.0, 0.0, 0.0])
    assert robot.time_range("marker", "tool") == (4.0, 4.5)
    assert robot.time_range("map", "cam") == (-math.inf, math.inf)


def test_static_transforms_are_valid_at_any_time(robot):
    np.testing.assert_allclose(robot.lookup("map", "cam", -1e9), robot.lookup("map", "cam", 1e9))


def test_extrapolation_errors_say_how_far_and_the_range():
    tf = TransformBuffer()
    tf.set_transform("map", "base_link", 0.0, yaw(0.0), static=True)
    tf.set_transform("odom", "map", 10.0, yaw(0.0))
    tf.set_transform("odom", "map", 12.0, yaw(0.0))
    with pytest.raises(ExtrapolationError) as past:
        tf.lookup("odom", "base_link", 9.5)
    assert "0.500 s into the past" in str(past.value)
    assert "[10.000, 12.000]" in str(past.value) and "odom -> map" in str(past.value)
    with pytest.raises(ExtrapolationError, match=r"1\.250 s into the future"):
        tf.lookup("base_link", "odom", 13.25)
    assert not tf.can_transform("odom", "base_link", 12.001)
    assert tf.can_transform("odom", "base_link", 12.0)


def test_a_single_sample_is_valid_only_at_its_stamp():
    tf = TransformBuffer()
    tf.set_transform("odom", "base_link", 3.0, yaw(0.0, 1.0))
    assert tf.can_transform("odom", "base_link", 3.0)
    with pytest.raises(ExtrapolationError, match="into the past"):
        tf.lookup("odom", "base_link", 2.9)


def test_unknown_frame_lists_the_known_ones(robot):
    with pytest.raises(UnknownFrameError) as error:
        robot.lookup("map", "gripper", 0.0)
    assert "'gripper'" in str(error.value) and "base_link, cam, map" in str(error.value)
    with pytest.raises(UnknownFrameError, match="no transform received yet"):
        TransformBuffer().lookup("map", "base_link", 0.0)


def test_disconnected_trees_name_both_roots(robot):
    robot.set_transform("earth", "utm", 0.0, yaw(0.0), static=True)
    with pytest.raises(ConnectivityError) as error:
        robot.lookup("cam", "utm", 0.0)
    message = str(error.value)
    assert "rooted at 'map'" in message and "rooted at 'earth'" in message
    assert robot.root("cam") == "map" and robot.root("utm") == "earth"


def test_cache_drops_samples_older_than_the_window():
    tf = TransformBuffer(cache_time_s=1.0)
    for stamp in (0.0, 0.5, 1.0, 1.5, 2.0):
        assert tf.set_transform("odom", "base_link", stamp, yaw(0.0, stamp))
    assert tf.time_range("odom", "base_link") == (1.0, 2.0)
    assert not tf.set_transform("odom", "base_link", 0.2, yaw(0.0))
    # out-of-order inside the window is kept and used.
    assert tf.set_transform("odom", "base_link", 1.25, yaw(0.0, 10.0))
    assert apply(tf.lookup("odom", "base_link", 1.25), [0, 0, 0]) == pytest.approx([10.0, 0, 0])


def test_unlimited_cache_keeps_everything():
    tf = TransformBuffer(cache_time_s=math.inf)
    tf.set_transform("odom", "base_link", 0.0, yaw(0.0))
    tf.set_transform("odom", "base_link", 1e6, yaw(0.0, 1e6))
    assert apply(tf.lookup("odom", "base_link", 0.5e6), [0, 0, 0]) == pytest.approx([0.5e6, 0, 0])


def test_loops_are_rejected_and_reparenting_replaces_the_edge(robot):
    with pytest.raises(ValueError, match="loop"):
        robot.set_transform("cam", "map", 0.0, yaw(0.0), static=True)
    with pytest.raises(ValueError, match="itself"):
        robot.set_transform("cam", "cam", 0.0, yaw(0.0))
    robot.set_transform("odom", "base_link", 1.0, yaw(0.0, 3.0))
    assert robot.root("cam") == "odom"
    assert robot.frames() == ["base_link", "cam", "odom"]  # map named no child any more


def test_leading_slashes_are_stripped_and_inputs_validated(robot):
    np.testing.assert_allclose(robot.lookup("/map", "/cam", 0.0), robot.lookup("map", "cam", 0.0))
    with pytest.raises(ValueError, match="not a rotation"):
        robot.set_transform("map", "bad", 0.0, np.diag([2.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="no direction"):
        robot.set_transform("map", "bad", 0.0, ((0, 0, 0), (0, 0, 0, 0)))
    with pytest.raises(ValueError, match="empty"):
        robot.set_transform("map", "/", 0.0, yaw(0.0))


def test_matrix_and_parts_round_trip():
    translation, quaternion = transform_parts(yaw(math.pi / 2, 1.0, 2.0, 3.0))
    assert translation.tolist() == pytest.approx([1.0, 2.0, 3.0])
    assert quaternion.tolist() == pytest.approx([0.0, 0.0, S45, S45])
    np.testing.assert_allclose(transform_matrix(translation, 2.0 * quaternion), yaw(math.pi / 2, 1.0, 2.0, 3.0), atol=1e-12)


def test_concurrent_writers_and_readers():
    tf = TransformBuffer(cache_time_s=math.inf)
    tf.set_transform("map", "odom", 0.0, yaw(0.0), static=True)
    errors: list[BaseException] = []

    def write(child: str) -> None:
        try:
            for step in range(300):
                tf.set_transform("odom", child, step * 0.01, yaw(0.0, step * 0.01))
        except BaseException as error:  # reported below
            errors.append(error)

    def read() -> None:
        try:
            for _ in range(300):
                if tf.can_transform("map", "a", None):
                    T = tf.lookup("map", "a", None)
                    assert T[0, 3] == pytest.approx(T[0, 3])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(name,)) for name in "abc"] + [threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for child in "abc":
        assert tf.time_range("map", child) == (0.0, pytest.approx(2.99))
        assert apply(tf.lookup("map", child, 1.505), [0, 0, 0]) == pytest.approx([1.505, 0, 0])
