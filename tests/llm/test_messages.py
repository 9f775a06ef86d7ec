"""Message builders and readers round-trip text and images."""

from __future__ import annotations

import numpy as np
import pytest

from spatialclaw_ros.imaging import decode_png, encode_png
from spatialclaw_ros.llm.messages import (assistant_message, content_parts, encoded_image_part, image_part,
                                          image_urls, message_text, png_of_url, system_message, text_part,
                                          user_message)


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
    decoded = decode_png(png_of_url(part["image_url"]["url"]))
    assert decoded.shape == (20, 100, 3)
    assert image_part(encode_png(image)) == encoded_image_part(image)


def test_image_part_refuses_non_png():
    with pytest.raises(ValueError, match="expects PNG bytes"):
        image_part(b"\xff\xd8\xff\xe0 jpeg")
    with pytest.raises(ValueError, match="not a PNG data URL"):
        png_of_url("https://example.com/a.png")


def test_readers_collect_text_and_images():
    png = encode_png(np.full((4, 4), 128, dtype=np.uint8))
    messages = [system_message("sys"),
                user_message([text_part("look"), image_part(png), text_part("here")]),
                {"role": "assistant", "content": None}]
    assert [message_text(m) for m in messages] == ["sys", "look\nhere", ""]
    assert content_parts(messages[2]) == []
    assert [png_of_url(url) for url in image_urls(messages)] == [png]
