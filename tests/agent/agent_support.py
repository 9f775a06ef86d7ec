"""Helpers for agent tests: scripted main replies and a test configuration."""

import dataclasses

from spatialclaw_ros.config import AgentConfig, Config, ContextBudget, ModelConfig


def cell(code: str, reasoning: str = "Next step.") -> str:
    """A well-formed main reply: ``reasoning`` then one python cell running ``code``."""
    return f"{reasoning}\n```python\n{code}\n```"


def make_config(tmp_path, url, **agent):
    """A Config for ``url`` without planning, sessions under ``tmp_path``; ``agent`` overrides AgentConfig fields
    (``kernel=`` replaces the KernelConfig)."""
    kernel = agent.pop("kernel", None)
    context = agent.pop("context", ContextBudget())
    config = Config(model=ModelConfig(base_url=url, max_retries=0),
                    agent=dataclasses.replace(AgentConfig(plan=False, sessions_dir=str(tmp_path / "sessions"),
                                                          cell_timeout_s=20.0, context=context), **agent))
    return dataclasses.replace(config, kernel=kernel) if kernel else config
