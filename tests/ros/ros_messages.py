"""Real ROS message objects without ROS: the rosbags Jazzy message classes, plus small builders."""

from __future__ import annotations

import numpy as np
from rosbags.typesys import Stores, get_typestore

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
T = TYPESTORE.types
Time = T["builtin_interfaces/msg/Time"]
Header = T["std_msgs/msg/Header"]
Image = T["sensor_msgs/msg/Image"]
CompressedImage = T["sensor_msgs/msg/CompressedImage"]
CameraInfo = T["sensor_msgs/msg/CameraInfo"]
RegionOfInterest = T["sensor_msgs/msg/RegionOfInterest"]
Vector3 = T["geometry_msgs/msg/Vector3"]
Quaternion = T["geometry_msgs/msg/Quaternion"]
Transform = T["geometry_msgs/msg/Transform"]
TransformStamped = T["geometry_msgs/msg/TransformStamped"]
TFMessage = T["tf2_msgs/msg/TFMessage"]


def header(stamp_s: float = 0.0, frame_id: str = "") -> Header:
    nanoseconds = round(stamp_s * 1e9)
    return Header(stamp=Time(sec=nanoseconds // 10**9, nanosec=nanoseconds % 10**9), frame_id=frame_id)


def image(fields: dict, stamp_s: float = 0.0, frame_id: str = "") -> Image:
    """An Image from ``array_to_image_fields``-style fields (data as bytes)."""
    return Image(header=header(stamp_s, frame_id), height=fields["height"], width=fields["width"],
                 encoding=fields["encoding"], is_bigendian=fields["is_bigendian"], step=fields["step"],
                 data=np.frombuffer(bytes(fields["data"]), dtype=np.uint8))


def compressed(data: bytes, fmt: str, stamp_s: float = 0.0, frame_id: str = "") -> CompressedImage:
    return CompressedImage(header=header(stamp_s, frame_id), format=fmt, data=np.frombuffer(data, dtype=np.uint8))


def camera_info(K: np.ndarray, width: int, height: int, stamp_s: float = 0.0, frame_id: str = "",
                d=(0.0, 0.0, 0.0, 0.0, 0.0)) -> CameraInfo:
    P = np.zeros((3, 4))
    P[:3, :3] = K
    return CameraInfo(header=header(stamp_s, frame_id), height=height, width=width, distortion_model="plumb_bob",
                      d=np.asarray(d, dtype=np.float64), k=np.asarray(K, dtype=np.float64).reshape(9),
                      r=np.eye(3).reshape(9), p=P.reshape(12), binning_x=0, binning_y=0,
                      roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def transform_stamped(parent: str, child: str, stamp_s: float, translation, quaternion) -> TransformStamped:
    return TransformStamped(
        header=header(stamp_s, parent), child_frame_id=child,
        transform=Transform(translation=Vector3(*map(float, translation)), rotation=Quaternion(*map(float, quaternion))))
