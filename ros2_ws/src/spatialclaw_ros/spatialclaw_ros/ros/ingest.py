"""Camera and TF input of the node while it is active: subscriptions on a small node of their own, spun by a
single-threaded executor on its own thread, filling the FrameBuffer and the tf2 buffer.

Sensor topics arrive at hundreds of messages a second; rclpy's executors cost per wake-up in proportion to
the entities of the node they spin, and the MultiThreadedExecutor more again (ros2/rclpy#1452). The
``<name>_ingest`` node holds only these subscriptions and tf2's ``TransformListener`` (no parameter or
type-description services), so the action server's executor never sees sensor traffic. It ignores the
process's command-line arguments (a launch file's ``-r __node:=spatialclaw`` would otherwise rename it to the
main node's name): it subscribes to the topic names the main node resolved, remappings applied. Image topics
are taken serialized: only the header is read (cdr.py) and only kept frames are deserialized.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import tf2_ros
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ..frame_buffer import FrameBuffer
from .cdr import header_of
from .conversions import compressed_to_array, image_to_array, intrinsics_of, stamp_to_seconds, to_rgb8
from .params import CameraTopics, NodeSettings

WARN_EVERY_S = 5.0


class Ingest:
    """Subscriptions of the configured cameras and TF while the node is active; ``close`` ends them."""

    def __init__(self, main: Node, settings: NodeSettings, frames: FrameBuffer, tf: tf2_ros.Buffer,
                 now: Callable[[], float]) -> None:
        self.frames = frames
        self._now = now
        self._logger = main.get_logger()
        self._last_warning: dict[str, float] = {}
        self.node = Node(f"{main.get_name()}_ingest", context=main.context, namespace=main.get_namespace(),
                         use_global_arguments=False, start_parameter_services=False,
                         parameter_overrides=[Parameter("start_type_description_service", value=False)])
        self._subscribe(main, settings)
        self._listener = tf2_ros.TransformListener(tf, self.node)
        self._executor = SingleThreadedExecutor(context=main.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="spatialclaw-ingest", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    def _subscribe(self, main: Node, settings: NodeSettings) -> None:
        qos_settings = settings.node.image_qos
        reliability = (ReliabilityPolicy.RELIABLE if qos_settings.reliability == "reliable"
                       else ReliabilityPolicy.BEST_EFFORT)
        qos = QoSProfile(depth=qos_settings.depth, history=HistoryPolicy.KEEP_LAST, reliability=reliability,
                         durability=DurabilityPolicy.VOLATILE)
        node = self.node
        for camera in settings.cameras:
            node.create_subscription(CompressedImage if camera.compressed else Image,
                                     main.resolve_topic_name(camera.image_topic),
                                     lambda raw, c=camera: self._on_colour(c, raw), qos, raw=True)
            if camera.depth_topic:
                node.create_subscription(CompressedImage if camera.depth_compressed else Image,
                                         main.resolve_topic_name(camera.depth_topic),
                                         lambda raw, c=camera: self._on_depth(c, raw), qos, raw=True)
            node.create_subscription(CameraInfo, main.resolve_topic_name(camera.info_topic),
                                     lambda msg, c=camera: self._on_info(c, msg), qos)

    # -- callbacks -------------------------------------------------------------------------------

    def _stamp(self, stamp_s: float) -> float:
        """A header stamp, or the node's time for a publisher that leaves it zero."""
        return stamp_s if stamp_s > 0 else self._now()

    def _header(self, camera: CameraTopics, raw: bytes, topic: str) -> tuple[float, str] | None:
        try:
            return header_of(raw)
        except ValueError as error:
            self._warn(f"header:{topic}", f"camera {camera.name}: cannot read a message header on {topic}: {error}")
            return None

    def _on_colour(self, camera: CameraTopics, raw: bytes) -> None:
        header = self._header(camera, raw, camera.image_topic)
        if header is None:
            return
        stamp, frame_id = header
        msg_type, convert = (CompressedImage, compressed_to_array) if camera.compressed else (Image, image_to_array)
        try:
            self.frames.add_colour(camera.name, self._stamp(stamp), frame_id,
                                   lambda: to_rgb8(convert(deserialize_message(raw, msg_type))))
        except ValueError as error:
            self._warn(f"colour:{camera.name}", f"camera {camera.name}: cannot use an image from {camera.image_topic}: "
                                                f"{error}; dropping it")

    def _on_depth(self, camera: CameraTopics, raw: bytes) -> None:
        header = self._header(camera, raw, camera.depth_topic)
        if header is None:
            return
        msg_type, convert = (CompressedImage, compressed_to_array) if camera.depth_compressed else (Image, image_to_array)
        try:
            self.frames.add_depth(camera.name, self._stamp(header[0]), lambda: convert(deserialize_message(raw, msg_type)))
        except ValueError as error:
            self._warn(f"depth:{camera.name}", f"camera {camera.name}: cannot use a depth image from {camera.depth_topic}: {error}")

    def _on_info(self, camera: CameraTopics, msg) -> None:
        try:
            intrinsics = intrinsics_of(msg)
        except ValueError as error:
            self._warn(f"info:{camera.name}", f"camera {camera.name}: {error}")
            return
        self.frames.add_info(camera.name, self._stamp(stamp_to_seconds(msg.header.stamp)), intrinsics,
                             msg.header.frame_id)

    def _warn(self, key: str, message: str) -> None:
        """Log ``message`` at most every WARN_EVERY_S per ``key`` (callbacks can fail at camera rate)."""
        now = time.monotonic()
        if now - self._last_warning.get(key, -math.inf) >= WARN_EVERY_S:
            self._last_warning[key] = now
            self._logger.warning(message)

    def close(self) -> None:
        """Stop spinning and destroy the subscriptions and the ingest node."""
        self._executor.shutdown()
        self._thread.join()
        self._listener.unregister()
        self.node.destroy_node()
