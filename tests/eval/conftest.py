"""Shared fixtures of the evaluation tests: a configuration for a scripted endpoint and a small image benchmark."""

import pytest

from eval_support import QUESTIONS, write_image, write_jsonl
from spatialclaw_ros.config import load_config


@pytest.fixture
def config():
    """Defaults without planning or retries, small kernels; point ``model.base_url`` at a scripted server."""
    return load_config(env={}, overrides={"agent": {"plan": False, "cell_timeout_s": 20.0},
                                          "model": {"max_retries": 0}, "kernel": {"memory_limit_mb": 2048}})


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
