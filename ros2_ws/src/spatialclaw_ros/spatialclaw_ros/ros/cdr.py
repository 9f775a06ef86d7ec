"""The header (stamp, frame_id) of a serialized ROS 2 message without deserializing the rest.

Camera topics arrive far faster than frames are kept; the node takes them serialized and reads only the
std_msgs/Header that begins Image, CompressedImage and CameraInfo, so a dropped frame costs no
conversion. Layout (OMG CDR, as rmw serializes ROS 2 messages): a 4-byte encapsulation header whose
second byte says the byte order, then ``int32 sec``, ``uint32 nanosec``, ``uint32`` string length
(with its NUL) and the frame_id bytes. Plain CDR and plain CDR2 lay these first fields out alike.
"""

from __future__ import annotations

import struct

#: Encapsulation ids: plain CDR big/little endian, plain CDR2 big/little endian.
_BYTE_ORDER = {0x0000: ">", 0x0001: "<", 0x0006: ">", 0x0007: "<"}


def header_of(raw: bytes) -> tuple[float, str]:
    """(stamp in seconds, frame_id) of a serialized message that starts with a std_msgs/Header."""
    if len(raw) < 16:
        raise ValueError(f"a serialized message with a header has at least 16 bytes, got {len(raw)}")
    encapsulation = struct.unpack_from(">H", raw, 0)[0]
    order = _BYTE_ORDER.get(encapsulation)
    if order is None:
        raise ValueError(f"unsupported CDR encapsulation 0x{encapsulation:04x} (plain CDR or CDR2 expected)")
    sec, nanosec, length = struct.unpack_from(order + "iII", raw, 4)
    if length == 0 or 16 + length > len(raw):
        raise ValueError(f"corrupt header: frame_id length {length} in a {len(raw)}-byte message")
    frame_id = bytes(raw[16:16 + length - 1]).decode("utf-8")
    return sec + nanosec * 1e-9, frame_id
