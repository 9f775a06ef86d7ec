"""Read a question's frames from a rosbag2 recording (.mcap or .db3) without ROS, using ``rosbags``.

Colour images (raw or compressed) are paired with their registered depth image and CameraInfo by
stamp; ``/tf`` and ``/tf_static`` fill a TransformBuffer that gives each frame its camera pose in the
world frame at the image stamp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from spatialclaw_ros.frame_buffer import KeyframePolicy, nearest_indices, select_keyframes, share_frames
from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.ros.conversions import (
    add_tf_message, camera_info_to_K, compressed_to_array, image_to_array, stamp_to_seconds, to_rgb8,
)
from spatialclaw_ros.tf_buffer import TransformBuffer, UnknownFrameError

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
DEPTH_ENCODINGS = ("16UC1", "32FC1")
BODY_FRAME = "base_link"
# Last topic segments that name a transport or a colour stream rather than the camera.
_TRANSPORTS = ("compressed", "compressedDepth")
_COLOUR_STREAMS = ("color", "rgb")


@dataclass
class _ImageTopic:
    """What the first pass learns about one image topic (no pixels kept)."""

    name: str
    compressed: bool
    is_depth: bool = False
    frame_id: str = ""
    size: tuple[int, int] | None = None  # (width, height) of raw images; None for compressed ones
    stamps: list[float] = field(default_factory=list)  # header stamps, s, in message order
    log_times: list[int] = field(default_factory=list)  # bag receive times, ns

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
    info_stamps: np.ndarray  # ascending header stamps of its CameraInfo messages (may be empty)
    infos: list  # the CameraInfo messages, same order


def read_bag(path: str | Path, *, cameras: list[str] | None = None, at_s: float | None = None, max_frames: int = 32,
             world_frame: str | None = None, sync_tolerance_s: float = 0.05,
             keyframes: KeyframePolicy | None = None) -> FrameSet:
    """Key frames from a bag directory or a single .mcap/.db3 file, ending ``at_s`` seconds after the bag start.

    ``cameras`` selects cameras by name (the topic namespace, e.g. "front") or colour topic; None = all.
    Up to ``max_frames`` frames in all, shared evenly between the cameras and chosen per camera by
    ``frame_buffer.select_keyframes`` (spread in time and camera motion, as the live node does). Poses are in ``world_frame``
    (default: the root of the camera's TF tree); ``Frame.poses["base_link"]`` is set when that frame exists.
    Depth is paired only when registered to the colour image (same frame_id) within ``sync_tolerance_s``.
    """
    path = Path(path)
    keyframes = keyframes or KeyframePolicy()
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if at_s is not None and at_s < 0:
        raise ValueError(f"at_s is seconds from the bag start and cannot be negative, got {at_s}")
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_JAZZY)) as reader:
        tf, topics, infos = _scan(reader)
        available = _cameras(topics, infos)
        selected = _select_cameras(available, cameras, path, topics)
        quotas = share_frames(max_frames, [camera.name for camera in selected])
        world = _world_frame(tf, selected, world_frame)
        end_ns = None if at_s is None else reader.start_time + round(at_s * 1e9)
        picks = {camera.name: _pick_frames(camera, tf, world, end_ns, quotas[camera.name], keyframes)
                 for camera in selected}
        depth_picks = {camera.name: _pair_depth(camera, picks[camera.name], sync_tolerance_s) for camera in selected}
        messages = _read_selected(reader, selected, picks, depth_picks)
        bag_start_s = reader.start_time * 1e-9

    stream = sorted((stamp, camera.name, ordinal) for camera in selected
                    for ordinal, stamp in enumerate(camera.colour.stamps))
    absolute = {(name, ordinal): index for index, (_, name, ordinal) in enumerate(stream)}
    frames = []
    for camera in selected:
        for ordinal in picks[camera.name]:
            depth_ordinal = depth_picks[camera.name].get(ordinal)
            depth_msg = None if depth_ordinal is None else messages[(camera.depth.name, depth_ordinal)]
            frames.append(_frame(camera, absolute[(camera.name, ordinal)], camera.colour.stamps[ordinal],
                                 messages[(camera.colour.name, ordinal)], depth_msg, tf, world))
    frames.sort(key=lambda frame: (frame.stamp, frame.index))
    span = stream[-1][0] - stream[0][0]
    return FrameSet(
        frames=frames, world_frame=world or "world", is_video=True,
        fps=(len(stream) - 1) / span if span > 0 else 0.0, total_frames=len(stream),
        extra={"bag_path": str(path), "bag_start_s": bag_start_s,
               "camera_topics": {camera.name: camera.colour.name for camera in selected}},
    )


def _scan(reader: AnyReader) -> tuple[TransformBuffer, dict[str, _ImageTopic], dict[str, list]]:
    """First pass: all TF into a buffer, image stamps and layout per topic, CameraInfo messages per topic."""
    tf = TransformBuffer(cache_time_s=math.inf)
    topics: dict[str, _ImageTopic] = {}
    infos: dict[str, list] = {}
    wanted = [c for c in reader.connections if c.msgtype in (IMAGE, COMPRESSED_IMAGE, CAMERA_INFO, TF_MESSAGE)]
    for connection, log_time, raw in reader.messages(connections=wanted):
        msg = reader.deserialize(raw, connection.msgtype)
        if connection.msgtype == TF_MESSAGE:
            add_tf_message(tf, msg, static=_is_static(connection.topic))
        elif connection.msgtype == CAMERA_INFO:
            infos.setdefault(connection.topic, []).append(msg)
        else:
            topic = topics.get(connection.topic)
            if topic is None:
                topic = topics[connection.topic] = _describe(connection.topic, connection.msgtype, msg)
            stamp = stamp_to_seconds(msg.header.stamp)
            topic.stamps.append(stamp if stamp > 0 else log_time * 1e-9)
            topic.log_times.append(log_time)
    return tf, topics, infos


def _is_static(topic: str) -> bool:
    return topic.rstrip("/").endswith("tf_static")


def read_tf(path: str | Path) -> TransformBuffer:
    """Every /tf and /tf_static transform of a bag, in a TransformBuffer that keeps them all."""
    tf = TransformBuffer(cache_time_s=math.inf)
    with AnyReader([Path(path)], default_typestore=get_typestore(Stores.ROS2_JAZZY)) as reader:
        connections = [c for c in reader.connections if c.msgtype == TF_MESSAGE]
        for connection, _, raw in reader.messages(connections=connections):
            add_tf_message(tf, reader.deserialize(raw, connection.msgtype), static=_is_static(connection.topic))
    return tf


def _describe(name: str, msgtype: str, first_msg) -> _ImageTopic:
    """Classify an image topic by its first message: colour or depth, frame and size."""
    compressed = msgtype == COMPRESSED_IMAGE
    return _ImageTopic(
        name=name, compressed=compressed, frame_id=first_msg.header.frame_id.lstrip("/"),
        is_depth=("compresseddepth" in first_msg.format.lower()) if compressed else first_msg.encoding in DEPTH_ENCODINGS,
        size=None if compressed else (int(first_msg.width), int(first_msg.height)),
    )


def _cameras(topics: dict[str, _ImageTopic], infos: dict[str, list]) -> list[_Camera]:
    """One camera per colour topic, with the depth topic registered to it and the CameraInfo beside it."""
    depth_topics = [topic for topic in topics.values() if topic.is_depth]
    cameras = []
    for colour in sorted((topic for topic in topics.values() if not topic.is_depth), key=lambda t: t.name):
        registered = [d for d in depth_topics if d.frame_id == colour.frame_id
                      and (d.size is None or colour.size is None or d.size == colour.size)]
        depth = max(registered, key=lambda d: len(_common_prefix(d.name, colour.name)), default=None)
        info_topic = next((name for name in sorted(infos) if name.rsplit("/", 1)[0] == colour.namespace), None)
        info_msgs = sorted(infos.get(info_topic, []), key=lambda m: stamp_to_seconds(m.header.stamp))
        segments = colour.namespace.strip("/").split("/")
        if len(segments) > 1 and segments[-1] in _COLOUR_STREAMS:
            segments = segments[:-1]
        cameras.append(_Camera(
            name="/".join(segments) or colour.name.strip("/"), colour=colour, depth=depth,
            info_stamps=np.array([stamp_to_seconds(m.header.stamp) for m in info_msgs]), infos=info_msgs,
        ))
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


def _world_frame(tf: TransformBuffer, cameras: list[_Camera], requested: str | None) -> str | None:
    """The requested world frame (checked), else the root of the first camera's TF tree; None without TF."""
    known = set(tf.frames())
    if requested is not None:
        requested = requested.lstrip("/")
        if requested not in known:
            raise UnknownFrameError(f"world frame {requested!r} is not in the bag's TF tree; "
                                    f"known frames: {', '.join(sorted(known)) or 'none (the bag has no TF)'}")
        for camera in cameras:
            if camera.colour.frame_id not in known:
                raise UnknownFrameError(f"camera {camera.name}: its frame {camera.colour.frame_id!r} is not in the "
                                        f"bag's TF tree, so it has no pose in {requested!r}; known frames: "
                                        f"{', '.join(sorted(known))}")
        return requested
    posed = [camera for camera in cameras if camera.colour.frame_id in known]
    return tf.root(posed[0].colour.frame_id) if posed else None


def _pick_frames(camera: _Camera, tf: TransformBuffer, world: str | None, end_ns: int | None, count: int,
                 policy: KeyframePolicy) -> list[int]:
    """Ordinals of up to ``count`` key frames received by ``end_ns`` with a pose, chosen like the live node does."""
    colour = camera.colour
    stamps = np.asarray(colour.stamps)
    usable = np.ones(len(stamps), dtype=bool)
    if end_ns is not None:
        usable &= np.asarray(colour.log_times) <= end_ns
    posed = world is not None and colour.frame_id in tf.frames()
    if posed:
        first, last = tf.time_range(world, colour.frame_id)
        usable &= (stamps >= first) & (stamps <= last)
    candidates = np.flatnonzero(usable)
    if candidates.size == 0:
        raise ValueError(f"camera {camera.name} ({colour.name}) has no image before the requested time"
                         + ("" if world is None else f" with a TF pose in {world!r}"))
    candidates = candidates[np.argsort(stamps[candidates], kind="stable")]
    poses = [tf.lookup(world, colour.frame_id, stamps[i]) for i in candidates] if posed else None
    return sorted(candidates[select_keyframes(stamps[candidates], poses, count, policy)].tolist())


def _pair_depth(camera: _Camera, ordinals: list[int], tolerance_s: float) -> dict[int, int]:
    """colour ordinal -> ordinal of the depth image nearest in time, when within ``tolerance_s``."""
    if camera.depth is None or not camera.depth.stamps:
        return {}
    order = np.argsort(camera.depth.stamps, kind="stable")
    depth_stamps = np.asarray(camera.depth.stamps)[order]
    colour_stamps = np.asarray([camera.colour.stamps[o] for o in ordinals])
    nearest = nearest_indices(depth_stamps, colour_stamps)
    return {o: int(order[n]) for o, n, t in zip(ordinals, nearest, colour_stamps)
            if abs(depth_stamps[n] - t) <= tolerance_s}


def _read_selected(reader: AnyReader, cameras: list[_Camera], picks: dict[str, list[int]],
                   depth_picks: dict[str, dict[int, int]]) -> dict[tuple[str, int], object]:
    """Second pass: deserialize only the chosen colour and depth messages, keyed by (topic, ordinal)."""
    wanted: dict[str, set[int]] = {}
    for camera in cameras:
        wanted.setdefault(camera.colour.name, set()).update(picks[camera.name])
        if depth_picks[camera.name]:
            wanted.setdefault(camera.depth.name, set()).update(depth_picks[camera.name].values())
    counters = dict.fromkeys(wanted, 0)
    messages = {}
    for connection, _, raw in reader.messages(connections=[c for c in reader.connections if c.topic in wanted]):
        ordinal = counters[connection.topic]
        counters[connection.topic] += 1
        if ordinal in wanted[connection.topic]:
            messages[(connection.topic, ordinal)] = reader.deserialize(raw, connection.msgtype)
    return messages


def _pixels(msg, compressed: bool) -> np.ndarray:
    return compressed_to_array(msg) if compressed else image_to_array(msg)


def _frame(camera: _Camera, index: int, stamp: float, colour_msg, depth_msg, tf: TransformBuffer,
           world: str | None) -> Frame:
    """One Frame: RGB, registered depth, intrinsics from the nearest CameraInfo and TF poses at the image stamp."""
    rgb = to_rgb8(_pixels(colour_msg, camera.colour.compressed))
    frame_id = colour_msg.header.frame_id.lstrip("/")
    depth = None
    if depth_msg is not None:
        depth = _pixels(depth_msg, camera.depth.compressed)
        if depth.shape != rgb.shape[:2]:
            raise ValueError(f"camera {camera.name}: depth {camera.depth.name} is {depth.shape[1]}x{depth.shape[0]} but "
                             f"{camera.colour.name} is {rgb.shape[1]}x{rgb.shape[0]}; depth must be registered to the colour image")
    K = distortion = None
    if camera.infos:
        info = camera.infos[int(nearest_indices(camera.info_stamps, np.array([stamp]))[0])]
        if (int(info.width), int(info.height)) not in ((0, 0), (rgb.shape[1], rgb.shape[0])):
            raise ValueError(f"camera {camera.name}: CameraInfo is for {info.width}x{info.height} images but "
                             f"{camera.colour.name} is {rgb.shape[1]}x{rgb.shape[0]}")
        K = camera_info_to_K(info)
        distortion = np.asarray(info.d, dtype=np.float64) if np.any(np.asarray(info.d)) else None
        frame_id = frame_id or info.header.frame_id.lstrip("/")
    T_world_camera, poses = None, {}
    if world is not None and frame_id in tf.frames():
        T_world_camera = tf.lookup(world, frame_id, stamp)
        if tf.can_transform(world, BODY_FRAME, stamp):
            poses[BODY_FRAME] = tf.lookup(world, BODY_FRAME, stamp)
    return Frame(index=index, rgb=rgb, stamp=stamp, camera=camera.name, frame_id=frame_id, K=K,
                 distortion=distortion, depth=depth, T_world_camera=T_world_camera, poses=poses)
