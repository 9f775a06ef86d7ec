"""Reading the model's replies: strip thinking, take exactly one python cell, or a final ANSWER line."""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
PYTHON_FENCE_LANGUAGES = {"", "python", "py", "python3"}
_ANSWER_LINE = re.compile(r"^ANSWER\s*:\s*(.+)$", re.IGNORECASE)
_SOURCE_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # Python source's own; U+2028 and friends stay inside a line


@dataclass
class ParsedReply:
    """A main-conversation reply split into its prose and its one code cell.

    ``problem`` is empty when the reply is well formed; otherwise it says what was wrong and
    ``code`` is None.
    """

    reasoning: str
    code: str | None
    problem: str = ""


def strip_thinking(text: str) -> str:
    """Remove ``<think>...</think>`` blocks, a trailing unclosed ``<think>`` and text before a stray ``</think>``."""
    while True:
        start = text.find(THINK_OPEN)
        if start < 0:
            break
        end = text.find(THINK_CLOSE, start)
        if end < 0:
            text = text[:start]
            break
        text = text[:start] + text[end + len(THINK_CLOSE):]
    stray = text.rfind(THINK_CLOSE)
    if stray >= 0:
        text = text[stray + len(THINK_CLOSE):]
    return text.strip()


def source_lines(text: str) -> list[str]:
    """``text`` split where Python source breaks lines (``\\n``, ``\\r\\n``, ``\\r``), unlike ``str.splitlines``,
    which also splits at U+2028, U+0085 and other characters a string literal may hold."""
    return _SOURCE_LINE_BREAK.split(text)


def _fence_language(line: str) -> str | None:
    """The language tag of a fence line (``""`` for a bare fence), or None when it is not a fence."""
    stripped = line.strip()
    if not stripped.startswith("```"):
        return None
    return stripped[3:].strip().lower()


def parse_reply(text: str) -> ParsedReply:
    """Split a reply into reasoning and exactly one fenced python cell.

    Bare fences and ``python``/``py`` fences are cells; fences in other languages are prose. A
    missing closing fence at the end of the reply is tolerated.
    """
    lines = source_lines(strip_thinking(text))
    cells: list[str] = []
    prose: list[str] = []
    index = 0
    while index < len(lines):
        language = _fence_language(lines[index])
        if language is None:
            prose.append(lines[index])
            index += 1
            continue
        body_start = index + 1
        end = body_start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = "\n".join(lines[body_start:end])
        if language in PYTHON_FENCE_LANGUAGES:
            cells.append(body)
        else:
            prose.extend(lines[index:end + 1])
        index = end + 1
    reasoning = "\n".join(prose).strip()
    if not cells:
        return ParsedReply(reasoning, None, "the reply contains no ```python code cell")
    if len(cells) > 1:
        return ParsedReply(reasoning, None, f"the reply contains {len(cells)} code cells; exactly one is run per step")
    code = cells[0].strip("\n")
    if not code.strip():
        return ParsedReply(reasoning, None, "the ```python code cell is empty")
    return ParsedReply(reasoning, code)


def parse_final_answer(text: str) -> str | None:
    """The value after the last ``ANSWER:`` line of a reply (thinking removed), or None when there is none."""
    found = None
    for line in source_lines(strip_thinking(text)):
        match = _ANSWER_LINE.match(line.replace("*", "").replace("`", "").strip())
        if match:
            found = match.group(1).strip()
    return found or None
