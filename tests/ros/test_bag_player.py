"""The project's bag player (``spatialclaw_bag_player``) looping a recording: every pass is restamped to go on where
the last one ended, one frame interval later, so no two frames of the live stream share a stamp (back to back, the
last frame of a pass and the first of the next came 0.5 ms apart, close enough for the live node to pair one's
colour with the other's depth)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from graph_support import Process, in_environment, player_command, ros_environment, write_room_bag

pytestmark = pytest.mark.ros

DOMAIN = 95 + os.getpid() % 7  # test_node_graph.py: 10..49, test_ros2_cli.py: 50..94; Fast DDS wants <= 101
FRAME_INTERVAL_S = 0.5  # the living room's side view is rendered at 2 Hz


def test_a_looped_recording_goes_on_at_its_frame_rate(tmp_path):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo

    from spatialclaw_ros.scenes.generator import living_room_side_view

    scene = living_room_side_view()
    assert scene.rate == 1.0 / FRAME_INTERVAL_S
    bag = write_room_bag(tmp_path / "room", scene)
    env = ros_environment(DOMAIN)
    context = rclpy.Context()
    player = None
    stamps: list[float] = []
    with in_environment(env):
        try:
            rclpy.init(context=context)
            node = rclpy.create_node("stamp_listener", context=context)
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(node)
            topic = f"/{scene.mount.name}/camera_info"
            node.create_subscription(CameraInfo, topic, lambda msg: stamps.append(
                msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9), 100)
            player = Process(player_command(bag, "--loop", "--wait-for-subscribers", "20", "--topics", topic), env,
                             "player")
            player.wait_for("PLAYING", 60)
            deadline = time.monotonic() + 60
            while len(stamps) < 3 * len(scene.path) + 1 and time.monotonic() < deadline:  # three passes and a frame
                executor.spin_once(timeout_sec=0.1)
            executor.shutdown()
            node.destroy_node()
        finally:
            if player is not None:
                player.stop()
            context.try_shutdown()
    assert len(stamps) > 3 * len(scene.path), (len(stamps), player.output() if player else "")
    assert player.output().count("FINISHED") >= 3
    np.testing.assert_allclose(np.diff(stamps), FRAME_INTERVAL_S, atol=1e-3)
    assert abs(stamps[-1] - time.time()) < 5.0  # restamped to wall time
