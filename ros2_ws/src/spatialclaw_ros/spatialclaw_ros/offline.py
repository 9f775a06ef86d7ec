"""Questions about a recording, without a ROS graph: bag -> key frames -> agent -> answer, and optionally
a rosbag2 (MCAP) of what the node would have published (markers, clouds, answer) to open in RViz or
Foxglove next to the recording.

The bag's frames are assembled by the live node's code with the same settings (``read_bag``), so the same bag
gives the same frames offline and live. ``spatialclaw ask --bag`` calls ``read_bag`` and ``write_answer_bag``;
``ask_bag`` does both around ``Agent.ask`` for Python callers, and its answer bag shows the reconstruction the
cells were served.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from .agent import Agent, AgentEvent, AgentResult
from .agent.result import ANSWERED
from .bag_reader import read_bag, read_tf
from .cancel import CancelToken
from .config import Config, PerceptionConfig, key_frame_limit
from .frames import FrameSet
from .perception.reconstruction import Reconstruction
from .perception.service import PerceptionService
from .ros import publishing
from .tf_buffer import TransformBuffer
from .visualization import ReconstructionRecorder, answer_record, build_markup, used_reconstruction

#: Topics of the answer bag: those the node publishes under its default name.
MARKERS_TOPIC = "/spatialclaw/markers"
CLOUD_TOPIC = "/spatialclaw/cloud/{name}"
ANSWER_TOPIC = "/spatialclaw/answer"
NAMESPACE = "answer"
BAG_VERSION = 8


@dataclass
class BagAnswer:
    """The agent's result, the frames it saw, and the answer bag written (None when not asked for or not answered)."""

    result: AgentResult
    frames: FrameSet
    out_bag: Path | None


def write_answer_bag(path: str | Path, result: AgentResult, frames: FrameSet, question: str, *,
                     tf: TransformBuffer | None = None, target_frame: str | None = None,
                     perception: PerceptionConfig | None = None, served: Reconstruction | None = None,
                     cloud_voxel_m: float = 0.05, cloud_max_points: int = 50_000) -> Path:
    """Write a new rosbag2 directory ``path`` (MCAP): the markers, clouds and answer (std_msgs/String, JSON) of an
    answered ``result``, stamped at the newest frame. ``tf`` is needed for a ``target_frame`` other than the world
    frame; the reconstruction cloud is ``used_reconstruction(frames, perception, served)``."""
    path = Path(path)
    if result.answer is None:
        raise ValueError(f"the question was not answered ({result.error_code}: {result.error_message}); "
                         f"there is nothing to write to {path}")
    target = (target_frame or frames.world_frame).lstrip("/")
    reconstruction = used_reconstruction(frames, perception or PerceptionConfig(), served)
    markup = build_markup(result, frames, tf or TransformBuffer(), target, namespace=NAMESPACE,
                          reconstruction=reconstruction, cloud_voxel_m=cloud_voxel_m, cloud_max_points=cloud_max_points)
    typestore = get_typestore(Stores.ROS2_JAZZY)
    types = publishing.rosbags_types(typestore)
    stamp_ns = round(markup.stamp_s * 1e9)
    messages = [(MARKERS_TOPIC, "visualization_msgs/msg/MarkerArray", publishing.marker_array(types, markup)),
                (ANSWER_TOPIC, "std_msgs/msg/String", publishing.string(types, json.dumps(answer_record(question, result, target))))]
    messages += [(CLOUD_TOPIC.format(name=cloud.name), "sensor_msgs/msg/PointCloud2",
                  publishing.point_cloud(types, cloud, markup.frame_id, markup.stamp_s)) for cloud in markup.clouds]
    with Writer(path, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP) as writer:
        for topic, msgtype, message in messages:
            connection = writer.add_connection(topic, msgtype, typestore=typestore)
            writer.write(connection, stamp_ns, typestore.serialize_cdr(message, msgtype))
    return path


def ask_bag(bag: str | Path, question: str, config: Config, *, choices: Sequence[str] = (),
            cameras: list[str] | None = None, at_s: float | None = None, target_frame: str | None = None,
            out_bag: str | Path | None = None, cancel: CancelToken | None = None,
            on_event: Callable[[AgentEvent], None] | None = None, max_steps: int | None = None,
            deadline_s: float | None = None) -> BagAnswer:
    """Answer ``question`` about the key frames of ``bag`` (assembled with ``config.frames``, up to
    ``key_frame_limit(config.agent)``, received by ``at_s`` seconds after the bag start); with ``out_bag``, also write
    the answer bag when answered."""
    frames = read_bag(bag, config.frames, cameras=cameras, at_s=at_s, max_frames=key_frame_limit(config.agent))
    perception = ReconstructionRecorder(PerceptionService(config.perception))
    with Agent(config, perception=perception) as agent:
        result = agent.ask(question, frames, choices=choices, cancel=cancel, on_event=on_event, max_steps=max_steps,
                           deadline_s=deadline_s)
    perception.close()
    written = None
    if out_bag is not None and result.status == ANSWERED:
        target = (target_frame or frames.world_frame).lstrip("/")
        tf = read_tf(bag) if target != frames.world_frame else None
        written = write_answer_bag(out_bag, result, frames, question, tf=tf, target_frame=target,
                                   perception=config.perception, served=perception.served())
    return BagAnswer(result, frames, written)
