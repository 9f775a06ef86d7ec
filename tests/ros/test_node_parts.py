"""The node's ROS-free parts: parameters, goal checks and policy, outcome codes, diagnostics, shipped files."""

from __future__ import annotations

import ast
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from spatialclaw_ros.agent.result import ErrorCode
from spatialclaw_ros.frame_buffer import BufferLimits, CameraStats
from spatialclaw_ros.ros import diagnostics as diag
from spatialclaw_ros.ros.params import CAMERA_NAMES, PARAMETERS, NodeParams, all_parameters
from spatialclaw_ros.ros.query import GoalError, GoalGate, agent_code, make_query
from spatialclaw_ros.tf_buffer import TransformBuffer

PACKAGE = Path(__file__).resolve().parents[2] / "ros2_ws" / "src" / "spatialclaw_ros"


def defaults(**changes) -> dict:
    values = {p.name: p.default for p in all_parameters(["front", "rear"])}
    values[CAMERA_NAMES] = ["front", "rear"]
    values.update({name.replace("__", "."): value for name, value in changes.items()})
    return values


def goal(**fields):
    """A SpatialQuery goal's fields (as the generated message has them, zero by default)."""
    base = dict(question="how far is the chair from the table?", choices=[], cameras=[], window_sec=0.0,
                max_frames=0, stamp=SimpleNamespace(sec=0, nanosec=0), target_frame="", max_steps=0, timeout_sec=0.0)
    return SimpleNamespace(**{**base, **fields})


def test_defaults_build_typed_params_with_camera_topics():
    params = NodeParams.from_values(defaults(cameras__rear__image_topic="/rear/image_raw/compressed"))
    front, rear = params.cameras
    assert (front.image_topic, front.depth_topic, front.info_topic) == ("/front/image_raw", "/front/depth/image_raw",
                                                                       "/front/camera_info")
    assert not front.compressed and rear.compressed
    assert params.buffer == BufferLimits(20.0, 48, 0.2, 0.02) and params.tf_cache_s == 30.0
    assert params.camera("rear") is rear and params.camera("/rear/image_raw/compressed") is rear
    assert params.camera("rear/image_raw/compressed") is rear and params.camera("left") is None


@pytest.mark.parametrize("changes, message", [
    ({"goals__policy": "bogus"}, "goals.policy = 'bogus' is not one of reject, queue"),
    ({"buffer__seconds": 0.1}, r"buffer.seconds = 0.1 is outside \[0.5, 3600.0\]"),
    ({"query__max_frames": 1.5}, "query.max_frames must be int"),
    ({CAMERA_NAMES: []}, "camera_names is empty"),
    ({CAMERA_NAMES: ["front", "front"]}, "camera_names has duplicates"),
    ({"cameras__front__info_topic": " "}, "cameras.front.info_topic is empty"),
    ({"world_frame": "/"}, "world_frame is empty"),
])
def test_bad_values_are_refused_with_the_reason(changes, message):
    with pytest.raises(ValueError, match=message):
        NodeParams.from_values(defaults(**changes))


def test_agent_config_layers_file_environment_and_parameters(tmp_path):
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump({"model": {"base_url": "http://file/v1", "model": "file-model"},
                                           "agent": {"sessions_dir": "from_file"}}))
    params = NodeParams.from_values(defaults(model__config_file=str(config_file), model__name="param-model"))
    config = params.agent_config(env={"SPATIALCLAW_API_KEY": "secret"})
    assert (config.model.base_url, config.model.model, config.model.api_key) == ("http://file/v1", "param-model", "secret")
    assert config.agent.sessions_dir == "from_file"
    assert params.model_settings() != NodeParams.from_values(defaults(model__base_url="http://x/v1")).model_settings()


