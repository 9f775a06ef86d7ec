"""Shared parts of the evaluation tests: small image rows and a scripted model that plays each interface."""

import dataclasses
import json
from pathlib import Path

import numpy as np
from PIL import Image

from spatialclaw_ros.evaluation.interfaces import NO_TOOL_ROLE, SINGLE_PASS_ROLE
from spatialclaw_ros.llm.scripted_server import ScriptedRequest, Turn

#: The small image benchmark of the tests: id -> (question, right answer, category).
QUESTIONS = {
    "q-choice": ("Which is closer to the camera? A. chair B. table", "B", "relation"),
    "q-distance": ("How far is the chair from the table, in metres?", 2.0, "distance"),
    "q-size": ("How long is the sofa, in centimeters?", 180, "size"),
    "q-count": ("How many chairs are there?", 4, "count"),
}


def at(config, url):
    """``config`` with the model endpoint at ``url``."""
    return dataclasses.replace(config, model=dataclasses.replace(config.model, base_url=url))


def write_image(path: Path, colour=(120, 80, 40)) -> str:
    Image.fromarray(np.full((32, 40, 3), colour, np.uint8)).save(path)
    return path.name


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def cell(code: str) -> str:
    return f"Computing.\n```python\n{code}\n```"


def interface_of(request: ScriptedRequest) -> str:
    """Which interface sent a main request, from what it carries."""
    system = request.messages[0]["content"] if request.messages else ""
    if request.tools:
        return "tool-call"
    if SINGLE_PASS_ROLE.splitlines()[0] in system:
        return "single-pass"
    if NO_TOOL_ROLE.splitlines()[0] in system:
        return "no-tool"
    return "code"


def oracle(replies: dict[str, object], *, wrong: set[str] = frozenset()):
    """A scripted model answering each question (found by its text in the request) with ``replies[question]``,
    through whichever interface asks; questions in ``wrong`` get answer "A" / 0.5 instead."""

    def decide(request: ScriptedRequest) -> Turn:
        text = request.text()
        question = next(q for q in replies if q in text)
        value = replies[question]
        if question in wrong:
            value = "A" if isinstance(value, str) else 0.5
        interface = interface_of(request)
        if interface == "no-tool":
            return Turn(text=f"Looking at the frames.\nANSWER: {value}")
        if interface == "tool-call":
            return Turn(tool_calls=({"name": "ReturnAnswer", "arguments": {"answer": value}},))
        return Turn(text=cell(f"ReturnAnswer({value!r})"))

    return decide
