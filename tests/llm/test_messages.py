"""Message builders and readers round-trip text and images (PNG and JPEG)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spatialclaw_ros.imaging import decode_png, encode_jpeg, encode_png
from spatialclaw_ros.llm.messages import (assistant_message, content_parts, encoded_image_part, image_of_url,
                                          image_part, image_urls, json_bytes, message_text, system_message,
                                          text_part, user_message)


def test_builders_make_openai_shapes():
    assert text_part("hi") == {"type": "text", "text": "hi"}
    assert system_message("rules") == {"role": "system", "content": "rules"}
    assert assistant_message("ok") == {"role": "assistant", "content": "ok"}
    assert user_message("plain") == {"role": "user", "content": "plain"}
    assert user_message((text_part("a"),)) == {"role": "user", "content": [{"type": "text", "text": "a"}]}


def test_image_part_round_trips_png_and_caps_size():
    image = np.zeros((40, 200, 3), dtype=np.uint8)
    image[:, 100:] = 255
    part = encoded_image_part(image, max_side=100)
    assert part["image_url"]["url"].startswith("data:image/png;base64,")
    decoded = decode_png(image_of_url(part["image_url"]["url"]))
    assert decoded.shape == (20, 100, 3)
    assert image_part(encode_png(image)) == encoded_image_part(image)


def test_image_part_carries_jpeg_with_its_type():
    jpeg = encode_jpeg(np.full((16, 24, 3), 90, np.uint8), quality=80)
    url = image_part(jpeg)["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    assert image_of_url(url) == jpeg


def test_image_part_refuses_other_bytes():
    with pytest.raises(ValueError, match="not PNG or JPEG bytes"):
        image_part(b"GIF89a....")
    with pytest.raises(ValueError, match="not a PNG or JPEG data URL"):
        image_of_url("https://example.com/a.png")


def test_readers_collect_text_and_images():
    png = encode_png(np.full((4, 4), 128, dtype=np.uint8))
    messages = [system_message("sys"),
                user_message([text_part("look"), image_part(png), text_part("here")]),
                {"role": "assistant", "content": None}]
    assert [message_text(m) for m in messages] == ["sys", "look\nhere", ""]
    assert content_parts(messages[2]) == []
    assert [image_of_url(url) for url in image_urls(messages)] == [png]


def test_json_bytes_is_the_compact_utf8_body_size():
    messages = [user_message([text_part("größe ✓ " * 3)])]
    assert json_bytes(messages) == len(json.dumps(messages, ensure_ascii=False, separators=(",", ":")).encode())
    assert json_bytes(messages) > len(json.dumps(messages, ensure_ascii=False, separators=(",", ":")))  # UTF-8
