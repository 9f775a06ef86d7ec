"""Visualization specs -> ROS messages (MarkerArray, PointCloud2, String, Image), for rclpy or rosbags.

One builder serves the live node (rclpy message classes) and offline bag writing (rosbags classes):
``MessageTypes`` names the class of a message type and wraps byte arrays the way each library
wants. Every field is given, since rosbags' message classes have no defaults. No ROS import here.
"""

from __future__ import annotations

import array
import importlib
from collections.abc import Callable, Sequence

import numpy as np

from ..visualization import CloudSpec, MarkerSpec, Markup
from .conversions import array_to_image_fields, pointcloud2_fields_xyzrgb, seconds_to_stamp_fields

ADD, DELETEALL = 0, 3  # visualization_msgs/Marker actions


class MessageTypes:
    """Message classes by ROS type name ("pkg/msg/Name") and the byte-array form of ``uint8[]`` fields."""

    def __init__(self, resolve: Callable[[str], type], blob: Callable[[bytes], object]) -> None:
        self._resolve = resolve
        self._blob = blob
        self._cache: dict[str, type] = {}

    def __call__(self, name: str) -> type:
        if name not in self._cache:
            self._cache[name] = self._resolve(name)
        return self._cache[name]

    def blob(self, data: bytes):
        """A ``uint8[]`` field value holding ``data``."""
        return self._blob(data)


def rclpy_types() -> MessageTypes:
    """rclpy's generated classes (imported on first use); ``uint8[]`` as array('B'), which rclpy takes without a copy check."""
    def resolve(name: str) -> type:
        package, kind, message = name.split("/")
        return getattr(importlib.import_module(f"{package}.{kind}"), message)

    return MessageTypes(resolve, lambda data: array.array("B", data))


def rosbags_types(typestore) -> MessageTypes:
    """rosbags' classes from ``typestore``; ``uint8[]`` as a NumPy uint8 array."""
    return MessageTypes(lambda name: typestore.types[name], lambda data: np.frombuffer(data, dtype=np.uint8))


def header(types: MessageTypes, frame_id: str, stamp_s: float):
    """A std_msgs/Header."""
    return types("std_msgs/msg/Header")(stamp=types("builtin_interfaces/msg/Time")(**seconds_to_stamp_fields(stamp_s)),
                                        frame_id=frame_id)


def _point(types: MessageTypes, xyz) -> object:
    x, y, z = (float(v) for v in xyz)
    return types("geometry_msgs/msg/Point")(x=x, y=y, z=z)


def _marker(types: MessageTypes, markup: Markup, spec: MarkerSpec | None, action: int = ADD):
    """A Marker of ``spec`` (or, with ``spec`` None, a bare marker for ``action`` such as DELETEALL)."""
    t = types
    spec = spec or MarkerSpec(id=0, kind=0)
    r, g, b, a = (float(c) for c in spec.colour)
    return t("visualization_msgs/msg/Marker")(
        header=header(t, markup.frame_id, markup.stamp_s), ns=markup.namespace, id=int(spec.id), type=int(spec.kind),
        action=action,
        pose=t("geometry_msgs/msg/Pose")(position=_point(t, spec.position),
                                         orientation=t("geometry_msgs/msg/Quaternion")(x=0.0, y=0.0, z=0.0, w=1.0)),
        scale=t("geometry_msgs/msg/Vector3")(**dict(zip("xyz", map(float, spec.scale)))),
        color=t("std_msgs/msg/ColorRGBA")(r=r, g=g, b=b, a=a),
        lifetime=t("builtin_interfaces/msg/Duration")(sec=0, nanosec=0), frame_locked=False,
        points=[_point(t, p) for p in spec.points], colors=[], texture_resource="",
        texture=t("sensor_msgs/msg/CompressedImage")(header=header(t, "", 0.0), format="", data=t.blob(b"")),
        uv_coordinates=[], text=spec.text, mesh_resource="",
        mesh_file=t("visualization_msgs/msg/MeshFile")(filename="", data=t.blob(b"")),
        mesh_use_embedded_materials=False)


def marker_array(types: MessageTypes, markup: Markup, clear: Sequence[str] = ()):
    """A MarkerArray: DELETEALL of each namespace in ``clear`` (e.g. the previous answer's) and of the markup's
    own namespace, then the markup's markers."""
    wipes = [Markup(namespace=name, frame_id=markup.frame_id, stamp_s=markup.stamp_s) for name in clear]
    return types("visualization_msgs/msg/MarkerArray")(
        markers=[_marker(types, wipe, None, DELETEALL) for wipe in (*wipes, markup)]
        + [_marker(types, markup, spec) for spec in markup.markers])


def point_cloud(types: MessageTypes, cloud: CloudSpec, frame_id: str, stamp_s: float):
    """A PointCloud2 (x, y, z float32 + packed rgb) of ``cloud``."""
    fields, data, point_step = pointcloud2_fields_xyzrgb(cloud.points, cloud.colours)
    count = len(cloud.points)
    return types("sensor_msgs/msg/PointCloud2")(
        header=header(types, frame_id, stamp_s), height=1, width=count,
        fields=[types("sensor_msgs/msg/PointField")(**field) for field in fields], is_bigendian=False,
        point_step=point_step, row_step=point_step * count, data=types.blob(data), is_dense=True)


def string(types: MessageTypes, text: str):
    """A std_msgs/String."""
    return types("std_msgs/msg/String")(data=text)


def rgb_image(types: MessageTypes, rgb: np.ndarray, frame_id: str, stamp_s: float):
    """A sensor_msgs/Image (rgb8) of an (H, W, 3) uint8 array."""
    fields = array_to_image_fields(np.ascontiguousarray(rgb, dtype=np.uint8), "rgb8")
    fields["data"] = types.blob(fields["data"])
    return types("sensor_msgs/msg/Image")(header=header(types, frame_id, stamp_s), **fields)
