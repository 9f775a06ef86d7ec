"""Configuration: every setting declared once, as typed dataclass fields with a description and the values
they accept; the CLI's YAML file and the ROS node's parameters both come from these declarations.

Precedence (later wins): defaults, the YAML file, environment variables
(``SPATIALCLAW_BASE_URL``, ``SPATIALCLAW_MODEL``, ``SPATIALCLAW_API_KEY``, falling back to
``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Setting:
    """What a declared setting means and accepts: an inclusive numeric range, a set of choices, and whether a
    running node may change it (``read_only``)."""

    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False

    def check(self, name: str, value: Any) -> None:
        """ValueError naming ``name`` when ``value`` is non-finite, out of range or not a choice (for a list
        setting: when one of its items is not a choice)."""
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"config key '{name}' must be finite, got {value}")
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            raise ValueError(f"config key '{name}' = {value} is outside [{self.low}, {self.high}]")
        for item in value if isinstance(value, tuple) else (value,):
            if self.choices and item not in self.choices:
                raise ValueError(f"config key '{name}': {item!r} is not one of {', '.join(self.choices)}")


def setting(default: Any, description: str, *, low: float | None = None, high: float | None = None,
            choices: tuple[str, ...] = (), read_only: bool = False) -> Any:
    """Declare a setting of a config section: its default (whose type is the setting's type; a tuple is a list of
    strings) and its Setting."""
    return field(default=default, metadata={"setting": Setting(description, low, high, tuple(choices), read_only)})


def section(factory, description: str) -> Any:
    """Declare a nested section (a dataclass of settings) with what it groups."""
    return field(default_factory=factory, metadata={"section": description})


@dataclass
class RoleConfig:
    """Sampling settings for one conversation role."""

    model: str = setting("", "model name for this role; empty = model.model (or the endpoint's first model)")
    temperature: float = setting(0.2, "sampling temperature", low=0.0, high=2.0)
    max_tokens: int = setting(2048, "longest reply, in tokens", low=1, high=1_000_000)
    timeout_s: float = setting(120.0, "limit for one request, in seconds (timeouts are not retried)", low=0.1,
                               high=86400.0)


@dataclass
class ModelConfig:
    """The OpenAI-compatible endpoint and its three conversations."""

    base_url: str = setting("http://localhost:8000/v1", "OpenAI-compatible endpoint (vLLM, Ollama, NIM, OpenAI)")
    model: str = setting("", "model name; empty = the first model the endpoint lists")
    api_key: str = field(default="", repr=False)  # from the environment only: never a YAML key or ROS parameter
    max_retries: int = setting(3, "retries on 429, 5xx and connection errors, with exponential backoff", low=0,
                               high=20)
    stream: bool = setting(False, "stream replies (server-sent events)")
    main: RoleConfig = section(RoleConfig, "the code-writing conversation")
    planner: RoleConfig = section(lambda: RoleConfig(max_tokens=1024), "the text-only plan")
    vlm: RoleConfig = section(lambda: RoleConfig(temperature=0.0, max_tokens=1024),
                              "vlm.locate / vlm.ask_with_thinking")


@dataclass
class ContextBudget:
    """What the history sent to the model may hold; older material is shrunk first."""

    max_tokens: int = setting(48000, "estimated prompt tokens per main call (text chars/4 + per-image estimate)",
                              low=1000, high=10_000_000)
    max_images: int = setting(24, "images per main call, key frames included", low=1, high=1000)
    thumbnail_px: int = setting(256, "long side of an older image once thumbnailed (then dropped with a note)",
                                low=16, high=4096)
    keep_recent_steps: int = setting(4, "newest steps whose outputs and images are kept whole", low=0, high=1000)
    compact_to: float = setting(0.6, "once over budget, older material shrinks until the estimate is at most this "
                                     "share of max_tokens (and of max_images), so the calls after it share their "
                                     "prefix again", low=0.1, high=1.0)


VISION_ENCODERS = ("auto", "qwen2.5-vl", "qwen3-vl", "gemma3")


@dataclass
class ImageSettings:
    """How key frames and shown images travel to the model, and what each costs it in tokens."""

    format: str = setting("jpeg", "jpeg: compact, lossy at jpeg_quality | png: lossless, about 6x the bytes",
                          choices=("jpeg", "png"))
    jpeg_quality: int = setting(85, "JPEG quality (higher: more bytes, closer to the camera's pixels)", low=1,
                                high=100)
    encoder: str = setting("auto", "the model's vision encoder, whose input size images are sent at and whose "
                                   "token count is estimated: auto (from the main model's name; unknown names "
                                   "count like qwen2.5-vl) | qwen2.5-vl | qwen3-vl | gemma3", choices=VISION_ENCODERS)
    token_px: int = setting(0, "side of the pixel square one image token covers; 0 = the encoder's (28 "
                               "qwen2.5-vl, 32 qwen3-vl, 56 gemma3)", low=0, high=4096)
    min_pixels: int = setting(0, "smallest image the encoder computes on, in pixels (smaller ones it upsamples); "
                                 "0 = the encoder's (3136 qwen2.5-vl, 65536 qwen3-vl)", low=0, high=1 << 30)
    max_pixels: int = setting(0, "largest image the encoder computes on, in pixels (larger ones are sent "
                                 "downscaled to it; a server's own max_pixels goes here); 0 = the encoder's "
                                 "(12845056 qwen2.5-vl, 16777216 qwen3-vl, 896x896 gemma3)", low=0, high=1 << 30)


@dataclass
class VlmLimits:
    """Bounds on the cells' vlm.locate / vlm.ask_with_thinking calls, enforced by the parent: beyond them a call is
    refused with a RuntimeError in the cell that names the limit and what to do."""

    calls_per_question: int = setting(100, "vlm calls one question may make", low=1, high=1_000_000)
    calls_per_cell: int = setting(30, "vlm calls one cell may make", low=1, high=1_000_000)
    question_chars: int = setting(4000, "longest question text of one vlm call, in characters", low=10,
                                  high=10_000_000)
    images_per_call: int = setting(64, "images one vlm call may carry", low=1, high=10_000)
    image_side_px: int = setting(4096, "longest side of an image a vlm call may carry, in pixels (what is sent "
                                       "to the model is reduced to agent.image_max_side)", low=16, high=100_000)


@dataclass
class AgentConfig:
    """The question loop: steps, deadlines, observations and where sessions are logged."""

    max_steps: int = setting(30, "most reasoning steps (cells) per question", low=1, high=1000)
    max_key_frames: int = setting(32, "most key frames handed to the model", low=1, high=1000)
    deadline_s: float = setting(900.0, "wall clock per question, in seconds", low=1.0, high=604800.0)
    cell_timeout_s: float = setting(120.0, "limit for one cell, in seconds", low=0.1, high=86400.0)
    output_budget_chars: int = setting(4000, "stdout+stderr per observation (head and tail kept)", low=100,
                                       high=10_000_000)
    image_max_side: int = setting(1024, "long side of images sent to the model, in pixels", low=16, high=8192)
    plan: bool = setting(True, "ask the planner for a text-only plan first")
    sessions_dir: str = setting("spatialclaw_sessions", "directory of the session logs")
    session_max_mb: int = setting(512, "largest size of one session directory, in MB; past it later large items "
                                       "are replaced by a note (the result is always written)", low=4,
                                  high=1_048_576)
    context: ContextBudget = section(ContextBudget, "what one main call may carry")
    vlm: VlmLimits = section(VlmLimits, "bounds on the cells' vlm calls")
    images: ImageSettings = section(ImageSettings, "images sent to the model")


#: The OS sandbox layers of a kernel process (see kernel/launcher.py and kernel/sandbox.py).
SANDBOX_LAYERS = ("pid_namespace", "sandbox_uid", "landlock", "seccomp")


@dataclass
class KernelConfig:
    """The sandboxed kernel processes that run the cells."""

    pool_size: int = setting(1, "warm kernel processes kept ready", low=0, high=64, read_only=True)
    memory_limit_mb: int = setting(8192, "address space of a kernel process (RLIMIT_AS), in MB", low=256,
                                   high=1_048_576, read_only=True)
    cpu_limit_s: int = setting(1800, "CPU time of a kernel process, one question (RLIMIT_CPU), in seconds", low=1,
                               high=604800, read_only=True)
    file_size_limit_mb: int = setting(256, "largest file a cell may write in its scratch dir (RLIMIT_FSIZE), in MB",
                                      low=1, high=1_048_576, read_only=True)
    interrupt_grace_s: float = setting(1.0, "after SIGINT at a timeout, wait this long before a hard kill", low=0.0,
                                       high=600.0, read_only=True)
    restore_after_restart: bool = setting(True, "re-run earlier successful cells after a restart", read_only=True)
    static_check: bool = setting(True, "refuse unsafe cells before they run (tests turn it off to test the OS "
                                       "layer alone)", read_only=True)
    os_sandbox: bool = setting(True, "isolate kernel processes with the OS sandbox layers; a layer that cannot be "
                                     "applied stops the kernel unless it is in optional_layers", read_only=True)
    optional_layers: tuple = setting((), "OS sandbox layers the kernel may start without (weaker sandbox)",
                                     choices=SANDBOX_LAYERS, read_only=True)
    sandbox_uid: int = setting(65534, "uid the kernel processes run as when the parent runs as root (no capabilities)",
                               low=1, high=2**31 - 2, read_only=True)


@dataclass
class DA3Config:
    """Depth Anything 3 (``perception.reconstruction: da3``); it runs in the parent process, not the kernel."""

    model_dir: str = setting("", "a save_pretrained directory (see models/README.md); required for da3",
                             read_only=True)
    process_res: int = setting(504, "the model's input resolution (long side), in pixels", low=14, high=4096,
                               read_only=True)
    device: str = setting("cpu", "torch device: cpu, or cuda where torch has a GPU", read_only=True)


@dataclass
class DA3OnnxConfig:
    """Depth Anything 3 from an ONNX export (``perception.reconstruction: da3-onnx``); it runs in the parent process."""

    onnx_path: str = setting("", "FILE.onnx from models/export_da3_onnx.py (FILE.onnx.data and FILE.json beside "
                                 "it); required for da3-onnx", read_only=True)


@dataclass
class SAM3Config:
    """SAM 3 (``perception.segmentation: sam3``); it runs in the parent process, not the kernel."""

    checkpoint: str = setting("", "the official sam3.pt (see models/README.md); required for sam3", read_only=True)
    bpe_path: str = setting("", "the tokenizer's bpe_simple_vocab_16e6.txt.gz; empty = open_clip_torch's copy",
                            read_only=True)
    device: str = setting("cpu", "torch device: cpu, or cuda where torch has a GPU", read_only=True)
    cache_mb: int = setting(2048, "encoder outputs kept: about 370 MB per image (fp32), under 1 MB per phrase",
                            low=0, high=1_048_576, read_only=True)


@dataclass
class SAM3OnnxConfig:
    """SAM 3 exported in parts (``perception.segmentation: sam3-onnx``); it runs in the parent process."""

    export_dir: str = setting("", "the folder models/export_sam3_onnx.py wrote (four .onnx parts and sam3_onnx.json); "
                                  "required for sam3-onnx", read_only=True)
    bpe_path: str = setting("", "the tokenizer's bpe_simple_vocab_16e6.txt.gz; empty = open_clip_torch's copy",
                            read_only=True)
    cache_mb: int = setting(1024, "encoder outputs kept: about 130 MB per image (fp32), under 1 MB per phrase",
                            low=0, high=1_048_576, read_only=True)


@dataclass
class OnnxRuntimeConfig:
    """How the ONNX backends (da3-onnx, sam3-onnx) run: onnxruntime's providers and TensorRT's engine caches."""

    providers: str = setting("", "comma-separated onnxruntime providers, first preferred; empty = TensorRT, CUDA, "
                                 "CPU: those this onnxruntime has (TensorRT and CUDA only with a GPU)", read_only=True)
    device_id: int = setting(0, "the CUDA device TensorRT and CUDA run on", low=0, high=63, read_only=True)
    trt_fp16: bool = setting(True, "TensorRT builds FP16 engines", read_only=True)
    trt_workspace_mb: int = setting(4096, "TensorRT's builder workspace, in MB", low=64, high=1_048_576,
                                    read_only=True)
    engine_cache_dir: str = setting("", "TensorRT engine and timing caches, a folder per GPU, compute capability, "
                                        "TensorRT version, ONNX file hash and input shapes; empty = "
                                        "$XDG_CACHE_HOME/spatialclaw/engines", read_only=True)


RECONSTRUCTION_BACKENDS = ("sensor", "da3", "da3-onnx")
SEGMENTATION_BACKENDS = ("classical", "sam3", "sam3-onnx")


@dataclass
class PerceptionConfig:
    """Which backends the kernel's tools.Reconstruct and tools.SAM3 use (Metadata.perception says so too)."""

    reconstruction: str = setting("sensor", "sensor: measured depth + CameraInfo + TF | da3: Depth Anything 3 | "
                                            "da3-onnx: its ONNX export", choices=RECONSTRUCTION_BACKENDS,
                                  read_only=True)
    segmentation: str = setting("classical", "classical: weight-free GrabCut refined with depth | sam3: SAM 3 | "
                                             "sam3-onnx: its ONNX export", choices=SEGMENTATION_BACKENDS,
                                read_only=True)
    da3: DA3Config = section(DA3Config, "Depth Anything 3 (torch)")
    da3_onnx: DA3OnnxConfig = section(DA3OnnxConfig, "Depth Anything 3 (onnxruntime)")
    sam3: SAM3Config = section(SAM3Config, "SAM 3 (torch)")
    sam3_onnx: SAM3OnnxConfig = section(SAM3OnnxConfig, "SAM 3 (onnxruntime)")
    onnx: OnnxRuntimeConfig = section(OnnxRuntimeConfig, "onnxruntime providers and TensorRT engines of the ONNX "
                                                         "backends")


