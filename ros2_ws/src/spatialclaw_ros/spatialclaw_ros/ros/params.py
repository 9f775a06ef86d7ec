"""The node's ROS parameters, all from the one declaration of settings in ``config``: the core ``Config``
(``model.*``, ``agent.*``, ``kernel.*``, ``perception.*``, ``frames.*``), the node's own ``NodeConfig``
(``camera_names``, ``image_qos.*``, ``buffer.*``, ``query.*``, ``goals.*``, ``tf.*``, ``visualization.*``,
``diagnostics.*``) and each camera's ``CameraConfig`` (``cameras.<name>.*``). Parameter defaults are the
core's defaults with the environment applied (``SPATIALCLAW_BASE_URL``, ``SPATIALCLAW_MODEL``); the model's API
key is never a parameter, it comes from the environment only. No ROS import here: the node turns each
``Parameter`` into a descriptor.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from ..config import (CameraConfig, Config, DeclaredSetting, NodeConfig, apply_settings, declared_settings,
                      key_frame_limit)

CAMERA_NAMES = "camera_names"
#: Parameters rclpy declares itself (or reads from a params file) on every node.
RCLPY_PARAMETERS = ("use_sim_time", "start_type_description_service")
RCLPY_PREFIXES = ("qos_overrides.",)
#: Parameters whose default comes from the environment (``load_config``): a params file that set them would hide it.
FROM_ENVIRONMENT = ("model.base_url", "model.model")


def camera_parameters(name: str) -> list[DeclaredSetting]:
    """The topic parameters of camera ``name``, with that camera's default topics."""
    return list(declared_settings(CameraConfig.for_camera(name), f"cameras.{name}."))


def node_parameters(core: Config, node: NodeConfig, camera_names: Iterable[str]) -> list[DeclaredSetting]:
    """Every parameter of a node with ``camera_names``: the core's, the node's and each camera's, in that order."""
    return [*declared_settings(core), *declared_settings(node),
            *(parameter for name in camera_names for parameter in camera_parameters(name))]


def params_file(node_name: str = "spatialclaw", camera_names: Iterable[str] = ("front",)) -> str:
    """A params file for ``ros2 launch ... params_file:=`` that sets every parameter to its default, each with its
    description: the shipped ``config/spatialclaw.yaml`` is this text. The parameters whose default comes from the
    environment are shown commented out."""
    node = NodeConfig(camera_names=tuple(camera_names))
    ordered = [*declared_settings(node), *(p for name in node.camera_names for p in camera_parameters(name)),
               *declared_settings(Config())]
    lines = [f"# Parameters of the {node_name} node, every one at its default (generated from spatialclaw_ros/config.py",
             "# by `python -m spatialclaw_ros.ros.params`). `ros2 param describe /spatialclaw NAME` prints the same",
             "# descriptions; [low, high] is the accepted range, * marks read-only parameters (fixed once the node",
             "# starts). model.base_url and model.model default to $SPATIALCLAW_BASE_URL and $SPATIALCLAW_MODEL: set",
             "# them here to override. The model's API key is never a parameter: set SPATIALCLAW_API_KEY.",
             f"{node_name}:", "  ros__parameters:"]
    written: list[str] = []
    for parameter in ordered:
        *sections, key = parameter.name.split(".")
        common = next((i for i, (a, b) in enumerate(zip(sections, written)) if a != b), min(len(sections), len(written)))
        for depth in range(common, len(sections)):
            lines.append("    " + "  " * depth + f"{sections[depth]}:")
        written = sections
        value = yaml.safe_dump(list(parameter.value) if isinstance(parameter.value, tuple) else parameter.value,
                               default_flow_style=True, width=1000).strip().removesuffix("\n...").strip()
        setting = parameter.setting
        note = setting.description + (f" [{_number(setting.low)}, {_number(setting.high)}]" if setting.low is not None else "")
        note += f" ({' | '.join(setting.choices)})" if setting.choices else ""
        entry = f"{key}: {value}"
        prefix = "# " if parameter.name in FROM_ENVIRONMENT else ""
        lines.append(f"{'    ' + '  ' * len(sections)}{prefix}{entry:<24} # {'* ' if setting.read_only else ''}{note}")
    return "\n".join(lines) + "\n"


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
class NodeSettings:
    """Every parameter value, typed and checked: the core's Config, the node's NodeConfig and the cameras."""

    core: Config
    node: NodeConfig
    cameras: tuple[CameraTopics, ...]

    @classmethod
    def from_values(cls, values: dict[str, Any], base: Config) -> "NodeSettings":
        """Build from parameter name -> value (every name of ``node_parameters``) over ``base`` (which keeps what
        is not a parameter, the API key); ValueError naming the first bad value."""
        names = [str(name) for name in values[CAMERA_NAMES]]
        if not names:
            raise ValueError(f"{CAMERA_NAMES} is empty: configure at least one camera")
        if len(set(names)) != len(names):
            raise ValueError(f"{CAMERA_NAMES} has duplicates: {names}")
        for name in names:
            if not name or not name.replace("_", "a").isalnum() or name[0].isdigit():
                raise ValueError(f"camera name {name!r} must be letters, digits and '_', not starting with a digit")
        core_names = {parameter.name for parameter in declared_settings(base)}
        core = apply_settings(base, {name: value for name, value in values.items() if name in core_names})
        node = apply_settings(NodeConfig(), {name: value for name, value in values.items()
                                             if name not in core_names and not name.startswith("cameras.")})
        cameras = []
        for name in names:
            topics = {key: str(values[f"cameras.{name}.{key}"]).strip()
                      for key in ("image_topic", "depth_topic", "info_topic")}
            for key in ("image_topic", "info_topic"):
                if not topics[key]:
                    raise ValueError(f"cameras.{name}.{key} is empty")
            cameras.append(CameraTopics(name, **topics))
        return cls(core, node, tuple(cameras))

    @property
    def tf_cache_s(self) -> float:
        """How long TF is kept: the frame buffer's span plus a margin, so its oldest frame still has a pose."""
        return self.node.buffer.seconds + self.node.tf.cache_margin_s

    @property
    def max_frames_limit(self) -> int:
        """The most key frames a goal can have: what the agent's prompt shows (``key_frame_limit``)."""
        return key_frame_limit(self.core.agent)

    def camera(self, key: str) -> CameraTopics | None:
        """The camera named ``key`` or whose image topic is ``key`` (leading slash optional); None if none."""
        for camera in self.cameras:
            if key in (camera.name, camera.image_topic, camera.image_topic.lstrip("/")) or "/" + key == camera.image_topic:
                return camera
        return None


def unknown_parameters(given: Iterable[str], declared: Iterable[str]) -> list[str]:
    """Names a params file gives that no declared parameter has, each with its likely meaning, e.g.
    ``buffer.secnds (did you mean buffer.seconds?)``."""
    declared = set(declared)
    unknown = sorted(name for name in given if name not in declared and name not in RCLPY_PARAMETERS
                     and not name.startswith(RCLPY_PREFIXES))
    described = []
    for name in unknown:
        close = difflib.get_close_matches(name, declared, n=1)
        described.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return described


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def main(argv=None) -> int:
    """Print the params file of every parameter at its default (``config/spatialclaw.yaml``)."""
    parser = argparse.ArgumentParser(prog="python -m spatialclaw_ros.ros.params", description=main.__doc__)
    parser.add_argument("--cameras", nargs="+", default=["front"], help="camera names (default: front)")
    print(params_file(camera_names=parser.parse_args(argv).cameras), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
