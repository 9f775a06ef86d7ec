"""Camera and TF input of the node: subscriptions on a small node of their own, spun by a single-threaded
executor on its own thread, filling the FrameBuffer and the TransformBuffer.

Sensor topics arrive at hundreds of messages a second; rclpy's executors cost per wake-up in proportion to
the entities of the node they spin, and the MultiThreadedExecutor more again (ros2/rclpy#1452). The
``<name>_ingest`` node holds only these subscriptions (no parameter or type-description services), so the
action server's executor never sees sensor traffic. Image topics are taken serialized: only the header
is read (cdr.py) and only kept frames are deserialized. Remappings given on the command line apply here too.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import numpy as np
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage

from ..frame_buffer import FrameBuffer, Intrinsics
from ..tf_buffer import TransformBuffer
from .cdr import header_of
from .conversions import add_tf_message, camera_info_to_K, compressed_to_array, image_to_array, stamp_to_seconds, to_rgb8
from .diagnostics import TfStats
from .params import CameraTopics, NodeParams

TF_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)
TF_STATIC_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)
WARN_EVERY_S = 5.0


class Ingest:
    """Frames and transforms from the graph; ``frames``, ``tf`` and ``tf_stats()`` are safe to read from any thread."""

    def __init__(self, context, node_name: str, namespace: str, params: NodeParams, now: Callable[[], float],
                 logger) -> None:
        self.tf = TransformBuffer(cache_time_s=params.tf_cache_s)
        self.frames = FrameBuffer([camera.name for camera in params.cameras], params.buffer, params.keyframes)
        self._now = now
        self._logger = logger
        self._tf_stats = TfStats()
        self._lock = threading.Lock()
        self._info_frames: dict[str, str] = {}
        self._last_warning: dict[str, float] = {}
        self.node = Node(f"{node_name}_ingest", context=context, namespace=namespace, start_parameter_services=False,
                         parameter_overrides=[Parameter("start_type_description_service", value=False)])
        self._subscribe(params)
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="spatialclaw-ingest", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    def _subscribe(self, params: NodeParams) -> None:
        reliability = ReliabilityPolicy.RELIABLE if params.image_reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
        qos = QoSProfile(depth=params.image_depth, history=HistoryPolicy.KEEP_LAST, reliability=reliability,
                         durability=DurabilityPolicy.VOLATILE)
        node = self.node
        for camera in params.cameras:
            node.create_subscription(CompressedImage if camera.compressed else Image, camera.image_topic,
                                     lambda raw, c=camera: self._on_colour(c, raw), qos, raw=True)
            if camera.depth_topic:
                node.create_subscription(CompressedImage if camera.depth_compressed else Image, camera.depth_topic,
                                         lambda raw, c=camera: self._on_depth(c, raw), qos, raw=True)
            node.create_subscription(CameraInfo, camera.info_topic, lambda msg, c=camera: self._on_info(c, msg), qos)
        node.create_subscription(TFMessage, "/tf", lambda msg: self._on_tf(msg, static=False), TF_QOS)
        node.create_subscription(TFMessage, "/tf_static", lambda msg: self._on_tf(msg, static=True), TF_STATIC_QOS)

    def tf_stats(self) -> TfStats:
        """A copy of what the TF subscriptions saw so far."""
        with self._lock:
            stats = TfStats(**vars(self._tf_stats))
        stats.frames = len(self.tf.frames())
        return stats

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
        frame_id = frame_id or self._info_frames.get(camera.name, "")
        if not frame_id:
            self._warn(f"frame:{camera.name}", f"camera {camera.name}: images on {camera.image_topic} have no frame_id "
                                               f"and no CameraInfo named one yet; dropping them")
            return
        msg_type, convert = (CompressedImage, compressed_to_array) if camera.compressed else (Image, image_to_array)
        try:
            self.frames.add_colour(camera.name, self._stamp(stamp), frame_id,
                                   lambda: to_rgb8(convert(deserialize_message(raw, msg_type))))
        except ValueError as error:
            self._warn(f"colour:{camera.name}", f"camera {camera.name}: cannot use an image from {camera.image_topic}: {error}")

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
            K = camera_info_to_K(msg)
        except ValueError as error:
            self._warn(f"info:{camera.name}", f"camera {camera.name}: {error}")
            return
        distortion = np.asarray(msg.d, dtype=np.float64)
        self._info_frames[camera.name] = msg.header.frame_id
        self.frames.add_info(camera.name, self._stamp(stamp_to_seconds(msg.header.stamp)),
                             Intrinsics(K, distortion if distortion.any() else None, int(msg.width), int(msg.height)))

    def _on_tf(self, msg, static: bool) -> None:
        try:
            add_tf_message(self.tf, msg, static=static)
            rejected = 0
        except ValueError as error:
            rejected = len(msg.transforms)
            self._warn("tf", f"ignored a {'/tf_static' if static else '/tf'} message: {error}")
        newest = max((stamp_to_seconds(t.header.stamp) for t in msg.transforms), default=None)
        with self._lock:
            self._tf_stats.messages += 1
            self._tf_stats.rejected += rejected
            if not static and newest is not None:
                self._tf_stats.note_dynamic(newest)

    def _warn(self, key: str, message: str) -> None:
        """Log ``message`` at most every WARN_EVERY_S per ``key`` (callbacks can fail at camera rate)."""
        now = time.monotonic()
        if now - self._last_warning.get(key, -math.inf) >= WARN_EVERY_S:
            self._last_warning[key] = now
            self._logger.warning(message)

    def close(self) -> None:
        """Stop spinning and destroy the ingest node."""
        self._executor.shutdown()
        self._thread.join()
        self.node.destroy_node()
