"""The node's ROS-free parts: parameters from the one config schema, goal checks and policy, the codes table,
diagnostics, shipped files, and what package.xml declares."""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from spatialclaw_ros.agent.result import ErrorCode
from spatialclaw_ros.config import BufferConfig, Config, NodeConfig, declared_settings, load_config
from spatialclaw_ros.frame_buffer import CameraStats
from spatialclaw_ros.kernel.layers import SandboxLayer
from spatialclaw_ros.perception.service import BackendStatus
from spatialclaw_ros.ros import diagnostics as diag
from spatialclaw_ros.ros.params import (CAMERA_NAMES, FROM_ENVIRONMENT, NodeSettings, node_parameters, params_file,
                                        unknown_parameters)
from spatialclaw_ros.ros.query import ACTION_CODES, GoalCode, GoalError, GoalGate, action_code, make_query
from spatialclaw_ros.tf_buffer import TransformBuffer

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ros2_ws" / "src" / "spatialclaw_ros"
BASE = load_config(env={})


def defaults(**changes) -> dict:
    """Every parameter's default for cameras front and rear, with ``changes`` (dots written as __)."""
    values = {p.name: p.value for p in node_parameters(BASE, NodeConfig(), ["front", "rear"])}
    values[CAMERA_NAMES] = ["front", "rear"]
    values.update({name.replace("__", "."): value for name, value in changes.items()})
    return values


def goal(**fields):
    """A SpatialQuery goal's fields (as the generated message has them, zero by default)."""
    base = dict(question="how far is the chair from the table?", choices=[], cameras=[], window_sec=0.0,
                max_frames=0, stamp=SimpleNamespace(sec=0, nanosec=0), target_frame="", max_steps=0, timeout_sec=0.0)
    return SimpleNamespace(**{**base, **fields})


def test_every_core_setting_is_a_parameter_with_its_declaration():
    parameters = {p.name: p for p in node_parameters(BASE, NodeConfig(), ["front"])}
    for setting in declared_settings(Config()):
        assert parameters[setting.name].setting == setting.setting, setting.name
    perception = parameters["perception.reconstruction"]
    assert perception.value == "sensor" and perception.setting.choices == ("sensor", "da3", "da3-onnx")
    assert perception.setting.read_only and parameters["frames.body_frame"].value == "base_link"
    assert "model.api_key" not in parameters  # from the environment only
    assert parameters["cameras.front.image_topic"].value == "/front/image_raw"


def test_settings_are_typed_with_camera_topics_and_the_environment_under_the_parameters():
    base = load_config(env={"SPATIALCLAW_BASE_URL": "http://env/v1", "SPATIALCLAW_API_KEY": "secret"})
    values = {p.name: p.value for p in node_parameters(base, NodeConfig(), ["front", "rear"])}
    values.update({CAMERA_NAMES: ["front", "rear"], "cameras.rear.image_topic": "/rear/image_raw/compressed",
                   "agent.max_steps": 7, "frames.world_frame": "odom"})
    settings = NodeSettings.from_values(values, base)
    front, rear = settings.cameras
    assert (front.image_topic, front.depth_topic, front.info_topic) == ("/front/image_raw", "/front/depth/image_raw",
                                                                       "/front/camera_info")
    assert not front.compressed and rear.compressed
    assert settings.node.buffer == BufferConfig(20.0, 48) and settings.tf_cache_s == 30.0
    assert (settings.core.agent.max_steps, settings.core.frames.world_frame) == (7, "odom")
    assert (settings.core.model.base_url, settings.core.model.api_key) == ("http://env/v1", "secret")
    assert settings.camera("rear") is rear and settings.camera("/rear/image_raw/compressed") is rear
    assert settings.camera("rear/image_raw/compressed") is rear and settings.camera("left") is None
    assert settings.max_frames_limit == 24  # min(agent.max_key_frames, agent.context.max_images)


@pytest.mark.parametrize("changes, message", [
    ({"goals__policy": "bogus"}, "goals.policy': 'bogus' is not one of reject, queue"),
    ({"buffer__seconds": 0.1}, r"buffer.seconds' = 0.1 is outside \[0.5, 3600.0\]"),
    ({"query__max_frames": 1.5}, "query.max_frames' must be int"),
    ({"perception__reconstruction": "lidar"}, "'lidar' is not one of sensor, da3, da3-onnx"),
    ({CAMERA_NAMES: []}, "camera_names is empty"),
    ({CAMERA_NAMES: ["front", "front"]}, "camera_names has duplicates"),
    ({"cameras__front__info_topic": " "}, "cameras.front.info_topic is empty"),
])
def test_bad_values_are_refused_with_the_reason(changes, message):
    with pytest.raises(ValueError, match=message):
        NodeSettings.from_values(defaults(**changes), BASE)


