"""The wire format: round trips, and refusal of malformed or dangerous frames (never unpickled)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from spatialclaw_ros.kernel import protocol


def _frame(header: dict, body: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return struct.pack(">I", len(head)) + head + body


def test_round_trip_keeps_header_arrays_and_blobs():
    depth = np.arange(12, dtype=np.float32).reshape(3, 4)
    mask = np.array([[True, False]])
    frame = protocol.encode({"type": "host_request", "id": 7, "payload": {"q": "cup"}},
                            arrays={"depth": depth, "mask": mask}, blobs={"png": b"\x89PNG-bytes"})
    message = protocol.decode(frame)
    assert message.type == "host_request"
    assert message.header == {"type": "host_request", "id": 7, "payload": {"q": "cup"}}
    np.testing.assert_array_equal(message.arrays["depth"], depth)
    assert message.arrays["depth"].dtype == np.float32
    np.testing.assert_array_equal(message.arrays["mask"], mask)
    assert message.blobs == {"png": b"\x89PNG-bytes"}
    message.arrays["depth"][0, 0] = 99.0  # decoded arrays are writable copies


def test_encode_refuses_object_arrays():
    with pytest.raises(TypeError, match="only bool/int/float/complex"):
        protocol.encode({"type": "x"}, arrays={"bad": np.array([{"a": 1}], dtype=object)})


@pytest.mark.parametrize("frame, reason", [
    (b"\x00\x00", "unreadable"),
    (_frame({"no_type": 1}), "string 'type'"),
    (_frame({"type": "x", "_parts": [{"name": "a", "kind": "array", "dtype": "|O", "shape": [1], "nbytes": 8}]},
            b"\x00" * 8), "disallowed dtype"),
    (_frame({"type": "x", "_parts": [{"name": "a", "kind": "array", "dtype": "<f4", "shape": [3], "nbytes": 8}]},
            b"\x00" * 8), "does not match"),
    (_frame({"type": "x", "_parts": [{"name": "a", "kind": "blob", "nbytes": 100}]}, b"\x00" * 8), "does not hold"),
    (_frame({"type": "x", "_parts": [{"name": "a", "kind": "pickle", "nbytes": 1}]}, b"\x80"), "unknown kind"),
    (_frame({"type": "x"}, b"extra"), "trailing"),
])
def test_decode_refuses_malformed_frames(frame, reason):
    with pytest.raises(protocol.ProtocolError, match=reason):
        protocol.decode(frame)
