"""Wire format between the parent and a kernel worker: one JSON header plus binary attachments.

Each message is a single ``send_bytes`` frame: a 4-byte big-endian header length, the UTF-8 JSON
header, then the attachments back to back. Arrays travel as raw bytes with dtype and shape in the
header. Nothing is ever pickled: the parent decodes what the untrusted worker sends with
``json.loads`` and ``np.frombuffer`` only, after checking every size and dtype.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import numpy as np

#: Largest frame either side accepts (a batch of full-resolution frames for a vlm call fits).
MAX_MESSAGE_BYTES = 512 * 1024 * 1024
#: Array element kinds that may cross the channel: bool, signed/unsigned int, float, complex.
ARRAY_KINDS = frozenset("biufc")

_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """A frame that does not follow the wire format (the sender is broken or hostile)."""


@dataclass
class Message:
    """A decoded frame: ``header["type"]`` names it; arrays and raw blobs are kept apart."""

    header: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.header["type"]


def encode(header: dict, arrays: dict[str, np.ndarray] | None = None,
           blobs: dict[str, bytes] | None = None) -> bytes:
    """Serialise one message; ``header`` must be JSON-safe and must not use the key ``_parts``."""
    parts: list[dict] = []
    chunks: list[bytes] = []
    for name, array in (arrays or {}).items():
        array = np.ascontiguousarray(array)
        if array.dtype.kind not in ARRAY_KINDS:
            raise TypeError(f"array '{name}' has dtype {array.dtype}; only bool/int/float/complex arrays can be sent")
        data = array.tobytes()
        parts.append({"name": name, "kind": "array", "dtype": array.dtype.str, "shape": list(array.shape),
                      "nbytes": len(data)})
        chunks.append(data)
    for name, data in (blobs or {}).items():
        data = bytes(data)
        parts.append({"name": name, "kind": "blob", "nbytes": len(data)})
        chunks.append(data)
    head = json.dumps({**header, "_parts": parts}, separators=(",", ":")).encode()
    return b"".join([_LENGTH.pack(len(head)), head, *chunks])


def decode(frame: bytes) -> Message:
    """Parse and validate one frame; raises ProtocolError on anything malformed."""
    try:
        (head_len,) = _LENGTH.unpack_from(frame, 0)
        header = json.loads(frame[_LENGTH.size:_LENGTH.size + head_len])
    except (struct.error, ValueError) as exc:
        raise ProtocolError(f"unreadable message header: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise ProtocolError("message header must be an object with a string 'type'")
    parts = header.pop("_parts", [])
    if not isinstance(parts, list):
        raise ProtocolError("message '_parts' must be a list")
    message = Message(header=header)
    offset = _LENGTH.size + head_len
    for part in parts:
        name, data, offset = _take(frame, part, offset)
        if part.get("kind") == "array":
            message.arrays[name] = _to_array(name, part, data)
        elif part.get("kind") == "blob":
            message.blobs[name] = data
        else:
            raise ProtocolError(f"attachment '{name}' has unknown kind {part.get('kind')!r}")
    if offset != len(frame):
        raise ProtocolError(f"message has {len(frame) - offset} trailing bytes")
    return message


def _take(frame: bytes, part: object, offset: int) -> tuple[str, bytes, int]:
    """Cut one attachment out of ``frame`` after checking its declared size."""
    if not isinstance(part, dict) or not isinstance(part.get("name"), str):
        raise ProtocolError("attachment descriptor must be an object with a string 'name'")
    nbytes = part.get("nbytes")
    if not isinstance(nbytes, int) or nbytes < 0 or offset + nbytes > len(frame):
        raise ProtocolError(f"attachment '{part['name']}' declares {nbytes!r} bytes, which the frame does not hold")
    return part["name"], frame[offset:offset + nbytes], offset + nbytes


def _to_array(name: str, part: dict, data: bytes) -> np.ndarray:
    """Rebuild an array from raw bytes; only plain numeric dtypes are accepted."""
    try:
        dtype = np.dtype(part["dtype"])
        shape = tuple(int(n) for n in part["shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"array '{name}' has a bad dtype or shape: {exc}") from None
    if dtype.kind not in ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise ProtocolError(f"array '{name}' has disallowed dtype {dtype}")
    if any(n < 0 for n in shape) or math.prod(shape) * dtype.itemsize != len(data):
        raise ProtocolError(f"array '{name}' shape {shape} x {dtype} does not match its {len(data)} bytes")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def send(conn: Connection, header: dict, arrays: dict[str, np.ndarray] | None = None,
         blobs: dict[str, bytes] | None = None) -> None:
    """Encode and send one message as a single frame."""
    conn.send_bytes(encode(header, arrays, blobs))


def receive(conn: Connection) -> Message:
    """Block for one frame and decode it; EOFError when the other side has gone."""
    try:
        frame = conn.recv_bytes(MAX_MESSAGE_BYTES)
    except OSError as exc:
        if "bad message length" in str(exc):
            raise ProtocolError(f"message larger than {MAX_MESSAGE_BYTES} bytes") from None
        raise
    return decode(frame)