def test_unknown_names_of_a_params_file_are_reported_with_their_likely_meaning():
    declared = [p.name for p in node_parameters(BASE, NodeConfig(), ["front"])] + ["use_sim_time"]
    given = ["buffer.secnds", "use_sim_time", "qos_overrides./tf.subscription.depth", "agent.max_steps", "zzz"]
    assert unknown_parameters(given, declared) == ["buffer.secnds (did you mean buffer.seconds?)", "zzz"]


def test_goals_are_checked_and_filled_with_the_node_defaults():
    settings = NodeSettings.from_values(defaults(), BASE)
    tf = TransformBuffer()
    tf.set_transform("map", "base_link", 1.0, np.eye(4))
    query = make_query(goal(cameras=["/rear/image_raw", "front", "rear"]), settings, now_s=50.0, tf=tf)
    assert (query.cameras, query.end_s, query.window_s, query.max_frames) == (("rear", "front"), 50.0, 10.0, 16)
    assert (query.target_frame, query.max_steps, query.timeout_s) == ("", None, None)
    given = make_query(goal(stamp=SimpleNamespace(sec=12, nanosec=500_000_000), window_sec=3.0, max_frames=4,
                            target_frame="/base_link", max_steps=5, timeout_sec=9.0), settings, 50.0, tf)
    assert (given.end_s, given.window_s, given.max_frames, given.target_frame, given.max_steps, given.timeout_s) == (
        12.5, 3.0, 4, "base_link", 5, 9.0)
    # more key frames than the agent shows are capped: it never thins them again by position
    assert make_query(goal(max_frames=60), settings, 50.0, tf).max_frames == 24
    cases = [(goal(question=" "), GoalCode.EMPTY_QUESTION), (goal(choices=["A", ""]), GoalCode.EMPTY_QUESTION),
             (goal(cameras=["left"]), GoalCode.UNKNOWN_CAMERA), (goal(target_frame="odom"), GoalCode.UNKNOWN_TARGET_FRAME),
             (goal(window_sec=-1.0), GoalCode.NO_FRAMES), (goal(timeout_sec=float("nan")), ErrorCode.DEADLINE_EXCEEDED)]
    for bad, code in cases:
        with pytest.raises(GoalError) as error:
            make_query(bad, settings, 50.0, tf)
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


def test_every_code_maps_to_an_action_constant():
    from spatialclaw_msgs.action import SpatialQuery

    codes = [value for name, value in vars(ErrorCode).items() if name.isupper()]
    codes += [value for name, value in vars(GoalCode).items() if name.isupper()]
    assert set(codes) == set(ACTION_CODES)
    assert all(hasattr(SpatialQuery.Result, constant) for constant in ACTION_CODES.values())
    # a configuration problem the agent finds (e.g. a perception backend) has its own code
    assert action_code(ErrorCode.INVALID_INPUT) == "ERROR_CONFIG" and action_code("something new") == "ERROR_INTERNAL"


def camera_stats(**changes) -> CameraStats:
    base = dict(name="front", colour_received=100, depth_received=100, info_received=100, stored=24, with_depth=24,
                nbytes=24_000_000, oldest_s=90.0, newest_s=100.0, colour_rate_hz=10.0, has_intrinsics=True,
                depth_size_mismatches=0, without_frame_id=0)
    return CameraStats(**{**base, **changes})


TOPICS = {"image": "/front/image_raw", "depth": "/front/depth/image_raw", "info": "/front/camera_info"}


def test_camera_status_levels_and_values():
    ok = diag.camera_status(camera_stats(), BufferConfig(max_frames=48), TOPICS, now_s=100.1)
    assert (ok.level, ok.message) == (diag.OK, "10.0 Hz, 24/48 frames buffered (24 with depth)")
    assert ok.values["buffer_fill"] == "0.50" and ok.values["newest_age_s"] == "0.10" and ok.values["buffer_span_s"] == "10.00"
    stale = diag.camera_status(camera_stats(), BufferConfig(), TOPICS, now_s=101.5)
    assert stale.level == diag.WARN and stale.message == "stale: newest image 1.5 s old"
    broken = diag.camera_status(camera_stats(with_depth=0, has_intrinsics=False, depth_size_mismatches=3),
                                BufferConfig(), TOPICS, now_s=100.0)
    assert broken.message == ("no CameraInfo on /front/camera_info; no depth paired from /front/depth/image_raw; "
                              "3 depth images of another size than the colour image")
    silent = diag.camera_status(camera_stats(colour_received=0, newest_s=None, colour_rate_hz=0.0, stored=0),
                                BufferConfig(), TOPICS, 100.0)
    assert silent.message.startswith("no images on /front/image_raw")


