"""Shared parts for the agent tests: small frames and an Agent (on the shared kernel pool) against a scripted server."""

import dataclasses

import numpy as np
import pytest

from agent_support import make_config
from spatialclaw_ros.agent import Agent
from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.llm.client import ChatModel


@pytest.fixture
def frames():
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    return FrameSet([Frame(index=10 * i, rgb=np.full((48, 64, 3), colour, np.uint8), stamp=0.5 * i, camera="front")
                     for i, colour in enumerate(colours)])


@pytest.fixture
def make_agent(tmp_path, pool):
    """``make_agent(server_url, **agent_config_overrides)`` -> Agent sharing the session's kernel pool."""
    agents = []

    def build(url, model_config=None, **agent):
        config = make_config(tmp_path, url, **agent)
        if model_config is not None:
            config = dataclasses.replace(config, model=model_config)
        created = Agent(config, model=ChatModel(config.model), pool=pool)
        agents.append(created)
        return created

    yield build
    for created in agents:
        created.model.close()  # the agent does not own the model or pool it was given