@dataclass
class KeyframeConfig:
    """A question's frames are spread evenly in "progress": one unit per ``spacing_s`` of time,
    ``translation_m`` of camera travel or ``rotation_deg`` of camera turn, whichever is largest."""

    spacing_s: float = setting(0.5, "key-frame progress unit in time, in seconds", low=1e-3, high=3600.0)
    translation_m: float = setting(0.5, "key-frame progress unit in camera travel, in metres", low=1e-3, high=100.0)
    rotation_deg: float = setting(20.0, "key-frame progress unit in camera turn, in degrees", low=0.1, high=360.0)


@dataclass
class FramesConfig:
    """How a question's frames are assembled from camera streams, the node's topics and ``ask --bag`` alike."""

    world_frame: str = setting("", "TF frame that poses and answers are in; empty = the root of the first camera's "
                                   "TF tree")
    body_frame: str = setting("base_link", "the robot's body frame (REP 105); its pose at each frame lets tools give "
                                           "directions relative to the robot")
    sync_tolerance_s: float = setting(0.02, "largest stamp difference for pairing a depth image with a colour "
                                            "image, in seconds", low=0.0, high=1.0, read_only=True)
    min_interval_s: float = setting(0.2, "colour frames closer than this to a kept one are dropped before "
                                         "decoding, in seconds", low=0.0, high=60.0, read_only=True)
    keyframes: KeyframeConfig = section(KeyframeConfig, "how key frames spread over time and camera motion")


