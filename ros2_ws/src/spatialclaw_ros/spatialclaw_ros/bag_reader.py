"""Read a question's frames from a rosbag2 recording (.mcap or .db3) without ROS, using ``rosbags``.

The bag's cameras are found from its topics: each colour topic, the depth topic registered to it (same frame,
same size) and the CameraInfo beside it. Their messages then go, in recorded order, through the frame assembly
the live node uses (``frame_buffer.FrameBuffer``: depth pairing, the intrinsics in force, the minimum interval,
key frames, world and body frame poses, all from the same ``FramesConfig``), with every ``/tf`` and
``/tf_static`` transform in a TransformBuffer. A first pass reads only message headers; only the chosen key
frames are decoded, in a second pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from spatialclaw_ros.config import FramesConfig
from spatialclaw_ros.frame_buffer import BufferedFrame, FrameBuffer, FrameRequest, NoFramesError
from spatialclaw_ros.frames import FrameSet
from spatialclaw_ros.ros.cdr import header_of
from spatialclaw_ros.ros.conversions import (
    add_tf_message, compressed_to_array, image_to_array, intrinsics_of, stamp_to_seconds, to_rgb8,
)
from spatialclaw_ros.tf_buffer import TransformBuffer

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
DEPTH_ENCODINGS = ("16UC1", "32FC1")
# Last topic segments that name a transport or a colour stream rather than the camera.
_TRANSPORTS = ("compressed", "compressedDepth")
_COLOUR_STREAMS = ("color", "rgb")


@dataclass
class _ImageTopic:
    """What the first pass learns about one image topic: its layout and each message's header (no pixels)."""

    name: str
    msgtype: str
    is_depth: bool = False
    frame_id: str = ""
    size: tuple[int, int] | None = None  # (width, height) of raw images; None for compressed ones
    stamps: list[float] = field(default_factory=list)  # header stamps (s; the receive time where zero), in order
    frame_ids: list[str] = field(default_factory=list)
    log_times: list[int] = field(default_factory=list)  # bag receive times, ns

    @property
    def compressed(self) -> bool:
        return self.msgtype == COMPRESSED_IMAGE

    @property
    def namespace(self) -> str:
        """The topic without its transport and image segments: /front/image_raw/compressed -> /front."""
        parts = self.name.split("/")
        if parts[-1] in _TRANSPORTS:
            parts = parts[:-1]
        return "/".join(parts[:-1])


@dataclass
class _Camera:
    """A colour topic with its registered depth topic and CameraInfo topic, if any."""

    name: str
    colour: _ImageTopic
    depth: _ImageTopic | None
    info_topic: str | None


@dataclass
class _Scan:
    """The first pass: every transform, the image topics' headers, the CameraInfo messages with receive times."""

    tf: TransformBuffer
    topics: dict[str, _ImageTopic]
    infos: dict[str, list[tuple[int, object]]]
    start_ns: int


class _Message:
    """A decoder of one recorded image message, filled by the second pass (``_load``) before it is called."""

    def __init__(self, topic: _ImageTopic, ordinal: int, colour: bool) -> None:
        self.topic, self.ordinal, self.colour = topic, ordinal, colour
        self.msg = None

    def __call__(self) -> np.ndarray:
        pixels = compressed_to_array(self.msg) if self.topic.compressed else image_to_array(self.msg)
        return to_rgb8(pixels) if self.colour else pixels


def read_bag(path: str | Path, settings: FramesConfig | None = None, *, cameras: list[str] | None = None,
             at_s: float | None = None, max_frames: int = 32) -> FrameSet:
    """Key frames from a bag directory or a single .mcap/.db3 file, received by ``at_s`` seconds after the bag start.

    ``cameras`` selects cameras by name (the topic namespace, e.g. "front") or colour topic; None = all. Up to
    ``max_frames`` frames in all, shared evenly between the cameras, assembled as the live node assembles them
    with ``settings`` (default FramesConfig()). A bag without any TF gives frames without poses.
    """
    path = Path(path)
    settings = settings or FramesConfig()
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if at_s is not None and at_s < 0:
        raise ValueError(f"at_s is seconds from the bag start and cannot be negative, got {at_s}")
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_JAZZY)) as reader:
        scan = _scan(reader)
        selected = _select_cameras(_cameras(scan), cameras, path, scan.topics)
        end_ns = None if at_s is None else scan.start_ns + round(at_s * 1e9)
        buffer = FrameBuffer([camera.name for camera in selected], settings, decode_on_arrival=False)
        end_s, problems = _feed(buffer, selected, scan, end_ns)
        if end_s is None:
            raise NoFramesError(f"no image of camera(s) {', '.join(c.name for c in selected)} was received by "
                                f"{at_s} s after the bag start")
        try:
            frames = buffer.frame_set(FrameRequest(end_s, math.inf, max_frames), scan.tf, settings,
                                      prefetch=lambda chosen: _load(reader, chosen))
        except NoFramesError as error:
            raise NoFramesError("; ".join([str(error), *problems])) from None
    frames.extra.update({"bag_path": str(path), "bag_start_s": scan.start_ns * 1e-9,
                         "camera_topics": {camera.name: camera.colour.name for camera in selected}})
    return frames


