"""Start the spatialclaw lifecycle node on live cameras, drive it to active, optionally with RViz.

    ros2 launch spatialclaw_ros spatialclaw.launch.py [params_file:=FILE] [use_sim_time:=false] [rviz:=true]
                                                      [autostart:=true]

With ``autostart:=false`` the node stays unconfigured until ``ros2 lifecycle set /spatialclaw configure`` (then
``activate``). Once active, the action server is /spatialclaw/query; try
    ros2 action send_goal /spatialclaw/query spatialclaw_msgs/action/SpatialQuery \\
        "{question: 'how far is the chair from the table?'}" --feedback
"""

from pathlib import Path

import lifecycle_msgs.msg
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("spatialclaw_ros"))
    use_sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    autostart = IfCondition(LaunchConfiguration("autostart"))
    node = LifecycleNode(package="spatialclaw_ros", executable="spatialclaw_node", name="spatialclaw", namespace="",
                         output="screen", parameters=[LaunchConfiguration("params_file"), {"use_sim_time": use_sim_time}])

    def transition(transition_id: int, **kwargs) -> EmitEvent:
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id),
                         **kwargs)

    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=str(share / "config" / "spatialclaw.yaml"),
                              description="node parameters (cameras, buffer, model endpoint, perception, goal policy)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock (bag replay)"),
        DeclareLaunchArgument("rviz", default_value="true", description="start RViz with the answer displays"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="configure and activate the node; false leaves it unconfigured"),
        node,
        RegisterEventHandler(OnStateTransition(  # configured (not re-activated after a later deactivate)
            target_lifecycle_node=node, start_state="configuring", goal_state="inactive",
            entities=[transition(lifecycle_msgs.msg.Transition.TRANSITION_ACTIVATE)]), condition=autostart),
        transition(lifecycle_msgs.msg.Transition.TRANSITION_CONFIGURE, condition=autostart),
        Node(package="rviz2", executable="rviz2", name="rviz2", output="log",
             arguments=["-d", str(share / "rviz" / "spatialclaw.rviz")],
             parameters=[{"use_sim_time": use_sim_time}], condition=IfCondition(LaunchConfiguration("rviz"))),
    ])
