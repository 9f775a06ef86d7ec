"""Configuration: typed dataclasses loaded from a YAML file, then the environment.

Precedence (later wins): defaults, the YAML file, environment variables
(``SPATIALCLAW_BASE_URL``, ``SPATIALCLAW_MODEL``, ``SPATIALCLAW_API_KEY``, falling back to
``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class RoleConfig:
    """Sampling settings for one conversation role."""

    model: str = ""  # empty: the endpoint's default model (ModelConfig.model)
    temperature: float = 0.2
    max_tokens: int = 2048
    timeout_s: float = 120.0


@dataclass
class ModelConfig:
    base_url: str = "http://localhost:8000/v1"
    model: str = ""
    api_key: str = field(default="", repr=False)
    max_retries: int = 3  # on 429, 5xx and connection errors, with exponential backoff
    stream: bool = False
    main: RoleConfig = field(default_factory=RoleConfig)
    planner: RoleConfig = field(default_factory=lambda: RoleConfig(max_tokens=1024))
    vlm: RoleConfig = field(default_factory=lambda: RoleConfig(temperature=0.0, max_tokens=1024))


@dataclass
class ContextBudget:
    """What the history sent to the model may hold; older material is shrunk first."""

    max_tokens: int = 48000  # estimated prompt tokens per main call
    max_images: int = 24  # images per main call, key frames included
    thumbnail_px: int = 256  # long side of an older image once thumbnailed
    keep_recent_steps: int = 4  # steps whose outputs and images are kept in full


@dataclass
class AgentConfig:
    max_steps: int = 30
    max_key_frames: int = 32
    deadline_s: float = 900.0  # wall clock per question
    cell_timeout_s: float = 120.0
    output_budget_chars: int = 4000  # stdout+stderr per observation, head and tail kept
    image_max_side: int = 1024
    plan: bool = True
    sessions_dir: str = "spatialclaw_sessions"
    context: ContextBudget = field(default_factory=ContextBudget)


@dataclass
class KernelConfig:
    pool_size: int = 1  # warm kernel processes kept ready
    memory_limit_mb: int = 8192  # RLIMIT_AS of a kernel process
    cpu_limit_s: int = 1800  # RLIMIT_CPU of a kernel process (one question)
    file_size_limit_mb: int = 256  # RLIMIT_FSIZE: largest file a cell may write in its scratch dir
    interrupt_grace_s: float = 1.0  # after SIGINT at a timeout, wait this long before a hard kill
    restore_after_restart: bool = True  # re-run earlier successful cells after a restart
    static_check: bool = True  # only tests turn this off, to exercise the OS layer alone
    os_sandbox: bool = True


@dataclass
class DA3Config:
    """Depth Anything 3 (``perception.reconstruction: da3``); it runs in the parent process, not the kernel."""

    model_dir: str = ""  # a save_pretrained directory (see models/README.md); required
    process_res: int = 504  # the model's input resolution (long side)
    device: str = "cpu"  # "cuda" where torch has a GPU


@dataclass
class DA3OnnxConfig:
    """Depth Anything 3 from an ONNX export (``perception.reconstruction: da3-onnx``); it runs in the parent process."""

    onnx_path: str = ""  # a FILE.onnx from models/export_da3_onnx.py (FILE.onnx.data, FILE.json beside it); required
    providers: str = ""  # comma-separated onnxruntime providers, first preferred; empty: CUDA where available, then CPU


@dataclass
class SAM3Config:
    """SAM 3 (``perception.segmentation: sam3``); it runs in the parent process, not the kernel."""

    checkpoint: str = ""  # the official sam3.pt (see models/README.md); required
    bpe_path: str = ""  # the tokenizer's bpe_simple_vocab_16e6.txt.gz; empty: open_clip_torch's copy
    device: str = "cpu"  # "cuda" where torch has a GPU
    cache_mb: int = 2048  # encoder outputs kept: about 370 MB per image (fp32), under 1 MB per phrase


@dataclass
class PerceptionConfig:
    """Which backends the kernel's tools.Reconstruct and tools.SAM3 use (Metadata.perception says so too)."""

    reconstruction: str = "sensor"  # sensor: measured depth + CameraInfo + TF | da3: Depth Anything 3 | da3-onnx
    segmentation: str = "classical"  # classical: weight-free GrabCut refined with depth | sam3: SAM 3
    da3: DA3Config = field(default_factory=DA3Config)
    da3_onnx: DA3OnnxConfig = field(default_factory=DA3OnnxConfig)
    sam3: SAM3Config = field(default_factory=SAM3Config)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    kernel: KernelConfig = field(default_factory=KernelConfig)
    perception: PerceptionConfig = field(default_factory=PerceptionConfig)


def _merge(obj: Any, values: dict, where: str) -> Any:
    """Return a copy of dataclass ``obj`` with ``values`` applied; unknown keys are an error."""
    if not isinstance(values, dict):
        raise ValueError(f"config section '{where}' must be a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(obj)}
    updates = {}
    for key, value in values.items():
        if key not in known:
            raise ValueError(f"unknown config key '{where}.{key}' (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            updates[key] = _merge(current, value or {}, f"{where}.{key}")
        else:
            expected = type(current)
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, expected):
                raise ValueError(f"config key '{where}.{key}' must be {expected.__name__}, got {value!r}")
            updates[key] = value
    return dataclasses.replace(obj, **updates)


def load_config(path: str | os.PathLike | None = None, env: dict[str, str] | None = None,
                overrides: dict | None = None) -> Config:
    """Load defaults, then ``path`` (or ``$SPATIALCLAW_CONFIG``), then the environment, then ``overrides``."""
    env = dict(os.environ if env is None else env)
    config = Config()
    path = path or env.get("SPATIALCLAW_CONFIG")
    if path:
        data = yaml.safe_load(Path(path).read_text()) or {}
        config = _merge(config, data, "config")
    model = config.model
    model = dataclasses.replace(
        model,
        base_url=env.get("SPATIALCLAW_BASE_URL") or env.get("OPENAI_BASE_URL") or model.base_url,
        model=env.get("SPATIALCLAW_MODEL") or model.model,
        api_key=env.get("SPATIALCLAW_API_KEY") or env.get("OPENAI_API_KEY") or model.api_key,
    )
    config = dataclasses.replace(config, model=model)
    if overrides:
        config = _merge(config, overrides, "config")
    return config