def read_tf(path: str | Path) -> TransformBuffer:
    """Every /tf and /tf_static transform of a bag, in a TransformBuffer that keeps them all."""
    tf = TransformBuffer(cache_time_s=math.inf)
    with AnyReader([Path(path)], default_typestore=get_typestore(Stores.ROS2_JAZZY)) as reader:
        connections = [c for c in reader.connections if c.msgtype == TF_MESSAGE]
        for connection, _, raw in reader.messages(connections=connections):
            add_tf_message(tf, reader.deserialize(raw, connection.msgtype), static=_is_static(connection.topic))
    return tf


def _is_static(topic: str) -> bool:
    return topic.rstrip("/").endswith("tf_static")


def _scan(reader: AnyReader) -> _Scan:
    """First pass: all TF into a buffer, every image message's header, the CameraInfo messages per topic."""
    scan = _Scan(TransformBuffer(cache_time_s=math.inf), {}, {}, reader.start_time)
    wanted = [c for c in reader.connections if c.msgtype in (IMAGE, COMPRESSED_IMAGE, CAMERA_INFO, TF_MESSAGE)]
    for connection, log_time, raw in reader.messages(connections=wanted):
        if connection.msgtype == TF_MESSAGE:
            add_tf_message(scan.tf, reader.deserialize(raw, connection.msgtype), static=_is_static(connection.topic))
        elif connection.msgtype == CAMERA_INFO:
            scan.infos.setdefault(connection.topic, []).append((log_time, reader.deserialize(raw, connection.msgtype)))
        else:
            topic = scan.topics.get(connection.topic)
            if topic is None:
                topic = scan.topics[connection.topic] = _describe(connection.topic, connection.msgtype,
                                                                  reader.deserialize(raw, connection.msgtype))
            stamp, frame_id = header_of(raw)
            topic.stamps.append(stamp if stamp > 0 else log_time * 1e-9)
            topic.frame_ids.append(frame_id)
            topic.log_times.append(log_time)
    return scan


def _describe(name: str, msgtype: str, first_msg) -> _ImageTopic:
    """Classify an image topic by its first message: colour or depth, frame and size."""
    compressed = msgtype == COMPRESSED_IMAGE
    return _ImageTopic(
        name=name, msgtype=msgtype, frame_id=first_msg.header.frame_id.lstrip("/"),
        is_depth=("compresseddepth" in first_msg.format.lower()) if compressed else first_msg.encoding in DEPTH_ENCODINGS,
        size=None if compressed else (int(first_msg.width), int(first_msg.height)),
    )


def _cameras(scan: _Scan) -> list[_Camera]:
    """One camera per colour topic, with the depth topic registered to it and the CameraInfo beside it."""
    topics = scan.topics
    depth_topics = [topic for topic in topics.values() if topic.is_depth]
    cameras = []
    for colour in sorted((topic for topic in topics.values() if not topic.is_depth), key=lambda t: t.name):
        registered = [d for d in depth_topics if d.frame_id == colour.frame_id
                      and (d.size is None or colour.size is None or d.size == colour.size)]
        depth = max(registered, key=lambda d: len(_common_prefix(d.name, colour.name)), default=None)
        info_topic = next((name for name in sorted(scan.infos) if name.rsplit("/", 1)[0] == colour.namespace), None)
        segments = colour.namespace.strip("/").split("/")
        if len(segments) > 1 and segments[-1] in _COLOUR_STREAMS:
            segments = segments[:-1]
        cameras.append(_Camera("/".join(segments) or colour.name.strip("/"), colour, depth, info_topic))
    names = [camera.name for camera in cameras]
    for camera in cameras:
        if names.count(camera.name) > 1:  # two colour streams in one namespace: name them by topic
            camera.name = camera.colour.name.strip("/")
    return cameras


