"""Write rendered frames as a rosbag2 (MCAP, ROS 2 Jazzy types) with a ground-truth JSON sidecar, and read that sidecar.

Topics for camera ``<c>``: ``/<c>/image_raw`` (Image rgb8) or ``/<c>/image_raw/compressed`` (CompressedImage
JPEG, the image_transport name), ``/<c>/depth/image_raw`` (16UC1 millimetres, 0 = invalid, REP 118; registered
to the colour camera), ``/<c>/camera_info``, ``/tf`` (``<world> -> base_link`` at every frame stamp) and
``/tf_static`` (``base_link -> <c>_link -> <c>_optical_frame``, latched). Headers carry the frame's stamp.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from scipy.spatial.transform import Rotation

from ..frames import Frame
from .measure import compute_ground_truth
from .model import Scene
from .truth import GroundTruth

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
BAG_VERSION = 8  # rosbag2 metadata version written by Jazzy
JPEG_QUALITY = 90
MAX_DEPTH_MM = 65535
_T = TYPESTORE.types
_ZERO = QosTime(sec=0, nsec=0)
#: ``/tf_static`` is latched: a late subscriber (or ``ros2 bag play``) still gets it.
LATCHED = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, _ZERO, _ZERO,
              QosLiveliness.AUTOMATIC, _ZERO, False)


def ground_truth_path(bag: Path) -> Path:
    """The sidecar next to a bag directory: ``<bag>.ground_truth.json``."""
    bag = Path(bag)
    return bag.with_name(bag.name + ".ground_truth.json")


def read_ground_truth(bag: Path) -> GroundTruth:
    """The ground truth written next to ``bag`` by ``write_bag``."""
    sidecar = ground_truth_path(bag)
    if not sidecar.is_file():
        raise FileNotFoundError(f"no ground-truth sidecar {sidecar} for bag {bag}; write_bag() writes one next to the bag")
    return GroundTruth.load(sidecar)


def write_bag(scene: Scene, frames: Sequence[Frame], path: Path, *, camera: str = "front", compressed: bool = False,
              truth: GroundTruth | None = None) -> Path:
    """Write ``frames`` of ``scene`` to a new bag directory ``path`` (MCAP) and the ground truth next to it.

    ``camera`` names the topics and TF frames; the mount geometry comes from ``scene.mount``. Each frame needs
    K, depth and a ``base_link`` pose consistent with its ``T_world_camera``. ``truth`` defaults to
    ``compute_ground_truth(scene)``. Returns ``path``.
    """
    path = Path(path)
    if not frames:
        raise ValueError("a bag needs at least one frame")
    for frame in frames:
        _check_frame(scene, frame)
    link, optical = f"{camera}_link", f"{camera}_optical_frame"
    image_topic = f"/{camera}/image_raw/compressed" if compressed else f"/{camera}/image_raw"
    image_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    with Writer(path, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP) as writer:
        def connect(topic: str, msgtype: str, qos: tuple[Qos, ...] = ()):
            """Register a topic (Jazzy message definitions) with its offered QoS."""
            return writer.add_connection(topic, msgtype, typestore=TYPESTORE, offered_qos_profiles=qos)

        tf_static = connect("/tf_static", "tf2_msgs/msg/TFMessage", (LATCHED,))
        tf = connect("/tf", "tf2_msgs/msg/TFMessage")
        info = connect(f"/{camera}/camera_info", "sensor_msgs/msg/CameraInfo")
        image = connect(image_topic, image_type)
        depth = connect(f"/{camera}/depth/image_raw", "sensor_msgs/msg/Image")

        def put(connection, message, stamp: int) -> None:
            """Serialise (CDR) and write one message at ``stamp`` nanoseconds."""
            writer.write(connection, stamp, TYPESTORE.serialize_cdr(message, connection.msgtype))

        first = min(to_nanoseconds(f.stamp) for f in frames)
        put(tf_static, _T["tf2_msgs/msg/TFMessage"](transforms=[
            _transform(scene.mount.T_base_link, "base_link", link, first),
            _transform(scene.mount.T_link_optical, link, optical, first),
        ]), first)
        for frame in frames:
            stamp = to_nanoseconds(frame.stamp)
            base = _transform(frame.poses["base_link"], scene.world_frame, "base_link", stamp)
            put(tf, _T["tf2_msgs/msg/TFMessage"](transforms=[base]), stamp)
            put(info, _camera_info(frame, optical, stamp), stamp)
            put(image, _compressed(frame, optical, stamp) if compressed else _rgb(frame, optical, stamp), stamp)
            put(depth, _depth(frame, optical, stamp), stamp)
    (truth or compute_ground_truth(scene)).save(ground_truth_path(path))
    return path


def to_nanoseconds(stamp: float) -> int:
    """Seconds to integer nanoseconds (the bag's and headers' clock)."""
    return int(round(stamp * 1e9))


def _check_frame(scene: Scene, frame: Frame) -> None:
    missing = [name for name, value in (("K", frame.K), ("depth", frame.depth), ("T_world_camera", frame.T_world_camera),
                                        ("poses['base_link']", frame.poses.get("base_link"))) if value is None]
    if missing:
        raise ValueError(f"frame {frame.index} lacks {', '.join(missing)}; a bag needs all of them")
    expected = frame.poses["base_link"] @ scene.mount.T_base_optical
    if not np.allclose(frame.T_world_camera, expected, atol=1e-6):
        raise ValueError(f"frame {frame.index}: T_world_camera is not base_link @ the scene's camera mount; "
                         "were these frames rendered from this scene?")


def _header(frame_id: str, stamp: int):
    time = _T["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9)
    return _T["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def _transform(T: np.ndarray, parent: str, child: str, stamp: int):
    x, y, z, w = Rotation.from_matrix(T[:3, :3]).as_quat()
    return _T["geometry_msgs/msg/TransformStamped"](
        header=_header(parent, stamp), child_frame_id=child,
        transform=_T["geometry_msgs/msg/Transform"](
            translation=_T["geometry_msgs/msg/Vector3"](x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3])),
            rotation=_T["geometry_msgs/msg/Quaternion"](x=float(x), y=float(y), z=float(z), w=float(w))))


def _camera_info(frame: Frame, frame_id: str, stamp: int):
    K = frame.K
    P = np.hstack([K, np.zeros((3, 1))])
    distortion = np.zeros(5) if frame.distortion is None else np.asarray(frame.distortion, dtype=np.float64)
    return _T["sensor_msgs/msg/CameraInfo"](
        header=_header(frame_id, stamp), height=frame.height, width=frame.width, distortion_model="plumb_bob",
        d=distortion, k=K.reshape(-1).copy(), r=np.eye(3).reshape(-1), p=P.reshape(-1), binning_x=0, binning_y=0,
        roi=_T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def _rgb(frame: Frame, frame_id: str, stamp: int):
    return _T["sensor_msgs/msg/Image"](header=_header(frame_id, stamp), height=frame.height, width=frame.width, encoding="rgb8",
                                       is_bigendian=0, step=frame.width * 3, data=np.ascontiguousarray(frame.rgb).reshape(-1))


def _compressed(frame: Frame, frame_id: str, stamp: int):
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"JPEG encoding of frame {frame.index} failed")
    return _T["sensor_msgs/msg/CompressedImage"](header=_header(frame_id, stamp), format="rgb8; jpeg compressed bgr8",
                                                 data=jpeg.reshape(-1))


def depth_to_millimetres(depth: np.ndarray) -> np.ndarray:
    """REP 118 16UC1: metres -> uint16 millimetres; invalid (NaN, <= 0) and beyond 65.535 m become 0."""
    mm = np.rint(np.nan_to_num(depth, nan=0.0) * 1000.0)
    return np.where((mm > 0) & (mm <= MAX_DEPTH_MM), mm, 0).astype(np.uint16)


def _depth(frame: Frame, frame_id: str, stamp: int):
    data = depth_to_millimetres(frame.depth).astype("<u2").view(np.uint8).reshape(-1)
    return _T["sensor_msgs/msg/Image"](header=_header(frame_id, stamp), height=frame.height, width=frame.width, encoding="16UC1",
                                       is_bigendian=0, step=frame.width * 2, data=data)
