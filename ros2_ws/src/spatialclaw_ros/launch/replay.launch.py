"""Replay a recording into the spatialclaw node: the bag with /clock, the node (spatialclaw.launch.py, on sim
time, driven to active) and RViz.

    ros2 launch spatialclaw_ros replay.launch.py bag:=/path/to/bag [rate:=1.0] [params_file:=FILE] [rviz:=true]
                                                 [player:=ros2]

The bag starts playing once the node is active (subscribed), with ``ros2 bag play --clock``; where rosbag2 is
not installed (e.g. the PyPI wheels), ``player:=python`` plays it with spatialclaw_ros's own rosbags-based player
(``spatialclaw_bag_player``, which then holds the last /clock) instead.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription, RegisterEventHandler
from launch.conditions import LaunchConfigurationEquals
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.event_handlers import OnStateTransition

#: The python player first waits (at most this long) until the node's subscriptions have matched its topics.
MATCH_WAIT_S = "5"


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("spatialclaw_ros"))
    bag, rate = LaunchConfiguration("bag"), LaunchConfiguration("rate")
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="rosbag2 directory or .mcap/.db3 file"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback speed factor"),
        DeclareLaunchArgument("params_file", default_value=str(share / "config" / "spatialclaw.yaml")),
        DeclareLaunchArgument("rviz", default_value="true"),
        DeclareLaunchArgument("player", default_value="ros2", description="ros2 (ros2 bag play) or python"),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(share / "launch" / "spatialclaw.launch.py")),
                                 launch_arguments={"params_file": LaunchConfiguration("params_file"),
                                                   "use_sim_time": "true", "rviz": LaunchConfiguration("rviz")}.items()),
        RegisterEventHandler(OnStateTransition(goal_state="active", handle_once=True, entities=[
            ExecuteProcess(cmd=["ros2", "bag", "play", bag, "--clock", "--rate", rate], output="screen",
                           condition=LaunchConfigurationEquals("player", "ros2")),
            Node(package="spatialclaw_ros", executable="spatialclaw_bag_player", output="screen",
                 arguments=[bag, "--clock", "--hold", "--rate", rate, "--wait-for-subscribers", MATCH_WAIT_S],
                 condition=LaunchConfigurationEquals("player", "python")),
        ])),
    ])