def test_goals_are_checked_and_filled_with_the_node_defaults():
    params = NodeParams.from_values(defaults())
    tf = TransformBuffer()
    tf.set_transform("map", "base_link", 1.0, np.eye(4))
    query = make_query(goal(cameras=["/rear/image_raw", "front", "rear"]), params, now_s=50.0, tf=tf)
    assert (query.cameras, query.end_s, query.window_s, query.max_frames) == (("rear", "front"), 50.0, 10.0, 16)
    assert (query.target_frame, query.max_steps, query.timeout_s) == ("map", None, None)
    given = make_query(goal(stamp=SimpleNamespace(sec=12, nanosec=500_000_000), window_sec=3.0, max_frames=4,
                            target_frame="/base_link", max_steps=5, timeout_sec=9.0), params, 50.0, tf)
    assert (given.end_s, given.window_s, given.max_frames, given.target_frame, given.max_steps, given.timeout_s) == (
        12.5, 3.0, 4, "base_link", 5, 9.0)
    cases = [(goal(question=" "), "ERROR_EMPTY_QUESTION"), (goal(choices=["A", ""]), "ERROR_EMPTY_QUESTION"),
             (goal(cameras=["left"]), "ERROR_UNKNOWN_CAMERA"), (goal(target_frame="odom"), "ERROR_UNKNOWN_TARGET_FRAME"),
             (goal(window_sec=-1.0), "ERROR_NO_FRAMES"), (goal(timeout_sec=float("nan")), "ERROR_DEADLINE")]
    for bad, code in cases:
        with pytest.raises(GoalError) as error:
            make_query(bad, params, 50.0, tf)
        assert error.value.code == code


def test_goal_policy_admission():
    gate = GoalGate()
    assert gate.admit("reject", 5) and not gate.admit("reject", 5)
    assert gate.admit("queue", 1) and not gate.admit("queue", 1)  # one running, one waiting
    gate.release()
    gate.release()
    assert gate.active == 0
    with pytest.raises(RuntimeError, match="without a matching admit"):
        gate.release()


def test_agent_outcomes_map_to_action_codes():
    assert [agent_code(code) for code in (ErrorCode.MODEL_UNREACHABLE, ErrorCode.MODEL_ERROR, ErrorCode.NO_ANSWER,
                                          ErrorCode.DEADLINE_EXCEEDED, ErrorCode.CANCELLED, ErrorCode.KERNEL_FAILURE,
                                          "internal_error")] == [
        "ERROR_MODEL_UNREACHABLE", "ERROR_MODEL", "ERROR_MODEL", "ERROR_DEADLINE", "ERROR_CANCELED", "ERROR_KERNEL",
        "ERROR_INTERNAL"]


def camera_stats(**changes) -> CameraStats:
    base = dict(name="front", colour_received=100, depth_received=100, info_received=100, stored=24, with_depth=24,
                nbytes=24_000_000, oldest_s=90.0, newest_s=100.0, colour_rate_hz=10.0, has_intrinsics=True,
                depth_size_mismatches=0)
    return CameraStats(**{**base, **changes})


TOPICS = {"image": "/front/image_raw", "depth": "/front/depth/image_raw", "info": "/front/camera_info"}


def test_camera_status_levels_and_values():
    ok = diag.camera_status(camera_stats(), BufferLimits(max_frames=48), TOPICS, now_s=100.1)
    assert (ok.level, ok.message) == (diag.OK, "10.0 Hz, 24/48 frames buffered (24 with depth)")
    assert ok.values["buffer_fill"] == "0.50" and ok.values["newest_age_s"] == "0.10" and ok.values["buffer_span_s"] == "10.00"
    stale = diag.camera_status(camera_stats(), BufferLimits(), TOPICS, now_s=101.5)
    assert stale.level == diag.WARN and stale.message == "stale: newest image 1.5 s old"
    broken = diag.camera_status(camera_stats(with_depth=0, has_intrinsics=False, depth_size_mismatches=3),
                                BufferLimits(), TOPICS, now_s=100.0)
    assert broken.message == ("no CameraInfo on /front/camera_info; no depth paired from /front/depth/image_raw; "
                              "3 depth images of another size than the colour image")
    silent = diag.camera_status(camera_stats(colour_received=0, newest_s=None, colour_rate_hz=0.0, stored=0),
                                BufferLimits(), TOPICS, 100.0)
    assert silent.message.startswith("no images on /front/image_raw")