@dataclass
class Config:
    """Every setting of the core (the ROS node adds its own sections on top)."""

    model: ModelConfig = section(ModelConfig, "the model endpoint")
    agent: AgentConfig = section(AgentConfig, "the question loop")
    kernel: KernelConfig = section(KernelConfig, "the sandboxed kernel")
    perception: PerceptionConfig = section(PerceptionConfig, "perception backends")
    frames: FramesConfig = section(FramesConfig, "how a question's frames are assembled")


@dataclass(frozen=True)
class DeclaredSetting:
    """One setting of a config tree: its dotted name, current value and declaration."""

    name: str
    value: Any
    setting: Setting


def declared_settings(config: Any, prefix: str = "") -> Iterator[DeclaredSetting]:
    """Every declared setting under ``config`` (a config dataclass), depth first, in declaration order."""
    for item in dataclasses.fields(config):
        name = f"{prefix}{item.name}"
        value = getattr(config, item.name)
        if "section" in item.metadata:
            yield from declared_settings(value, name + ".")
        elif "setting" in item.metadata:
            yield DeclaredSetting(name, value, item.metadata["setting"])


def _merge(obj: Any, values: dict, where: str) -> Any:
    """Return a copy of dataclass ``obj`` with ``values`` applied; unknown keys and bad values are errors."""
    if not isinstance(values, dict):
        raise ValueError(f"config section '{where}' must be a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(obj) if "setting" in f.metadata or "section" in f.metadata}
    updates = {}
    for key, value in values.items():
        name = f"{where}.{key}" if where else key
        if key not in known:
            raise ValueError(f"unknown config key '{name}' (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        if "section" in known[key].metadata:
            updates[key] = _merge(current, value or {}, name)
            continue
        expected = type(current)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected is tuple and isinstance(value, list) and all(isinstance(item, str) for item in value):
            value = tuple(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            kind = "a list of strings" if expected is tuple else expected.__name__
            raise ValueError(f"config key '{name}' must be {kind}, got {value!r}")
        known[key].metadata["setting"].check(name, value)
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


def key_frame_limit(agent: AgentConfig) -> int:
    """The most frames a question's prompt shows as key frames (``agent.max_key_frames`` and the context's image
    budget): frame sources choose at most this many, so the agent never thins them again by position."""
    return min(agent.max_key_frames, agent.context.max_images)


def apply_settings(config: Any, values: dict[str, Any]) -> Any:
    """A copy of ``config`` with ``values`` applied, keyed by the dotted names ``declared_settings`` gives (as ROS
    parameters are); ValueError names the first unknown or bad one."""
    nested: dict = {}
    for name, value in values.items():
        *sections, key = name.split(".")
        target = nested
        for part in sections:
            target = target.setdefault(part, {})
        target[key] = value
    return _merge(config, nested, "")


# -- the ROS node's own sections (its parameters are these and the core Config's) ------------------------------

@dataclass
class CameraConfig:
    """The topics of one camera, parameters ``cameras.<name>.*``; ``for_camera`` gives the usual driver layout."""

    image_topic: str = setting("", "colour image topic (sensor_msgs/Image, or CompressedImage when it ends in "
                                   "/compressed)", read_only=True)
    depth_topic: str = setting("", "registered depth topic (16UC1 mm or 32FC1 m, REP 118); empty = none",
                               read_only=True)
    info_topic: str = setting("", "sensor_msgs/CameraInfo topic", read_only=True)

    @classmethod
    def for_camera(cls, name: str) -> "CameraConfig":
        """The defaults of camera ``name``: /<name>/image_raw, /<name>/depth/image_raw, /<name>/camera_info."""
        return cls(f"/{name}/image_raw", f"/{name}/depth/image_raw", f"/{name}/camera_info")


@dataclass
class ImageQosConfig:
    """QoS of the camera subscriptions."""

    reliability: str = setting("best_effort", "reliability of the camera subscriptions; must suit the camera "
                                              "drivers", choices=("best_effort", "reliable"), read_only=True)
    depth: int = setting(5, "queue depth (KEEP_LAST) of the camera subscriptions", low=1, high=100, read_only=True)


@dataclass
class BufferConfig:
    """How much of each live camera stream the node keeps."""

    seconds: float = setting(20.0, "seconds of frames kept per camera", low=0.5, high=3600.0, read_only=True)
    max_frames: int = setting(48, "most frames kept per camera (thinned evenly in time when full)", low=1,
                              high=1000, read_only=True)


@dataclass
class QueryConfig:
    """Defaults of goals that leave these fields at 0."""

    window_s: float = setting(10.0, "history window of a goal that gives no window_sec, in seconds", low=0.1,
                              high=3600.0)
    max_frames: int = setting(16, "key frames of a goal that gives no max_frames (at most agent.max_key_frames "
                                  "and agent.context.max_images)", low=1, high=64)


#: Most goals that may wait behind the running one (each waiting goal holds an executor thread).
MAX_QUEUED_GOALS = 8


@dataclass
class GoalsConfig:
    """What happens to a goal that arrives while another runs."""

    policy: str = setting("reject", "reject: end it with ERROR_BUSY | queue: wait (up to queue_size), its frames "
                                    "taken when it arrives", choices=("reject", "queue"))
    queue_size: int = setting(2, "goals that may wait behind the running one under the queue policy", low=0,
                              high=MAX_QUEUED_GOALS)


@dataclass
class TfConfig:
    """The node's tf2 buffer."""

    timeout_s: float = setting(0.5, "how long a goal waits for transforms not yet received (all its lookups "
                                    "together), in seconds", low=0.0, high=60.0)
    cache_margin_s: float = setting(10.0, "TF is kept this much longer than buffer.seconds, in seconds", low=0.0,
                                    high=3600.0, read_only=True)


@dataclass
class VisualizationConfig:
    """What the node publishes after an answer (markers, clouds, answer text, shown images)."""

    enabled: bool = setting(True, "publish markers, clouds, the answer text and the shown images after each answer")
    cloud_voxel_m: float = setting(0.05, "voxel size of the published reconstruction cloud, in metres", low=0.0,
                                   high=10.0)
    cloud_max_points: int = setting(50_000, "most points in the published reconstruction cloud", low=0,
                                    high=5_000_000)


@dataclass
class DiagnosticsConfig:
    """The node's /diagnostics."""

    period_s: float = setting(1.0, "period of /diagnostics, in seconds", low=0.1, high=60.0, read_only=True)
    endpoint_check_s: float = setting(15.0, "period of the model endpoint health check, in seconds", low=1.0,
                                      high=3600.0, read_only=True)


@dataclass
class NodeConfig:
    """The ROS node's own settings; with each camera's CameraConfig and the core Config they are its parameters."""

    camera_names: tuple = setting(("front",), "the cameras; each has its topics under cameras.<name>",
                                  read_only=True)
    image_qos: ImageQosConfig = section(ImageQosConfig, "camera subscription QoS")
    buffer: BufferConfig = section(BufferConfig, "live frames kept per camera")
    query: QueryConfig = section(QueryConfig, "goal defaults")
    goals: GoalsConfig = section(GoalsConfig, "concurrent goals")
    tf: TfConfig = section(TfConfig, "the tf2 buffer")
    visualization: VisualizationConfig = section(VisualizationConfig, "what RViz is sent")
    diagnostics: DiagnosticsConfig = section(DiagnosticsConfig, "/diagnostics")
