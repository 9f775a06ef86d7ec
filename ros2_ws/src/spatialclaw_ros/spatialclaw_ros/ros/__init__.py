"""The thin ROS 2 adapter around the ROS-free core.

``conversions`` works on message objects by duck typing (rclpy or rosbags alike) and imports no ROS
module; only the node modules built on it import rclpy.
"""