def test_tf_endpoint_and_goal_statuses():
    tf = diag.TfStats(messages=3, frames=4)
    for stamp in (10.0, 10.5, 11.0):
        tf.note_dynamic(stamp)
    assert tf.rate_hz == pytest.approx(2.0)
    assert diag.tf_status(tf, now_s=11.2).level == diag.OK
    assert diag.tf_status(tf, now_s=12.6).message == "stale: newest /tf is 1.6 s old"
    assert diag.tf_status(diag.TfStats(), 0.0).level == diag.WARN
    down = diag.endpoint_status(diag.EndpointHealth(False, "ConnectionError: refused", 5.0, 0.2), "http://x/v1", 7.0)
    assert (down.level, down.values["checked_ago_s"]) == (diag.ERROR, "2.0")
    goals = diag.goals_status(diag.GoalStats(active=1, finished=3, succeeded=2, last_code="ERROR_NONE", last_latency_s=4.25))
    assert goals.message == "1 active, 3 finished (2 answered), last ERROR_NONE in 4.25 s"


def test_endpoint_monitor_checks_on_its_own_thread():
    calls = []

    def ping():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("refused")
        return ["model-a"]

    monitor = diag.EndpointMonitor(ping, period_s=0.01)
    try:
        while len(calls) < 3:
            time.sleep(0.005)
    finally:
        monitor.stop()
    assert monitor.health.ok and monitor.health.message == "reachable; models: model-a"


def test_shipped_parameter_file_matches_the_declared_defaults():
    shipped = yaml.safe_load((PACKAGE / "config" / "spatialclaw.yaml").read_text())["spatialclaw"]["ros__parameters"]

    def flatten(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from flatten(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    values = dict(flatten(shipped))
    assert values == {CAMERA_NAMES: ["front"], **{p.name: p.default for p in all_parameters(["front"])}}
    assert len(PARAMETERS) == len(values) - 4  # camera_names and the three topics of "front"


def test_launch_files_declare_their_arguments():
    for name, expected in (("spatialclaw.launch.py", {"params_file", "use_sim_time", "rviz"}),
                           ("replay.launch.py", {"bag", "rate", "params_file", "rviz", "player"})):
        tree = ast.parse((PACKAGE / "launch" / name).read_text())
        declared = {node.args[0].value for node in ast.walk(tree) if isinstance(node, ast.Call)
                    and getattr(node.func, "id", "") == "DeclareLaunchArgument"}
        assert declared == expected, name
    rviz = yaml.safe_load((PACKAGE / "rviz" / "spatialclaw.rviz").read_text())
    topics = {d["Topic"]["Value"]: d["Topic"].get("Durability Policy") for d in rviz["Visualization Manager"]["Displays"]
              if "Topic" in d}
    assert topics["/spatialclaw/markers"] == topics["/spatialclaw/cloud/reconstruction"] == "Transient Local"


@pytest.mark.parametrize("little_endian", [True, False])
def test_the_header_is_read_from_serialized_camera_messages(little_endian):
    from rosbags.typesys import Stores, get_typestore

    from spatialclaw_ros.ros.cdr import header_of

    typestore = get_typestore(Stores.ROS2_JAZZY)
    T = typestore.types
    header = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=1_700_000_012, nanosec=250_000_000),
                                      frame_id="front_optical_frame")
    image = T["sensor_msgs/msg/Image"](header=header, height=1, width=2, encoding="rgb8", is_bigendian=0, step=6,
                                       data=np.arange(6, dtype=np.uint8))
    compressed = T["sensor_msgs/msg/CompressedImage"](header=header, format="jpeg", data=np.zeros(3, np.uint8))
    for message, name in ((image, "sensor_msgs/msg/Image"), (compressed, "sensor_msgs/msg/CompressedImage")):
        raw = bytes(typestore.serialize_cdr(message, name, little_endian=little_endian))
        stamp, frame_id = header_of(raw)
        assert (stamp, frame_id) == (pytest.approx(1_700_000_012.25), "front_optical_frame")
    with pytest.raises(ValueError, match="corrupt header"):
        header_of(raw[:20])
    with pytest.raises(ValueError, match="unsupported CDR encapsulation 0x0102"):
        header_of(b"\x01\x02" + raw[2:])