def test_tf_endpoint_goal_sandbox_and_perception_statuses():
    frames = {"base_link": {"parent": "map", "rate": 2.0, "most_recent_transform": 11.0},
              "cam": {"parent": "base_link", "rate": 10000.0, "most_recent_transform": 0.0}}  # tf2's table
    ok = diag.tf_status(frames, now_s=11.2)
    assert ok.level == diag.OK and (ok.values["dynamic_frames"], ok.values["static_frames"]) == ("1", "1")
    assert diag.tf_status(frames, now_s=12.6).message == "stale: newest /tf is 1.6 s old"
    assert diag.tf_status({}, 0.0).level == diag.WARN
    down = diag.endpoint_status(diag.EndpointHealth(False, "ConnectionError: refused", 5.0, 0.2), "http://x/v1", 7.0)
    assert (down.level, down.values["checked_ago_s"]) == (diag.ERROR, "2.0")
    goals = diag.goals_status(diag.GoalStats(active=1, finished=3, succeeded=2, last_code="ERROR_NONE", last_latency_s=4.25))
    assert goals.message == "1 active, 3 finished (2 answered), last ERROR_NONE in 4.25 s"
    layers = [SandboxLayer("landlock", True, True, "ABI 4"), SandboxLayer("seccomp", False, False, "no libseccomp")]
    sandbox = diag.sandbox_status(layers)
    assert (sandbox.level, sandbox.message) == (diag.WARN, "layers off: seccomp")
    assert sandbox.values == {"landlock": "active: ABI 4", "seccomp": "OFF: no libseccomp"}
    assert diag.sandbox_status([SandboxLayer("landlock", False, True, "no ABI"), *layers[1:]]).level == diag.ERROR
    assert diag.sandbox_status([]).level == diag.WARN
    perception = diag.perception_status([BackendStatus("da3", "reconstruction", "torch cuda", False)])
    assert perception.values == {"reconstruction": "da3 on torch cuda, not loaded"}
    assert diag.state_status("inactive").level == diag.WARN and diag.state_status("active").level == diag.OK


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


def test_the_shipped_params_file_is_every_parameter_at_its_default():
    text = (PACKAGE / "config" / "spatialclaw.yaml").read_text()
    assert text == params_file(), "regenerate it: python -m spatialclaw_ros.ros.params > config/spatialclaw.yaml"
    shipped = yaml.safe_load(text)["spatialclaw"]["ros__parameters"]

    def flatten(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from flatten(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    expected = {p.name: list(p.value) if isinstance(p.value, tuple) else p.value
                for p in node_parameters(Config(), NodeConfig(), ["front"]) if p.name not in FROM_ENVIRONMENT}
    assert dict(flatten(shipped)) == expected
    assert all(f"# {name.split('.')[-1]}: " in text for name in FROM_ENVIRONMENT)  # shown, commented out


def test_launch_files_declare_their_arguments():
    for name, expected in (("spatialclaw.launch.py", {"params_file", "use_sim_time", "rviz", "autostart"}),
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


#: Python modules the package imports -> the rosdep key package.xml must declare (a ROS package's module is its key).
ROSDEP_KEYS = {"numpy": "python3-numpy", "scipy": "python3-scipy", "cv2": "python3-opencv", "PIL": "python3-pil",
               "yaml": "python3-yaml", "matplotlib": "python3-matplotlib", "openai": "python3-openai-pip",
               "rosbags": "python3-rosbags-pip", "tf2_ros": "tf2_ros_py"}
#: Imported, without a rosdep key: the README's pip step installs them.
PIP_ONLY = ("landlock", "pyseccomp")
#: The optional model backends' packages (models/README.md; ftfy and regex: sam3-onnx's tokenizer), the parquet
#: reader of `spatialclaw eval` (setup.py's eval extra), and the scenes' renderer (tests only).
OPTIONAL = {"torch": "exec", "depth_anything_3": "exec", "sam3": "exec", "onnxruntime": "exec", "ftfy": "exec",
            "regex": "exec", "pyarrow": "exec", "open3d": "python3-open3d-pip"}


def imported_modules() -> set[str]:
    """Top-level modules imported by the package and its launch files, the standard library and itself left out."""
    found = set()
    for path in [*(PACKAGE / "spatialclaw_ros").rglob("*.py"), *(PACKAGE / "launch").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name != "spatialclaw_ros"}


def test_package_xml_declares_what_the_code_imports_with_keys_that_exist():
    import xml.etree.ElementTree as ElementTree

    manifest = ElementTree.parse(PACKAGE / "package.xml").getroot()
    exec_keys = {element.text for element in manifest.iter("exec_depend")}
    test_keys = {element.text for element in manifest.iter("test_depend")}
    readme = (ROOT / "README.md").read_text()
    assert f"pip install {' '.join(PIP_ONLY)}" in readme
    for module in sorted(imported_modules()):
        if module in PIP_ONLY:
            continue
        if module in OPTIONAL:
            assert OPTIONAL[module] == "exec" or OPTIONAL[module] in test_keys, module
            continue
        assert ROSDEP_KEYS.get(module, module) in exec_keys, f"{module} is imported but package.xml lacks its key"
    # no key that rosdep lacks (python3-seccomp is not one; the pip keys are)
    assert "python3-seccomp" not in exec_keys and {"python3-openai-pip", "python3-rosbags-pip"} <= exec_keys
