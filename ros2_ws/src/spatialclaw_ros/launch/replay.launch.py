"""Replay a recording into the spatialclaw node: the bag with /clock, the node and RViz all on sim time.

    ros2 launch spatialclaw_ros replay.launch.py bag:=/path/to/bag [rate:=1.0] [params_file:=FILE] [rviz:=true]

Uses ``ros2 bag play --clock``; where rosbag2 is not installed (e.g. the PyPI wheels), set
``player:=python`` to play with spatialclaw_ros's own rosbags-based player instead. Static TF is
latched by the player, so the node gets it even when it starts after the bag.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition, LaunchConfigurationEquals
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("spatialclaw_ros"))
    bag, rate = LaunchConfiguration("bag"), LaunchConfiguration("rate")
    sim_time = {"use_sim_time": True}
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="rosbag2 directory or .mcap/.db3 file"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback speed factor"),
        DeclareLaunchArgument("params_file", default_value=str(share / "config" / "spatialclaw.yaml")),
        DeclareLaunchArgument("rviz", default_value="true"),
        DeclareLaunchArgument("player", default_value="ros2", description="ros2 (ros2 bag play) or python"),
        Node(package="spatialclaw_ros", executable="spatialclaw_node", name="spatialclaw", output="screen",
             parameters=[LaunchConfiguration("params_file"), sim_time]),
        ExecuteProcess(cmd=["ros2", "bag", "play", bag, "--clock", "--rate", rate], output="screen",
                       condition=LaunchConfigurationEquals("player", "ros2")),
        ExecuteProcess(cmd=["python3", "-m", "spatialclaw_ros.ros.bag_player", bag, "--clock", "--hold", "--rate", rate],
                       output="screen", condition=LaunchConfigurationEquals("player", "python")),
        Node(package="rviz2", executable="rviz2", name="rviz2", output="log",
             arguments=["-d", str(share / "rviz" / "spatialclaw.rviz")], parameters=[sim_time],
             condition=IfCondition(LaunchConfiguration("rviz"))),
    ])
