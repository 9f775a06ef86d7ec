"""Shared setup of the ROS tests: the ``ros`` marker, skipped where rclpy cannot be imported.

Tests marked ``ros`` need the real ROS 2 Jazzy venv built by ``scripts/ros2_env.sh``; run them with
that venv's python (``.ros-venv/bin/python -m pytest tests/ros``). Everything else here is pure Python.
"""

from __future__ import annotations

import pytest


def _rclpy_unavailable() -> str | None:
    """Why rclpy cannot be imported here, or None when it can."""
    try:
        import rclpy  # noqa: F401
    except Exception as error:  # ImportError, or a missing librcl.so behind it
        return (f"needs rclpy ({type(error).__name__}: {error}); build the ROS venv with scripts/ros2_env.sh "
                f"and run: .ros-venv/bin/python -m pytest tests/ros")
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ros: needs real ROS 2 (rclpy and the messages built by scripts/ros2_env.sh)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ros_items = [item for item in items if item.get_closest_marker("ros")]
    reason = _rclpy_unavailable() if ros_items else None
    if reason:
        for item in ros_items:
            item.add_marker(pytest.mark.skip(reason=reason))
