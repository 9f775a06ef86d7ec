"""Builders and readers for OpenAI chat message dicts, so nobody hand-writes them twice.

Content is either a plain string or a list of parts: ``{"type": "text", ...}`` and
``{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}}`` (PNG or JPEG inline).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Iterable, Sequence

from ..imaging import encode_png, image_mime

DATA_URL = re.compile(r"data:(image/(?:png|jpeg));base64,")
#: Lone surrogates: a Python str may hold them (a cell can print one), UTF-8 (a request body) cannot.
_SURROGATE = re.compile("[\ud800-\udfff]")


def sendable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so a request carrying it encodes as UTF-8; every
    builder below applies it once, when the message is made (not on each call that resends it)."""
    return _SURROGATE.sub("\ufffd", text)


def text_part(text: str) -> dict:
    """A text content part."""
    return {"type": "text", "text": sendable(text)}


def image_part(data: bytes) -> dict:
    """An image content part carrying PNG or JPEG ``data`` inline as a base64 data URL."""
    url = f"data:{image_mime(data)};base64," + base64.b64encode(data).decode("ascii")
    return {"type": "image_url", "image_url": {"url": url}}


def encoded_image_part(image, max_side: int | None = None) -> dict:
    """An image part from a PIL image or array, PNG-encoded with the long side capped at ``max_side``."""
    return image_part(encode_png(image, max_side=max_side))


def system_message(text: str) -> dict:
    """A system message."""
    return {"role": "system", "content": sendable(text)}


def user_message(parts: str | Sequence[dict]) -> dict:
    """A user message from a string or a sequence of content parts."""
    return {"role": "user", "content": sendable(parts) if isinstance(parts, str) else list(parts)}


def assistant_message(text: str) -> dict:
    """An assistant message (a previous model reply replayed in the history)."""
    return {"role": "assistant", "content": sendable(text)}


def tool_message(call_id: str, text: str) -> dict:
    """A tool message: the result of the function call ``call_id``."""
    return {"role": "tool", "tool_call_id": call_id, "content": sendable(text)}


def content_parts(message: dict) -> list[dict]:
    """The content of ``message`` as a list of parts (a plain string becomes one text part)."""
    content = message.get("content")
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    return [part for part in content if isinstance(part, dict)]


def message_text(message: dict) -> str:
    """All text parts of ``message`` joined by newlines."""
    return "\n".join(part.get("text", "") for part in content_parts(message) if part.get("type") == "text")


def image_urls(messages: Iterable[dict]) -> list[str]:
    """The URLs of every image part in ``messages``, in order."""
    return [
        part["image_url"]["url"]
        for message in messages
        for part in content_parts(message)
        if part.get("type") == "image_url"
    ]


def image_of_url(url: str) -> bytes:
    """The PNG or JPEG bytes inside a data URL made by ``image_part``."""
    prefix = DATA_URL.match(url)
    if prefix is None:
        raise ValueError(f"not a PNG or JPEG data URL: {url[:40]!r}")
    return base64.b64decode(url[prefix.end():])


def json_bytes(value) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON, the way an HTTP client sends a request body (a lone surrogate,
    sent as U+FFFD, counts its 3 bytes too)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))
