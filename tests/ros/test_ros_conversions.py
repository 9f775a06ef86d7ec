"""Message <-> NumPy conversions on real (rosbags) message objects: every encoding, padding, endianness, errors."""

from __future__ import annotations

import math
import struct

import cv2
import numpy as np
import pytest
from ros_messages import (
    Image, TFMessage, camera_info, compressed, header, image, transform_stamped, Transform, Vector3, Quaternion,
)

from spatialclaw_ros.ros.conversions import (
    add_tf_message, array_to_image_fields, camera_info_to_K, compressed_to_array, image_to_array,
    matrix_to_transform_fields, pointcloud2_fields_xyzrgb, seconds_to_stamp_fields, stamp_to_seconds,
    to_rgb8, transform_to_matrix,
)
from spatialclaw_ros.tf_buffer import TransformBuffer

RNG = np.random.default_rng(7)
SAMPLES = {
    "rgb8": RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    "bgr8": RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    "rgba8": RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    "bgra8": RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    "mono8": RNG.integers(0, 256, (5, 7), dtype=np.uint8),
    "mono16": RNG.integers(0, 65536, (5, 7), dtype=np.uint16),
    "16UC1": RNG.integers(0, 65536, (5, 7), dtype=np.uint16),
    "32FC1": RNG.uniform(0.1, 9.0, (5, 7)).astype(np.float32),
}


def raw_image(encoding: str, width: int, height: int, step: int, data: bytes, bigendian: int = 0) -> Image:
    return image({"height": height, "width": width, "encoding": encoding, "is_bigendian": bigendian,
                  "step": step, "data": data})


@pytest.mark.parametrize("encoding", list(SAMPLES))
def test_every_encoding_round_trips(encoding):
    pixels = SAMPLES[encoding]
    fields = array_to_image_fields(pixels, encoding)
    itemsize = pixels.dtype.itemsize * (pixels.shape[2] if pixels.ndim == 3 else 1)
    assert (fields["height"], fields["width"], fields["step"]) == (5, 7, 7 * itemsize)
    assert len(fields["data"]) == 5 * 7 * itemsize
    back = image_to_array(image(fields))
    assert back.dtype == pixels.dtype and back.shape == pixels.shape
    np.testing.assert_array_equal(back, pixels)


def test_bgr_wire_order_becomes_rgb():
    msg = raw_image("bgr8", 2, 1, 6, bytes([10, 20, 30, 40, 50, 60]))
    assert image_to_array(msg).tolist() == [[[30, 20, 10], [60, 50, 40]]]
    msg = raw_image("bgra8", 1, 1, 4, bytes([10, 20, 30, 255]))
    assert image_to_array(msg).tolist() == [[[30, 20, 10, 255]]]
    assert bytes(array_to_image_fields(np.array([[[1, 2, 3]]], np.uint8), "bgr8")["data"]) == bytes([3, 2, 1])


def test_padded_rows_are_skipped():
    # 3 rgb8 pixels = 9 bytes, step 12: 3 padding bytes (0xEE) per row.
    rows = [bytes(range(row * 9, row * 9 + 9)) + b"\xee" * 3 for row in range(2)]
    pixels = image_to_array(raw_image("rgb8", 3, 2, 12, b"".join(rows)))
    assert pixels.shape == (2, 3, 3)
    assert pixels.reshape(-1).tolist() == list(range(18))
    depth = image_to_array(raw_image("16UC1", 2, 2, 6, struct.pack("<HHxxHHxx", 1, 2, 3, 4)))
    assert depth.tolist() == [[1, 2], [3, 4]]


def test_big_endian_16UC1_and_32FC1():
    assert image_to_array(raw_image("16UC1", 1, 1, 2, bytes([1, 2]), bigendian=1)).tolist() == [[258]]
    assert image_to_array(raw_image("16UC1", 1, 1, 2, bytes([1, 2]), bigendian=0)).tolist() == [[513]]
    assert image_to_array(raw_image("32FC1", 1, 1, 4, struct.pack(">f", 1.25), bigendian=1)).tolist() == [[1.25]]
    out = image_to_array(raw_image("16UC1", 1, 1, 2, bytes([1, 2]), bigendian=1))
    assert out.dtype == np.uint16 and out.dtype.isnative


