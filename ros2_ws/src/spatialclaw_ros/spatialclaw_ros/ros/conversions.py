"""NumPy conversions of ROS messages, without cv_bridge or rclpy.

Messages are duck-typed, so the same functions convert rclpy messages (live topics) and rosbags
messages (recordings). Colour arrays are always in RGB(A) order; the encoding only describes the
bytes on the wire. Depth keeps its REP 118 wire type (16UC1 millimetres, 32FC1 metres); turn it
into metres with ``spatialclaw_ros.frames.depth_to_metres``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

from spatialclaw_ros.frame_buffer import Intrinsics
from spatialclaw_ros.imaging import to_rgb_array
from spatialclaw_ros.tf_buffer import TransformBuffer, transform_matrix, transform_parts


@dataclass(frozen=True)
class _Layout:
    """How one image encoding lays out a pixel."""

    dtype: np.dtype
    channels: int
    to_rgb: tuple[int, ...] | None = None  # channel permutation wire -> RGB(A); None = already in order


_LAYOUTS: dict[str, _Layout] = {
    "rgb8": _Layout(np.dtype(np.uint8), 3),
    "bgr8": _Layout(np.dtype(np.uint8), 3, (2, 1, 0)),
    "rgba8": _Layout(np.dtype(np.uint8), 4),
    "bgra8": _Layout(np.dtype(np.uint8), 4, (2, 1, 0, 3)),
    "mono8": _Layout(np.dtype(np.uint8), 1),
    "mono16": _Layout(np.dtype(np.uint16), 1),
    "16UC1": _Layout(np.dtype(np.uint16), 1),
    "32FC1": _Layout(np.dtype(np.float32), 1),
}

# sensor_msgs/PointField datatypes used by the packer.
_POINTFIELD_FLOAT32 = 7
# compressed_depth_image_transport's ConfigHeader: int32 format, float32 depthQuantA, depthQuantB.
_COMPRESSED_DEPTH_HEADER = struct.Struct("<iff")


def _layout(encoding: str) -> _Layout:
    try:
        return _LAYOUTS[encoding]
    except KeyError:
        raise ValueError(f"unsupported image encoding {encoding!r}; supported: {', '.join(_LAYOUTS)}") from None


def _bytes_of(data) -> np.ndarray:
    """A flat uint8 view of a message's ``data`` (bytes, array.array, NumPy array or a list of ints)."""
    try:
        return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def image_to_array(msg) -> np.ndarray:
    """Pixels of a sensor_msgs/Image: (H, W, 3|4) uint8 in RGB(A) order, or (H, W) uint8/uint16/float32.

    Honours row padding (``step``) and ``is_bigendian``; the result owns its memory.
    """
    layout = _layout(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ValueError(f"{msg.encoding} image has no pixels ({width}x{height})")
    row_bytes = width * layout.channels * layout.dtype.itemsize
    if step < row_bytes:
        raise ValueError(f"{msg.encoding} image {width}x{height}: step {step} is shorter than one row ({row_bytes} bytes)")
    data = _bytes_of(msg.data)
    if data.size != step * height:
        raise ValueError(f"{msg.encoding} image {width}x{height}: {data.size} data bytes, "
                         f"expected step x height = {step} x {height} = {step * height}")
    wire = layout.dtype.newbyteorder(">" if msg.is_bigendian else "<")
    rows = np.ascontiguousarray(data.reshape(height, step)[:, :row_bytes])
    pixels = rows.view(wire).reshape(height, width, layout.channels).astype(layout.dtype)
    if layout.to_rgb is not None:
        pixels = np.ascontiguousarray(pixels[:, :, layout.to_rgb])
    return pixels[:, :, 0] if layout.channels == 1 else pixels


def compressed_to_array(msg) -> np.ndarray:
    """Pixels of a sensor_msgs/CompressedImage (JPEG/PNG, or compressedDepth PNG) like ``image_to_array``.

    compressedDepth "16UC1" gives uint16 millimetres, "32FC1" float32 metres (NaN where invalid).
    """
    data = _bytes_of(msg.data)
    if data.size == 0:
        raise ValueError(f"CompressedImage ({msg.format!r}) has no data")
    if "compresseddepth" in msg.format.lower():
        return _compressed_depth_to_array(msg.format, data)
    if data[:2].tobytes() == b"\xff\xd8" and data[-2:].tobytes() != b"\xff\xd9":
        raise ValueError(f"corrupt CompressedImage ({msg.format!r}, {data.size} bytes): "
                         f"the JPEG has no end-of-image marker (truncated)")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"corrupt CompressedImage ({msg.format!r}, {data.size} bytes): OpenCV cannot decode it as JPEG or PNG")
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def _compressed_depth_to_array(fmt: str, data: np.ndarray) -> np.ndarray:
    """Decode image_transport's compressedDepth (12-byte header + 16-bit PNG)."""
    depth_encoding = fmt.split(";")[0].strip()
    if depth_encoding not in ("16UC1", "32FC1") or "png" not in fmt.lower():
        raise ValueError(f"unsupported compressedDepth format {fmt!r}; supported: '16UC1; compressedDepth png', "
                         f"'32FC1; compressedDepth png'")
    header_size = _COMPRESSED_DEPTH_HEADER.size
    if data.size <= header_size:
        raise ValueError(f"corrupt compressedDepth image ({fmt!r}): only {data.size} bytes")
    _, quant_a, quant_b = _COMPRESSED_DEPTH_HEADER.unpack(data[:header_size].tobytes())
    image = cv2.imdecode(data[header_size:], cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint16 or image.ndim != 2:
        raise ValueError(f"corrupt compressedDepth image ({fmt!r}, {data.size} bytes): no 16-bit single-channel PNG")
    if depth_encoding == "16UC1":
        return image
    inverse = image.astype(np.float32)
    with np.errstate(divide="ignore"):
        metres = np.float32(quant_a) / (inverse - np.float32(quant_b))
    return np.where(image > 0, metres, np.nan).astype(np.float32)


def to_rgb8(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB from any colour or mono array above (mono16 keeps its high byte)."""
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    return to_rgb_array(pixels)


def array_to_image_fields(pixels: np.ndarray, encoding: str) -> dict:
    """sensor_msgs/Image fields (height, width, encoding, is_bigendian, step, data) for an array.

    Colour input is RGB(A); bgr8/bgra8 reorder it on the wire. ``data`` is little-endian ``bytes``.
    """
    layout = _layout(encoding)
    pixels = np.asarray(pixels)
    expected_shape = "(H, W)" if layout.channels == 1 else f"(H, W, {layout.channels})"
    shape_ok = pixels.ndim == 2 if layout.channels == 1 else (pixels.ndim == 3 and pixels.shape[2] == layout.channels)
    if not shape_ok or pixels.dtype != layout.dtype:
        raise ValueError(f"{encoding} needs a {expected_shape} {layout.dtype} array, got {pixels.shape} {pixels.dtype}")
    if layout.to_rgb is not None:
        pixels = pixels[:, :, np.argsort(layout.to_rgb)]
    wire = np.ascontiguousarray(pixels, dtype=layout.dtype.newbyteorder("<"))
    height, width = pixels.shape[:2]
    return {
        "height": int(height), "width": int(width), "encoding": encoding, "is_bigendian": 0,
        "step": int(width * layout.channels * layout.dtype.itemsize), "data": wire.tobytes(),
    }


def camera_info_to_K(msg) -> np.ndarray:
    """(3, 3) pinhole intrinsics from a sensor_msgs/CameraInfo; an uncalibrated (zero) K is an error."""
    K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"CameraInfo for frame {msg.header.frame_id!r} has no focal length "
                         f"(fx={K[0, 0]}, fy={K[1, 1]}): the camera is not calibrated")
    return K


def intrinsics_of(msg) -> Intrinsics:
    """The Intrinsics of a sensor_msgs/CameraInfo (K, plumb_bob coefficients when any is non-zero, image size)."""
    distortion = np.asarray(msg.d, dtype=np.float64)
    return Intrinsics(camera_info_to_K(msg), distortion if distortion.any() else None, int(msg.width), int(msg.height))


def stamp_to_seconds(stamp) -> float:
    """Seconds from a builtin_interfaces/Time (``sec``, ``nanosec``)."""
    return int(stamp.sec) + int(stamp.nanosec) * 1e-9


def seconds_to_stamp_fields(seconds: float) -> dict:
    """builtin_interfaces/Time fields (``sec``, ``nanosec``) for a time in seconds."""
    nanoseconds = round(seconds * 1e9)
    return {"sec": nanoseconds // 1_000_000_000, "nanosec": nanoseconds % 1_000_000_000}


def transform_to_matrix(transform) -> np.ndarray:
    """4x4 matrix of a geometry_msgs/Transform (``translation`` xyz, ``rotation`` xyzw)."""
    t, q = transform.translation, transform.rotation
    return transform_matrix((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))


def matrix_to_transform_fields(T: np.ndarray) -> dict:
    """geometry_msgs/Transform fields of a 4x4 rigid transform: {"translation": {x,y,z}, "rotation": {x,y,z,w}}."""
    translation, quaternion = transform_parts(T)
    return {
        "translation": dict(zip("xyz", map(float, translation))),
        "rotation": dict(zip("xyzw", map(float, quaternion))),
    }


def add_tf_message(buffer: TransformBuffer, msg, *, static: bool) -> int:
    """Store every TransformStamped of a tf2_msgs/TFMessage in ``buffer``; returns how many were kept."""
    kept = 0
    for stamped in msg.transforms:
        kept += buffer.set_transform(stamped.header.frame_id, stamped.child_frame_id,
                                     stamp_to_seconds(stamped.header.stamp),
                                     transform_to_matrix(stamped.transform), static=static)
    return kept


def pointcloud2_fields_xyzrgb(points: np.ndarray, colors: np.ndarray) -> tuple[list[dict], bytes, int]:
    """Pack (N, 3) points and (N, 3) uint8 RGB into PointCloud2 (fields, data, point_step).

    Layout: x, y, z float32 and ``rgb`` as a float32 holding 0x00RRGGBB (the PCL/RViz convention),
    little-endian, 16 bytes a point. ``fields`` are sensor_msgs/PointField keyword dicts.
    """
    points = np.asarray(points, dtype=np.float32)
    colors = np.asarray(colors)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {points.shape}")
    if colors.shape != points.shape or colors.dtype != np.uint8:
        raise ValueError(f"colors must be (N, 3) uint8 like points {points.shape}, got {colors.shape} {colors.dtype}")
    packed = np.empty(len(points), dtype=np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")]))
    packed["x"], packed["y"], packed["z"] = points[:, 0], points[:, 1], points[:, 2]
    rgb = colors.astype(np.uint32)
    packed["rgb"] = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    fields = [{"name": name, "offset": 4 * i, "datatype": _POINTFIELD_FLOAT32, "count": 1}
              for i, name in enumerate(("x", "y", "z", "rgb"))]
    return fields, packed.tobytes(), packed.dtype.itemsize
