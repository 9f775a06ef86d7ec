"""Shared setup of the ROS tests: the ``ros`` marker, skipped where rclpy cannot be imported.

Tests marked ``ros`` need the real ROS 2 Jazzy venv built by ``scripts/ros2_env.sh`` (rclpy, the ros2 tools,
launch and tf2, and this package installed there); run them with that venv's python
(``.ros-venv/bin/python -m pytest tests/ros``). Everything else here is pure Python.
"""

from __future__ import annotations

import pytest


def _ros_unavailable() -> str | None:
    """Why the ROS 2 parts cannot be imported here, or None when they can."""
    try:
        import launch_ros  # noqa: F401
        import rclpy  # noqa: F401
        import ros2cli  # noqa: F401
        import tf2_ros  # noqa: F401
    except Exception as error:  # ImportError, or a missing librcl.so behind it
        return (f"needs rclpy, the ros2 tools, launch and tf2 ({type(error).__name__}: {error}); build the ROS "
                f"venv with scripts/ros2_env.sh and run: .ros-venv/bin/python -m pytest tests/ros")
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ros: needs real ROS 2 (rclpy and the messages built by scripts/ros2_env.sh)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ros_items = [item for item in items if item.get_closest_marker("ros")]
    reason = _ros_unavailable() if ros_items else None
    if reason:
        for item in ros_items:
            item.add_marker(pytest.mark.skip(reason=reason))
