"""Shared fixtures of the evaluation tests: a configuration for a scripted endpoint and a small image benchmark."""

import dataclasses

import pytest

from eval_support import write_image, write_jsonl
from spatialclaw_ros.config import load_config

QUESTIONS = {
    "q-choice": ("Which is closer to the camera? A. chair B. table", "B", "relation"),
    "q-distance": ("How far is the chair from the table, in metres?", 2.0, "distance"),
    "q-size": ("How long is the sofa, in centimeters?", 180, "size"),
    "q-count": ("How many chairs are there?", 4, "count"),
}


@pytest.fixture
def config():
    """Defaults without planning or retries, small kernels; point ``model.base_url`` at a scripted server."""
    return load_config(env={}, overrides={"agent": {"plan": False, "cell_timeout_s": 20.0},
                                          "model": {"max_retries": 0}, "kernel": {"memory_limit_mb": 2048}})


def at(config, url):
    return dataclasses.replace(config, model=dataclasses.replace(config.model, base_url=url))


@pytest.fixture
def bench(tmp_path):
    """A JSONL benchmark of QUESTIONS on one image each, and the scripted replies that answer them right."""
    image = write_image(tmp_path / "frame.png")
    rows = [{"id": key, "question": q, "answer": a, "images": [image], "question_type": t}
            for key, (q, a, t) in QUESTIONS.items()]
    return write_jsonl(tmp_path / "bench.jsonl", rows)


@pytest.fixture
def replies():
    """Question text -> the value a right answer returns (a bare number is in the unit the question names)."""
    return {"Which is closer": "B", "How far is the chair": 2.0, "How long is the sofa": 180, "How many chairs": 4}
