"""Start the spatialclaw node on live cameras, optionally with RViz.

    ros2 launch spatialclaw_ros spatialclaw.launch.py [params_file:=FILE] [use_sim_time:=false] [rviz:=true]

The action server is /spatialclaw/query; try
    ros2 action send_goal /spatialclaw/query spatialclaw_msgs/action/SpatialQuery \\
        "{question: 'how far is the chair from the table?'}" --feedback
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("spatialclaw_ros"))
    params_file = LaunchConfiguration("params_file")
    use_sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=str(share / "config" / "spatialclaw.yaml"),
                              description="node parameters (cameras, buffer, model endpoint, goal policy)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock (bag replay)"),
        DeclareLaunchArgument("rviz", default_value="true", description="start RViz with the answer displays"),
        Node(package="spatialclaw_ros", executable="spatialclaw_node", name="spatialclaw", output="screen",
             parameters=[params_file, {"use_sim_time": use_sim_time}]),
        Node(package="rviz2", executable="rviz2", name="rviz2", output="log",
             arguments=["-d", str(share / "rviz" / "spatialclaw.rviz")],
             parameters=[{"use_sim_time": use_sim_time}], condition=IfCondition(LaunchConfiguration("rviz"))),
    ])
