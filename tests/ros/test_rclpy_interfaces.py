"""With real ROS 2: the interfaces scripts/ros2_env.sh builds, and the conversions on rclpy's own message classes.

Run under the ROS venv's python; skipped elsewhere (see conftest.py).
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from spatialclaw_ros.ros.conversions import (
    add_tf_message, array_to_image_fields, camera_info_to_K, compressed_to_array, image_to_array,
    matrix_to_transform_fields, pointcloud2_fields_xyzrgb, seconds_to_stamp_fields, transform_to_matrix,
)
from spatialclaw_ros.tf_buffer import TransformBuffer

pytestmark = pytest.mark.ros

ENCODINGS = {
    "rgb8": (np.uint8, (4, 5, 3)), "bgr8": (np.uint8, (4, 5, 3)), "rgba8": (np.uint8, (4, 5, 4)),
    "bgra8": (np.uint8, (4, 5, 4)), "mono8": (np.uint8, (4, 5)), "mono16": (np.uint16, (4, 5)),
    "16UC1": (np.uint16, (4, 5)), "32FC1": (np.float32, (4, 5)),
}


def test_spatial_query_action_has_the_documented_fields_and_constants():
    from spatialclaw_msgs.action import SpatialQuery

    goal = SpatialQuery.Goal()
    assert goal.get_fields_and_field_types() == {
        "question": "string", "choices": "sequence<string>", "cameras": "sequence<string>", "window_sec": "double",
        "max_frames": "uint32", "stamp": "builtin_interfaces/Time", "target_frame": "string", "max_steps": "uint32",
        "timeout_sec": "double"}
    assert (goal.stamp.sec, goal.stamp.nanosec, goal.max_steps, goal.timeout_sec) == (0, 0, 0, 0.0)
    result = SpatialQuery.Result()
    assert result.get_fields_and_field_types() == {
        "success": "boolean", "answer": "string", "value": "double", "unit": "string", "answer_type": "string",
        "points": "sequence<geometry_msgs/PointStamped>", "low_confidence": "boolean", "error_code": "uint8",
        "error_message": "string", "steps": "uint32", "elapsed_sec": "double", "session_dir": "string"}
    codes = {name: getattr(SpatialQuery.Result, name) for name in dir(SpatialQuery.Result) if name.startswith("ERROR_")}
    assert codes == {
        "ERROR_NONE": 0, "ERROR_EMPTY_QUESTION": 1, "ERROR_UNKNOWN_CAMERA": 2, "ERROR_UNKNOWN_TARGET_FRAME": 3,
        "ERROR_NO_FRAMES": 4, "ERROR_BUSY": 5, "ERROR_MODEL_UNREACHABLE": 6, "ERROR_MODEL": 7, "ERROR_DEADLINE": 8,
        "ERROR_CANCELED": 9, "ERROR_KERNEL": 10, "ERROR_TF": 11, "ERROR_INTERNAL": 12, "ERROR_CONFIG": 13}
    assert SpatialQuery.Feedback().get_fields_and_field_types() == {
        "step": "uint32", "max_steps": "uint32", "stage": "string", "code": "string", "output_summary": "string",
        "elapsed_sec": "double", "bytes_sent": "uint64", "image_tokens": "uint64", "text_tokens": "uint64"}


def test_the_installed_tf2_msgs_has_the_upstream_type_hash():
    from rosbags.typesys import Stores, get_typestore
    from tf2_msgs.msg import TFMessage

    assert TFMessage.get_fields_and_field_types() == {"transforms": "sequence<geometry_msgs/TransformStamped>"}
    # scripts/ros2_env.sh installs the real tf2_msgs (built from geometry2 jazzy) into the venv prefix.
    description = json.loads((Path(sys.prefix) / "share" / "tf2_msgs" / "msg" / "TFMessage.json").read_text())
    ours = next(h["hash_string"] for h in description["type_hashes"] if h["type_name"] == "tf2_msgs/msg/TFMessage")
    # rosbags carries the upstream Jazzy definitions: an independent source of the real hash.
    assert ours == get_typestore(Stores.ROS2_JAZZY).hash_rihs01("tf2_msgs/msg/TFMessage")


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_images_round_trip_through_rclpy_messages(encoding):
    from sensor_msgs.msg import Image

    dtype, shape = ENCODINGS[encoding]
    pixels = (np.arange(math.prod(shape)) * 37 % 251).astype(dtype).reshape(shape)
    msg = Image(**array_to_image_fields(pixels, encoding))
    assert msg.step * msg.height == len(msg.data)
    back = image_to_array(msg)
    assert back.dtype == pixels.dtype
    np.testing.assert_array_equal(back, pixels)


def test_padded_big_endian_rclpy_image():
    from sensor_msgs.msg import Image

    msg = Image(height=2, width=1, encoding="16UC1", is_bigendian=1, step=4, data=bytes([1, 2, 9, 9, 3, 4, 9, 9]))
    assert image_to_array(msg).tolist() == [[258], [772]]


def test_compressed_camera_info_and_transform_messages():
    from geometry_msgs.msg import Quaternion, Transform, Vector3
    from sensor_msgs.msg import CameraInfo, CompressedImage

    pixels = (np.arange(4 * 5 * 3) % 256).astype(np.uint8).reshape(4, 5, 3)
    ok, png = cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(compressed_to_array(CompressedImage(format="png", data=png.tobytes())), pixels)
    K = [500.0, 0.0, 320.0, 0.0, 505.0, 240.0, 0.0, 0.0, 1.0]
    np.testing.assert_array_equal(camera_info_to_K(CameraInfo(k=K)), np.reshape(K, (3, 3)))
    T = np.array([[0, -1, 0, 1.0], [1, 0, 0, 2.0], [0, 0, 1, 3.0], [0, 0, 0, 1]])
    fields = matrix_to_transform_fields(T)
    msg = Transform(translation=Vector3(**fields["translation"]), rotation=Quaternion(**fields["rotation"]))
    np.testing.assert_allclose(transform_to_matrix(msg), T, atol=1e-12)


def test_pointcloud2_message_reads_back():
    from sensor_msgs.msg import PointCloud2, PointField

    points = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [-1.0, 0.5, 0.25]])
    colours = np.array([[255, 0, 0], [0, 255, 0], [10, 20, 30]], np.uint8)
    fields, data, point_step = pointcloud2_fields_xyzrgb(points, colours)
    msg = PointCloud2(height=1, width=3, fields=[PointField(**f) for f in fields], is_bigendian=False,
                      point_step=point_step, row_step=3 * point_step, data=data, is_dense=True)
    assert [f.datatype for f in msg.fields] == [PointField.FLOAT32] * 4
    rows = [struct.unpack_from("<fffI", bytes(msg.data), i * msg.point_step) for i in range(msg.width)]
    assert [r[:3] for r in rows] == [tuple(p) for p in points.tolist()]
    assert [r[3] for r in rows] == [0xFF0000, 0x00FF00, 0x0A141E]


@pytest.fixture
def ros_context(monkeypatch):
    """An rclpy context on a private, localhost-only domain."""
    import rclpy

    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()


def test_tf_published_over_dds_fills_the_buffer(ros_context):
    import rclpy
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import Header
    from tf2_msgs.msg import TFMessage

    node = rclpy.create_node("tf_probe", context=ros_context)
    tf = TransformBuffer()
    received = []
    node.create_subscription(TFMessage, "/tf", lambda msg: received.append(add_tf_message(tf, msg, static=False)), 10)
    publisher = node.create_publisher(TFMessage, "/tf", 10)
    s45 = math.sqrt(0.5)
    msg = TFMessage(transforms=[
        TransformStamped(header=Header(stamp=Time(**seconds_to_stamp_fields(5.0)), frame_id="map"), child_frame_id="base_link",
                         transform=Transform(translation=Vector3(x=1.0, y=2.0), rotation=Quaternion(z=s45, w=s45)))])
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    for _ in range(200):  # up to ~20 s for discovery; ends as soon as the message is back
        publisher.publish(msg)
        executor.spin_once(timeout_sec=0.1)
        if received:
            break
    executor.shutdown()
    node.destroy_node()
    assert received and received[0] == 1
    assert (tf.lookup("map", "base_link", 5.0) @ [1, 0, 0, 1])[:3].tolist() == pytest.approx([1.0, 3.0, 0.0])