def _common_prefix(a: str, b: str) -> str:
    length = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return a[:length]


def _select_cameras(available: list[_Camera], wanted: list[str] | None, path: Path,
                    topics: dict[str, _ImageTopic]) -> list[_Camera]:
    """The cameras asked for, by name or colour topic; an unknown one is an error listing what the bag has."""
    if not available:
        raise ValueError(f"{path} has no colour image topics (sensor_msgs/Image or CompressedImage); "
                         f"image topics: {sorted(topics) or 'none'}")
    if not wanted:
        return available
    by_key = {}
    for camera in available:
        by_key[camera.name] = by_key[camera.colour.name] = by_key[camera.colour.name.lstrip("/")] = camera
    unknown = [name for name in wanted if name not in by_key]
    if unknown:
        listing = ", ".join(f"{c.name} ({c.colour.name})" for c in available)
        raise ValueError(f"unknown camera(s) {unknown} in {path}; cameras: {listing}; image topics: {sorted(topics)}")
    return list({id(by_key[name]): by_key[name] for name in wanted}.values())


def _events(cameras: list[_Camera], scan: _Scan) -> Iterator[tuple[int, int, _Camera, str, int]]:
    """(receive time, tie-break, camera, kind, ordinal) of every message of the cameras, in recorded order."""
    events = []
    for camera in cameras:
        events += [(t, 0, camera, "info", n) for n, (t, _) in enumerate(scan.infos.get(camera.info_topic, []))]
        for kind, topic in (("colour", camera.colour), ("depth", camera.depth)):
            if topic is not None:
                events += [(t, 1, camera, kind, n) for n, t in enumerate(topic.log_times)]
    events.sort(key=lambda event: event[:2])
    return iter(events)


def _feed(buffer: FrameBuffer, cameras: list[_Camera], scan: _Scan, end_ns: int | None) -> tuple[float | None, list[str]]:
    """Offer the cameras' messages received by ``end_ns`` to ``buffer`` as the node receives them; returns the
    newest colour stamp offered (None if none) and what was refused, once per camera and reason."""
    newest, problems = None, {}
    for log_time, _, camera, kind, ordinal in _events(cameras, scan):
        if end_ns is not None and log_time > end_ns:
            break
        if kind == "info":
            msg = scan.infos[camera.info_topic][ordinal][1]
            try:
                buffer.add_info(camera.name, stamp_to_seconds(msg.header.stamp) or log_time * 1e-9, intrinsics_of(msg),
                                msg.header.frame_id)
            except ValueError as error:
                problems.setdefault((camera.name, "info"), f"camera {camera.name}: {error}")
            continue
        topic = camera.colour if kind == "colour" else camera.depth
        stamp = topic.stamps[ordinal]
        if kind == "depth":
            buffer.add_depth(camera.name, stamp, _Message(topic, ordinal, colour=False))
            continue
        newest = stamp if newest is None else max(newest, stamp)
        try:
            buffer.add_colour(camera.name, stamp, topic.frame_ids[ordinal], _Message(topic, ordinal, colour=True))
        except ValueError as error:
            problems.setdefault((camera.name, "colour"), f"camera {camera.name}: images on {topic.name}: {error}")
    return newest, list(problems.values())


def _load(reader: AnyReader, chosen: list[BufferedFrame]) -> None:
    """Second pass: deserialize exactly the chosen frames' colour and depth messages into their decoders."""
    wanted = {(d.topic.name, d.ordinal): d for f in chosen for d in (f.rgb, f.depth) if isinstance(d, _Message)}
    topics = {name for name, _ in wanted}
    counters = dict.fromkeys(topics, 0)
    last = {name: max(n for t, n in wanted if t == name) for name in topics}
    for connection, _, raw in reader.messages(connections=[c for c in reader.connections if c.topic in topics]):
        ordinal = counters[connection.topic]
        counters[connection.topic] += 1
        decoder = wanted.get((connection.topic, ordinal))
        if decoder is not None:
            decoder.msg = reader.deserialize(raw, connection.msgtype)
        if all(counters[name] > last[name] for name in topics):
            break
