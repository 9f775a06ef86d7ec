"""spatialclaw_ros: code-as-action spatial question answering for ROS 2 robots.

The subpackages ``agent``, ``llm``, ``kernel``, ``tools``, ``perception`` and ``session_log``
form the ROS-free core; nothing in them imports rclpy.
"""

__version__ = "0.1.0"
