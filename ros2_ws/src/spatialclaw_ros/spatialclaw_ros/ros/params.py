"""The node's ROS parameters: one table of names, defaults, ranges and descriptions, and the typed
``NodeParams`` built (and validated) from their values.

Cameras are listed in ``camera_names``; each camera ``<c>`` then has ``cameras.<c>.image_topic``
(raw, or compressed when it ends in ``/compressed``), ``cameras.<c>.depth_topic`` (empty = none) and
``cameras.<c>.info_topic``. The model's API key is never a parameter: it comes from the environment
(``SPATIALCLAW_API_KEY`` or ``OPENAI_API_KEY``), like everything ``load_config`` reads. No ROS import
here; the node turns ``PARAMETERS`` into descriptors.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..config import Config, load_config
from ..frame_buffer import BufferLimits, KeyframePolicy

GOAL_POLICIES = ("reject", "queue")
RELIABILITIES = ("best_effort", "reliable")
#: Most goals that may wait behind the running one (each waiting goal holds an executor thread).
MAX_QUEUE_SIZE = 8
#: TF is kept this much longer than the frame buffer, so the oldest buffered frame still has a pose.
TF_CACHE_MARGIN_S = 10.0


@dataclass(frozen=True)
class Parameter:
    """One declared parameter: default (its type is the parameter's type), description, optional numeric
    range (inclusive), allowed values, and whether it can change while the node runs."""

    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("world_frame", "map", "TF frame poses and answers are expressed in when a goal names no target_frame"),
    Parameter("image_qos.reliability", "best_effort",
              "reliability of the camera subscriptions; must be compatible with the camera drivers", choices=RELIABILITIES,
              read_only=True),
    Parameter("image_qos.depth", 5, "queue depth (KEEP_LAST) of the camera subscriptions", 1, 100, read_only=True),
    Parameter("buffer.seconds", 20.0, "seconds of frames kept per camera", 0.5, 3600.0, read_only=True),
    Parameter("buffer.max_frames", 48, "most frames kept per camera (thinned evenly in time when full)", 1, 1000,
              read_only=True),
    Parameter("buffer.min_interval_s", 0.2, "colour frames closer than this to a kept one are dropped undecoded",
              0.0, 60.0, read_only=True),
    Parameter("buffer.sync_tolerance_s", 0.02, "largest stamp difference for pairing a depth image with a colour image",
              0.0, 1.0, read_only=True),
    Parameter("keyframes.spacing_s", 0.5, "key-frame progress unit in time (s)", 1e-3, 3600.0),
    Parameter("keyframes.translation_m", 0.5, "key-frame progress unit in camera travel (m)", 1e-3, 100.0),
    Parameter("keyframes.rotation_deg", 20.0, "key-frame progress unit in camera turn (degrees)", 0.1, 360.0),
    Parameter("query.window_s", 10.0, "history window of a goal that gives no window_sec", 0.1, 3600.0),
    Parameter("query.max_frames", 16, "key frames of a goal that gives no max_frames", 1, 64),
    Parameter("query.max_steps", 0, "step limit of a goal that gives none (0 = the config's agent.max_steps)", 0, 200),
    Parameter("query.timeout_s", 0.0, "deadline of a goal that gives none (0 = the config's agent.deadline_s)",
              0.0, 86400.0),
    Parameter("goals.policy", "reject",
              "a goal arriving while one runs: 'reject' (ERROR_BUSY) or 'queue' (wait, up to goals.queue_size)",
              choices=GOAL_POLICIES),
    Parameter("goals.queue_size", 2, "goals that may wait behind the running one under the 'queue' policy",
              0, MAX_QUEUE_SIZE),
    Parameter("model.config_file", "", "SpatialClaw YAML config (model, agent, kernel); empty = defaults", read_only=True),
    Parameter("model.base_url", "", "OpenAI-compatible endpoint; empty = config file or environment"),
    Parameter("model.name", "", "model name; empty = config file, environment, or the endpoint's first model"),
    Parameter("sessions_dir", "", "directory of the session logs; empty = the config's agent.sessions_dir"),
    Parameter("visualization.enabled", True, "publish markers, clouds, answer text and debug images after each answer"),
    Parameter("visualization.cloud_voxel_m", 0.05, "voxel size of the published reconstruction cloud (m)", 0.0, 10.0),
    Parameter("visualization.cloud_max_points", 50_000, "most points in the published reconstruction cloud", 0, 5_000_000),
    Parameter("diagnostics.period_s", 1.0, "period of /diagnostics (s)", 0.1, 60.0, read_only=True),
    Parameter("diagnostics.endpoint_check_s", 15.0, "period of the model endpoint health check (s)", 1.0, 3600.0,
              read_only=True),
)

CAMERA_NAMES = "camera_names"
CAMERA_TOPIC_KEYS = ("image_topic", "depth_topic", "info_topic")


def camera_parameters(name: str) -> tuple[Parameter, ...]:
    """The three topic parameters of camera ``name`` (defaults follow the usual driver layout)."""
    return (
        Parameter(f"cameras.{name}.image_topic", f"/{name}/image_raw",
                  "colour image topic (sensor_msgs/Image, or CompressedImage when it ends in /compressed)", read_only=True),
        Parameter(f"cameras.{name}.depth_topic", f"/{name}/depth/image_raw",
                  "registered depth topic (16UC1 mm or 32FC1 m, REP 118); empty = no depth", read_only=True),
        Parameter(f"cameras.{name}.info_topic", f"/{name}/camera_info", "sensor_msgs/CameraInfo topic", read_only=True),
    )


@dataclass(frozen=True)
class CameraTopics:
    """The topics of one configured camera."""

    name: str
    image_topic: str
    depth_topic: str
    info_topic: str

    @property
    def compressed(self) -> bool:
        """Whether the colour topic carries sensor_msgs/CompressedImage (image_transport's /compressed)."""
        return self.image_topic.rstrip("/").endswith("/compressed")

    @property
    def depth_compressed(self) -> bool:
        """Whether the depth topic carries compressedDepth CompressedImage messages."""
        return self.depth_topic.rstrip("/").endswith("/compressedDepth")


@dataclass(frozen=True)
class NodeParams:
    """Every parameter value, typed and checked; ``from_values`` raises ValueError naming what is wrong."""

    cameras: tuple[CameraTopics, ...]
    world_frame: str
    image_reliability: str
    image_depth: int
    buffer: BufferLimits
    keyframes: KeyframePolicy
    window_s: float
    max_frames: int
    max_steps: int
    timeout_s: float
    goal_policy: str
    queue_size: int
    model_config_file: str
    model_base_url: str
    model_name: str
    sessions_dir: str
    visualization: bool
    cloud_voxel_m: float
    cloud_max_points: int
    diagnostics_period_s: float
    endpoint_check_s: float

    @property
    def tf_cache_s(self) -> float:
        """How long TF is kept: the frame buffer's span plus a margin."""
        return self.buffer.seconds + TF_CACHE_MARGIN_S

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> "NodeParams":
        """Build from parameter name -> value (every name of PARAMETERS and of each camera)."""
        for parameter in PARAMETERS:
            _check(parameter, values[parameter.name])
        names = list(values[CAMERA_NAMES])
        if not names:
            raise ValueError(f"{CAMERA_NAMES} is empty: configure at least one camera")
        if len(set(names)) != len(names):
            raise ValueError(f"{CAMERA_NAMES} has duplicates: {names}")
        cameras = []
        for name in names:
            if not name or not name.replace("_", "a").isalnum() or name[0].isdigit():
                raise ValueError(f"camera name {name!r} must be letters, digits and '_', not starting with a digit")
            topics = {key: str(values[f"cameras.{name}.{key}"]).strip() for key in CAMERA_TOPIC_KEYS}
            for key in ("image_topic", "info_topic"):
                if not topics[key]:
                    raise ValueError(f"cameras.{name}.{key} is empty")
            cameras.append(CameraTopics(name, **topics))
        if not str(values["world_frame"]).strip("/ "):
            raise ValueError("world_frame is empty")
        return cls(
            cameras=tuple(cameras), world_frame=str(values["world_frame"]).strip().lstrip("/"),
            image_reliability=values["image_qos.reliability"], image_depth=values["image_qos.depth"],
            buffer=BufferLimits(values["buffer.seconds"], values["buffer.max_frames"], values["buffer.min_interval_s"],
                                values["buffer.sync_tolerance_s"]),
            keyframes=KeyframePolicy(values["keyframes.spacing_s"], values["keyframes.translation_m"],
                                     values["keyframes.rotation_deg"]),
            window_s=values["query.window_s"], max_frames=values["query.max_frames"],
            max_steps=values["query.max_steps"], timeout_s=values["query.timeout_s"],
            goal_policy=values["goals.policy"], queue_size=values["goals.queue_size"],
            model_config_file=values["model.config_file"], model_base_url=values["model.base_url"].strip(),
            model_name=values["model.name"].strip(), sessions_dir=values["sessions_dir"].strip(),
            visualization=values["visualization.enabled"], cloud_voxel_m=values["visualization.cloud_voxel_m"],
            cloud_max_points=values["visualization.cloud_max_points"],
            diagnostics_period_s=values["diagnostics.period_s"], endpoint_check_s=values["diagnostics.endpoint_check_s"],
        )

    def camera(self, key: str) -> CameraTopics | None:
        """The camera named ``key`` or whose image topic is ``key`` (leading slash optional); None if none."""
        for camera in self.cameras:
            if key in (camera.name, camera.image_topic, camera.image_topic.lstrip("/")) or "/" + key == camera.image_topic:
                return camera
        return None

    def agent_config(self, env: dict[str, str] | None = None) -> Config:
        """The agent's Config: the config file, the environment (API key), then the model and sessions parameters."""
        config = load_config(self.model_config_file or None, env=env)
        model = dataclasses.replace(config.model, base_url=self.model_base_url or config.model.base_url,
                                    model=self.model_name or config.model.model)
        agent = dataclasses.replace(config.agent, sessions_dir=self.sessions_dir or config.agent.sessions_dir)
        return dataclasses.replace(config, model=model, agent=agent)

    def model_settings(self) -> tuple[str, str, str, str]:
        """What the agent is built from; a change means a new agent."""
        return (self.model_config_file, self.model_base_url, self.model_name, self.sessions_dir)


def _check(parameter: Parameter, value: Any) -> None:
    """Type, range and choices of one value (ROS checks ranges too; this also guards direct use)."""
    expected = type(parameter.default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValueError(f"parameter {parameter.name} must be {expected.__name__}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"parameter {parameter.name} must be finite, got {value}")
    if parameter.low is not None and not parameter.low <= value <= parameter.high:
        raise ValueError(f"parameter {parameter.name} = {value} is outside [{parameter.low}, {parameter.high}]")
    if parameter.choices and value not in parameter.choices:
        raise ValueError(f"parameter {parameter.name} = {value!r} is not one of {', '.join(parameter.choices)}")


def all_parameters(camera_names: list[str]) -> tuple[Parameter, ...]:
    """PARAMETERS plus the topic parameters of each camera."""
    return PARAMETERS + tuple(p for name in camera_names for p in camera_parameters(name))
