"""JSON for every file and stream this package writes: plain types, bounded strings, strict numbers.

``loggable`` turns a value into plain JSON types with every string cut to a bound (head and tail
kept) and every non-finite float replaced by null, and says what it changed, path by path.
``json_line`` writes one strict JSON document on one line that every line reader splits the same
way: the separators that ``str.splitlines`` honours besides ``\\n`` (U+0085, U+2028, U+2029) and
lone surrogates, which cannot be written as UTF-8, are written as ``\\uXXXX`` escapes.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

#: Longest string written to a session log or echoed by the CLI; longer ones keep head and tail.
TEXT_MAX_CHARS = 65_536
#: The key under which a logged record lists what ``loggable`` changed in it.
CHANGES_KEY = "sanitized"
_ESCAPED = re.compile("[\u0085\u2028\u2029\ud800-\udfff]")


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: dataclasses, enums, paths and numpy values converted; bytes summarised."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = (f.name for f in dataclasses.fields(value) if not f.name.startswith("_"))
        return {name: jsonable(getattr(value, name)) for name in fields}
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def bound_text(text: str, max_chars: int = TEXT_MAX_CHARS) -> str:
    """``text`` itself, or its head and tail around a note of how many characters were left out."""
    if len(text) <= max_chars:
        return text
    note = f"\n[... {len(text) - max_chars} of {len(text)} characters left out ...]\n"
    head = max_chars // 2
    return text[:head] + note + text[len(text) - (max_chars - head):]


def loggable(value: Any, max_chars: int = TEXT_MAX_CHARS) -> tuple[Any, dict[str, str]]:
    """``jsonable(value)`` with strings bounded and non-finite floats as null; also ``{path: what changed}``."""
    changes: dict[str, str] = {}

    def walk(item: Any, path: str) -> Any:
        if isinstance(item, dict):
            return {key: walk(inner, f"{path}.{key}" if path else key) for key, inner in item.items()}
        if isinstance(item, list):
            return [walk(inner, f"{path}[{index}]") for index, inner in enumerate(item)]
        if isinstance(item, float) and not math.isfinite(item):
            changes[path] = f"{item} written as null (not a JSON number)"
            return None
        if isinstance(item, str) and len(item) > max_chars:
            changes[path] = f"{len(item)} characters cut to {max_chars}"
            return bound_text(item, max_chars)
        return item

    return walk(jsonable(value), ""), changes


def _escape(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(value: Any, *, ensure_ascii: bool = False, **options: Any) -> str:
    """Strict JSON of plain-typed ``value`` (no NaN/Infinity) whose only line breaks are JSON's own."""
    return _ESCAPED.sub(_escape, json.dumps(value, allow_nan=False, ensure_ascii=ensure_ascii, **options))


def json_line(value: Any) -> str:
    """``value`` (plain JSON types) as one strict JSON line, without the newline."""
    return json_text(value, separators=(",", ":"))


def loggable_record(value: Any, max_chars: int = TEXT_MAX_CHARS) -> Any:
    """``loggable(value)``; a mapping gains ``CHANGES_KEY`` (path -> what changed) when anything was changed."""
    plain, changes = loggable(value, max_chars)
    if changes and isinstance(plain, dict):
        plain[CHANGES_KEY] = changes
    return plain