def test_size_mismatch_and_bad_encodings_are_clear_errors():
    with pytest.raises(ValueError, match=r"11 data bytes, expected step x height = 6 x 2 = 12"):
        image_to_array(raw_image("rgb8", 2, 2, 6, bytes(11)))
    with pytest.raises(ValueError, match=r"step 5 is shorter than one row \(6 bytes\)"):
        image_to_array(raw_image("rgb8", 2, 2, 5, bytes(10)))
    with pytest.raises(ValueError, match=r"unsupported image encoding 'yuv422'.*rgb8, bgr8"):
        image_to_array(raw_image("yuv422", 2, 2, 4, bytes(8)))
    with pytest.raises(ValueError, match="no pixels"):
        image_to_array(raw_image("mono8", 0, 0, 0, b""))
    with pytest.raises(ValueError, match=r"32FC1 needs a \(H, W\) float32 array, got \(2, 2\) float64"):
        array_to_image_fields(np.zeros((2, 2)), "32FC1")


def test_png_and_jpeg_decode_to_rgb():
    pixels = SAMPLES["rgb8"]
    ok, png = cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(compressed_to_array(compressed(png.tobytes(), "rgb8; png compressed bgr8")), pixels)
    flat = np.zeros((16, 16, 3), np.uint8)
    flat[:] = (200, 40, 90)  # RGB
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(flat, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    decoded = compressed_to_array(compressed(jpeg.tobytes(), "jpeg"))
    assert decoded.shape == (16, 16, 3)
    assert np.abs(decoded.astype(int) - [200, 40, 90]).max() <= 4
    gray16 = SAMPLES["16UC1"]
    ok, png16 = cv2.imencode(".png", gray16)
    np.testing.assert_array_equal(compressed_to_array(compressed(png16.tobytes(), "png")), gray16)


def test_corrupt_compressed_images_are_clear_errors():
    flat = np.full((16, 16, 3), 128, np.uint8)
    ok, jpeg = cv2.imencode(".jpg", flat)
    with pytest.raises(ValueError, match="truncated"):
        compressed_to_array(compressed(jpeg.tobytes()[: len(jpeg) // 2], "jpeg"))
    garbage = b"\xff\xd8" + bytes(RNG.integers(0, 256, 300, dtype=np.uint8)) + b"\xff\xd9"
    with pytest.raises(ValueError, match=r"corrupt CompressedImage \('jpeg', 304 bytes\)"):
        compressed_to_array(compressed(garbage, "jpeg"))
    with pytest.raises(ValueError, match="has no data"):
        compressed_to_array(compressed(b"", "png"))


def compressed_depth(fmt: str, png16: np.ndarray, quant_a: float = 0.0, quant_b: float = 0.0) -> bytes:
    ok, png = cv2.imencode(".png", png16)
    return struct.pack("<iff", 0, quant_a, quant_b) + png.tobytes()


def test_compressed_depth_16UC1_and_32FC1():
    millimetres = np.array([[0, 1000], [2500, 65535]], np.uint16)
    out = compressed_to_array(compressed(compressed_depth("16UC1", millimetres), "16UC1; compressedDepth png"))
    np.testing.assert_array_equal(out, millimetres)
    # 32FC1: depth = A / (value - B); value 0 = invalid.
    quantised = np.array([[0, 200], [600, 1100]], np.uint16)
    out = compressed_to_array(compressed(compressed_depth("32FC1", quantised, 100.0, 100.0), "32FC1; compressedDepth png"))
    assert out.dtype == np.float32 and math.isnan(out[0, 0])
    assert out[0, 1] == pytest.approx(1.0) and out[1, 0] == pytest.approx(0.2) and out[1, 1] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="unsupported compressedDepth format"):
        compressed_to_array(compressed(compressed_depth("16UC1", millimetres), "16UC1; compressedDepth rvl"))


def test_to_rgb8_for_colour_and_mono():
    assert to_rgb8(np.array([[0x1234]], np.uint16)).tolist() == [[[0x12, 0x12, 0x12]]]
    assert to_rgb8(np.array([[[1, 2, 3, 4]]], np.uint8)).tolist() == [[[1, 2, 3]]]
    assert to_rgb8(np.array([[7]], np.uint8)).tolist() == [[[7, 7, 7]]]


def test_camera_info_K():
    K = np.array([[525.0, 0, 319.5], [0, 526.0, 239.5], [0, 0, 1]])
    np.testing.assert_array_equal(camera_info_to_K(camera_info(K, 640, 480)), K)
    with pytest.raises(ValueError, match="'cam_optical' has no focal length.*not calibrated"):
        camera_info_to_K(camera_info(np.zeros((3, 3)), 640, 480, frame_id="cam_optical"))


def test_stamps():
    assert seconds_to_stamp_fields(1.5) == {"sec": 1, "nanosec": 500_000_000}
    assert seconds_to_stamp_fields(1_700_000_000.000_000_001) == {"sec": 1_700_000_000, "nanosec": 0}
    assert stamp_to_seconds(header(12.25).stamp) == 12.25


def test_transform_round_trip():
    fields = matrix_to_transform_fields(np.array([[0, -1, 0, 1.0], [1, 0, 0, 2.0], [0, 0, 1, 3.0], [0, 0, 0, 1]]))
    s45 = math.sqrt(0.5)
    assert fields["translation"] == {"x": 1.0, "y": 2.0, "z": 3.0}
    assert [fields["rotation"][k] for k in "xyzw"] == pytest.approx([0, 0, s45, s45])
    msg = Transform(translation=Vector3(**fields["translation"]), rotation=Quaternion(**fields["rotation"]))
    T = transform_to_matrix(msg)
    assert (T @ [1, 0, 0, 1]).tolist() == pytest.approx([1.0, 3.0, 3.0, 1.0])


def test_tf_messages_fill_a_buffer():
    s45 = math.sqrt(0.5)
    tf = TransformBuffer()
    static = TFMessage(transforms=[transform_stamped("base_link", "cam", 0.0, (0.5, 0, 1), (0, 0, 0, 1))])
    moving = TFMessage(transforms=[transform_stamped("/map", "base_link", 10.0, (0, 0, 0), (0, 0, 0, 1)),
                                   transform_stamped("map", "base_link", 11.0, (2, 0, 0), (0, 0, s45, s45))])
    assert add_tf_message(tf, static, static=True) == 1
    assert add_tf_message(tf, moving, static=False) == 2
    # at 11 s: base at (2, 0, 0) turned 90 deg; cam (0.5, 0, 1) in base -> (2, 0.5, 1) in map.
    assert (tf.lookup("map", "cam", 11.0) @ [0, 0, 0, 1])[:3].tolist() == pytest.approx([2.0, 0.5, 1.0])
    assert tf.lookup("map", "cam", 10.5)[0, 3] == pytest.approx(1.0 + 0.5 * math.cos(math.pi / 4))


def test_pointcloud2_packing():
    points = np.array([[1.0, 2.0, 3.0], [-0.5, 0.25, 8.0]])
    colours = np.array([[255, 0, 16], [1, 2, 3]], np.uint8)
    fields, data, point_step = pointcloud2_fields_xyzrgb(points, colours)
    assert point_step == 16 and len(data) == 32
    assert [(f["name"], f["offset"], f["datatype"], f["count"]) for f in fields] == [
        ("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("rgb", 12, 7, 1)]
    assert struct.unpack("<fffI", data[:16]) == (1.0, 2.0, 3.0, 0xFF0010)
    assert struct.unpack("<fffI", data[16:]) == (-0.5, 0.25, 8.0, 0x010203)
    with pytest.raises(ValueError, match="colors must be"):
        pointcloud2_fields_xyzrgb(points, colours.astype(np.float32))
