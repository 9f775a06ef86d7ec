"""The node on a real ROS 2 graph: the node and a bag player in their own processes, a real ActionClient here,
and the scripted model over real HTTP playing the agent's cells.

One node serves the module (a looping, restamped synthetic room on wall time); the replay test starts its
own node with use_sim_time on another domain. Run under the ROS venv (see conftest.py).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from spatialclaw_ros.scenes.generator import living_room_side_view
from graph_support import (QUESTION, GraphClient, Process, ScriptQueue, cell, measuring_cells, node_command,
                           player_command, ros_environment, write_room_bag, write_yaml)

pytestmark = pytest.mark.ros

SUCCEEDED, CANCELED, ABORTED = 4, 5, 6  # action_msgs/GoalStatus
COUNT_QUESTION = "How many images are there?"
TOLERANCE_M = 0.03
DOMAIN = 10 + os.getpid() % 80


class Graph:
    """What the module's tests share."""

    def __init__(self, tmp: Path) -> None:
        from spatialclaw_ros.llm.scripted_server import ScriptedModelServer
        from spatialclaw_ros.scenes.bag import read_ground_truth

        self.tmp = tmp
        self.scene = living_room_side_view()
        self.bag = write_room_bag(tmp / "room", self.scene)
        self.truth = read_ground_truth(self.bag).pair("chair", "table")
        self.script = ScriptQueue()
        self.server = ScriptedModelServer(self.script)
        self.config = write_yaml(tmp / "config.yaml", {
            "model": {"base_url": self.server.url, "max_retries": 0},
            "agent": {"plan": False, "cell_timeout_s": 60.0},
            "kernel": {"pool_size": 1, "memory_limit_mb": 2048}})
        self.sessions = tmp / "sessions"

    def params(self, name: str, **extra) -> Path:
        values = {"camera_names": ["front", "rear"], "cameras": {"rear": {"depth_topic": ""}},
                  "model": {"config_file": str(self.config)}, "sessions_dir": str(self.sessions),
                  "query": {"max_frames": 6}, "buffer": {"min_interval_s": 0.0},
                  "diagnostics": {"period_s": 0.5, "endpoint_check_s": 2.0}, **extra}
        return write_yaml(self.tmp / f"{name}.yaml", {"spatialclaw": {"ros__parameters": values}})


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    import rclpy

    graph = Graph(tmp_path_factory.mktemp("graph"))
    env = ros_environment(DOMAIN)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    node = Process(node_command(graph.params("live")), env, "node")
    player = None
    context = rclpy.Context()
    try:
        node.wait_for("spatialclaw node ready", 90)
        player = Process(player_command(graph.bag, "--loop", "--wait-for-subscribers", "20"), env, "player")
        player.wait_for("PLAYING", 60)
        rclpy.init(context=context)
        graph.node, graph.player, graph.client = node, player, GraphClient(context)
        time.sleep(3.5)  # one pass of the 3 s recording into the buffer
        yield graph
    finally:
        if getattr(graph, "client", None):
            graph.client.close()
        context.try_shutdown()
        for process in (player, node):
            if process is not None:
                process.stop()
                (graph.tmp / f"{process.name}.log").write_text(process.output())  # kept for a failure's post-mortem
        graph.server.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_answers_the_distance_with_feedback_points_and_latched_markers(graph):
    from sensor_msgs.msg import PointCloud2
    from std_msgs.msg import String
    from visualization_msgs.msg import MarkerArray

    graph.script.push("main", *measuring_cells(graph.scene))
    feedback = []
    status, result = graph.client.ask(feedback, question=QUESTION, target_frame="base_link")
    assert status == SUCCEEDED, result.error_message
    assert (result.success, result.error_code, result.unit, result.answer_type, result.steps) == (True, 0, "m", "number", 2)
    assert abs(result.value - graph.truth.closest) <= TOLERANCE_M, (result.value, graph.truth.closest)
    assert result.answer == f"{result.value:.2f} m"
    assert (Path(result.session_dir) / "result.json").is_file()
    assert [f.stage for f in feedback] == ["buffering", "step 1", "step 2", "done"]
    assert feedback[1].code.startswith("recon = tools.Reconstruct") and "Distance(" in feedback[1].output_summary
    assert [f.step for f in feedback] == [0, 1, 2, 2] and feedback[1].max_steps == 30
    # the chair and table points the distance runs between, in base_link: a rigid move keeps their distance
    assert [p.header.frame_id for p in result.points] == ["base_link", "base_link"]
    a, b = (np.array([p.point.x, p.point.y, p.point.z]) for p in result.points)
    assert np.linalg.norm(a - b) == pytest.approx(result.value, abs=0.001)
    # A subscriber that joins now still gets the answer: markers, clouds and text are latched.
    (markers,) = graph.client.latched(MarkerArray, "/spatialclaw/markers")
    first = markers.markers[0]
    assert first.action == 3 and first.ns.startswith("answer_")  # DELETEALL of the goal's namespace first
    assert {m.ns for m in markers.markers} == {first.ns} and {m.header.frame_id for m in markers.markers} == {"base_link"}
    assert markers.markers[-1].text == result.answer
    (cloud,) = graph.client.latched(PointCloud2, "/spatialclaw/cloud/reconstruction")
    assert cloud.header.frame_id == "base_link" and cloud.width > 500 and cloud.point_step == 16
    (text,) = graph.client.latched(String, "/spatialclaw/answer")
    record = json.loads(text.data)
    assert (record["question"], record["answer"], record["frame"]) == (QUESTION, result.answer, "base_link")
    graph.answered_namespace = first.ns


def test_diagnostics_report_inputs_tf_endpoint_and_goals(graph):
    pytest.importorskip("diagnostic_msgs", reason="the ros-jazzy-diagnostic-msgs wheel is not installed")
    from diagnostic_msgs.msg import DiagnosticArray

    def complete(messages):
        return len(messages[-1].status) == 5

    (message,) = graph.client.collect(DiagnosticArray, "/diagnostics", count=1, until=complete)[-1:]
    statuses = {s.name: s for s in message.status}
    front = statuses["spatialclaw: camera front"]
    values = {kv.key: kv.value for kv in front.values}
    assert front.level == b"\x00", front.message
    assert float(values["colour_rate_hz"]) == pytest.approx(2.0, abs=0.5)  # the recording's rate
    assert int(values["frames_buffered"]) > 0 and int(values["frames_with_depth"]) > 0
    assert statuses["spatialclaw: camera rear"].level == b"\x01"  # nothing on /rear/image_raw
    assert "no images on /rear/image_raw" in statuses["spatialclaw: camera rear"].message
    assert statuses["spatialclaw: tf"].level == b"\x00", statuses["spatialclaw: tf"].message
    endpoint = statuses["spatialclaw: model endpoint"]
    assert endpoint.level == b"\x00" and "reachable" in endpoint.message
    goals = {kv.key: kv.value for kv in statuses["spatialclaw: goals"].values}
    assert int(goals["finished"]) >= 1 and float(goals["last_goal_latency_s"]) > 0


@pytest.mark.parametrize("where", ["cell", "model call"])
def test_cancel_stops_the_running_step_quickly(graph, where):
    if where == "cell":
        graph.script.push("main", cell("spin = 0\nwhile True:\n    spin += 1"))
    else:
        from spatialclaw_ros.llm.scripted_server import Turn
        graph.script.push("main", Turn(text=cell("ReturnAnswer(1)"), delay_s=60))
    feedback = []
    handle = graph.client.send(feedback, question=COUNT_QUESTION)
    deadline = time.monotonic() + 30
    while graph.script.pending("main") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not graph.script.pending("main"), "the model was never asked"
    assert feedback and feedback[0].stage == "buffering"
    time.sleep(1.0)  # well inside the cell or the model call
    asked = time.monotonic()
    graph.client.cancel(handle)
    status, result = graph.client.result(handle, timeout_s=30)
    took = time.monotonic() - asked
    assert status == CANCELED and result.error_code == result.ERROR_CANCELED and not result.success
    assert took < 5.0, f"cancel took {took:.1f} s"
    assert "cancel" in result.error_message
    graph.script.push("main", cell("ReturnAnswer(len(InputImages))"))
    status, result = graph.client.ask(question=COUNT_QUESTION, cameras=["front"])
    assert status == SUCCEEDED and result.value == 6  # the node keeps serving


def publish_rear_images(graph, stamp_s: float) -> None:
    """Images for camera rear, whose frame no transform names (so it has no pose), stamped around ``stamp_s``."""
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    image_pub = graph.client.node.create_publisher(Image, "/rear/image_raw", 10)
    info_pub = graph.client.node.create_publisher(CameraInfo, "/rear/camera_info", 10)
    deadline = time.monotonic() + 20
    while image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    for i in range(4):
        header = Header(stamp=Time(sec=int(stamp_s + 0.25 * i), nanosec=int((stamp_s + 0.25 * i) % 1 * 1e9)),
                        frame_id="rear_optical_frame")
        info_pub.publish(CameraInfo(header=header, width=4, height=3, k=[5.0, 0, 2, 0, 5.0, 1.5, 0, 0, 1]))
        image_pub.publish(Image(header=header, width=4, height=3, encoding="rgb8", step=12, data=bytes(36)))
        time.sleep(0.1)
    graph.client.node.destroy_publisher(image_pub)
    graph.client.node.destroy_publisher(info_pub)


def test_each_bad_goal_gets_its_code_and_the_node_keeps_serving(graph):
    from builtin_interfaces.msg import Time
    from spatialclaw_ros.llm.scripted_server import Turn

    codes = graph.client.SpatialQuery.Result
    past = time.time() - 300.0
    publish_rear_images(graph, past)
    cases = [
        ({"question": "   "}, codes.ERROR_EMPTY_QUESTION, "question is empty"),
        ({"question": QUESTION, "cameras": ["left"]}, codes.ERROR_UNKNOWN_CAMERA, "unknown camera(s) ['left']"),
        ({"question": QUESTION, "target_frame": "odom"}, codes.ERROR_UNKNOWN_TARGET_FRAME, "'odom' is not in the TF tree"),
        ({"question": QUESTION, "stamp": Time(sec=1000)}, codes.ERROR_NO_FRAMES, "no frames in the window"),
        ({"question": QUESTION, "cameras": ["rear"], "stamp": Time(sec=int(past) + 1), "window_sec": 2.0},
         codes.ERROR_TF, "camera rear: none of its"),
    ]
    for goal, code, text in cases:
        status, result = graph.client.ask(**goal)
        assert (status, result.error_code, result.success) == (ABORTED, code, False), (goal, result.error_message)
        assert text in result.error_message
        assert (Path(result.session_dir) / "result.json").is_file()
    graph.script.push("main", Turn(status=500, text="the model server broke"))
    status, result = graph.client.ask(question=COUNT_QUESTION, cameras=["front"])
    assert (status, result.error_code) == (ABORTED, codes.ERROR_MODEL) and "500" in result.error_message
    graph.script.push("main", Turn(text=cell("ReturnAnswer(1)"), delay_s=30))
    status, result = graph.client.ask(question=COUNT_QUESTION, cameras=["front"], timeout_sec=1.5)
    assert (status, result.error_code) == (ABORTED, codes.ERROR_DEADLINE) and result.elapsed_sec < 10
    graph.script.clear("main")  # on a busy machine the deadline can fire before the main call takes its turn
    assert all(r.successful for r in graph.client.set_parameters(model__base_url="http://127.0.0.1:9/v1"))
    try:
        status, result = graph.client.ask(question=COUNT_QUESTION, cameras=["front"])
        assert (status, result.error_code) == (ABORTED, codes.ERROR_MODEL_UNREACHABLE)
        assert "127.0.0.1:9" in result.error_message
    finally:
        assert all(r.successful for r in graph.client.set_parameters(model__base_url=graph.server.url))
    graph.script.push("main", cell("ReturnAnswer(len(InputImages))"))
    status, result = graph.client.ask(question=COUNT_QUESTION, cameras=["front"])
    assert status == SUCCEEDED and result.answer == "6"


def test_a_second_goal_while_busy_under_each_policy(graph):
    from spatialclaw_ros.llm.scripted_server import Turn

    codes = graph.client.SpatialQuery.Result
    slow = Turn(text=cell("ReturnAnswer(len(InputImages))"), delay_s=3.0)
    graph.script.push("main", slow)
    running = []
    first = graph.client.send(running, question=COUNT_QUESTION, cameras=["front"])
    while not running:
        time.sleep(0.05)
    started = time.monotonic()
    status, result = graph.client.ask(question=COUNT_QUESTION)
    assert (status, result.error_code) == (ABORTED, codes.ERROR_BUSY) and "'reject'" in result.error_message
    assert time.monotonic() - started < 2.0
    assert graph.client.result(first)[0] == SUCCEEDED

    refused = graph.client.set_parameters(goals__policy="bogus")
    assert not refused[0].successful and "not one of reject, queue" in refused[0].reason
    read_only = graph.client.set_parameters(buffer__seconds=5.0)
    assert not read_only[0].successful
    assert all(r.successful for r in graph.client.set_parameters(goals__policy="queue", goals__queue_size=1))
    try:
        graph.script.push("main", slow, cell("ReturnAnswer(len(InputImages))"))
        running, waiting = [], []
        first = graph.client.send(running, question=COUNT_QUESTION, cameras=["front"])
        while not running:
            time.sleep(0.05)
        second = graph.client.send(waiting, question=COUNT_QUESTION, cameras=["front"])
        status, result = graph.client.ask(question=COUNT_QUESTION)
        assert (status, result.error_code) == (ABORTED, codes.ERROR_BUSY) and "1 are already waiting" in result.error_message
        assert graph.client.result(first)[0] == SUCCEEDED
        status, result = graph.client.result(second)
        assert status == SUCCEEDED and result.answer == "6"
        assert waiting[0].stage == "queued" and [f.stage for f in waiting[1:3]] == ["buffering", "step 1"]
    finally:
        graph.client.set_parameters(goals__policy="reject")


def test_a_replayed_bag_answers_like_the_ground_truth_and_like_offline(graph, tmp_path):
    import rclpy
    from visualization_msgs.msg import MarkerArray

    from spatialclaw_ros.config import load_config
    from spatialclaw_ros.offline import ask_bag
    from spatialclaw_ros.scenes.bag import read_ground_truth

    env = ros_environment(DOMAIN + 90)
    node = Process(node_command(graph.params("replay", use_sim_time=True)), env, "replay node")
    player = None
    context = rclpy.Context()
    saved = os.environ["ROS_DOMAIN_ID"]
    try:
        node.wait_for("spatialclaw node ready", 90)
        player = Process(player_command(graph.bag, "--clock", "--hold", "--wait-for-subscribers", "20"), env, "player")
        player.wait_for("FINISHED", 60)
        os.environ["ROS_DOMAIN_ID"] = env["ROS_DOMAIN_ID"]
        rclpy.init(context=context)
        client = GraphClient(context)
        try:
            graph.script.push("main", *measuring_cells(graph.scene))
            status, live = client.ask(question=QUESTION)
            assert status == SUCCEEDED, live.error_message
            (markers,) = client.latched(MarkerArray, "/spatialclaw/markers")
        finally:
            client.close()
    finally:
        os.environ["ROS_DOMAIN_ID"] = saved
        context.try_shutdown()
        for process in (player, node):
            if process is not None:
                process.stop()
    assert abs(live.value - graph.truth.closest) <= TOLERANCE_M, (live.value, graph.truth.closest)
    # the answer's points lie on the chair and on the table (within the surface samples' spacing)
    truth = read_ground_truth(graph.bag)
    for label, point in zip(("chair", "table"), live.points):
        xyz = np.array([point.point.x, point.point.y, point.point.z])
        assert np.linalg.norm(truth.object(label).points - xyz, axis=1).min() < 0.05, (label, xyz)
    spheres = [m for m in markers.markers if m.type == 2]
    assert [(m.pose.position.x, m.pose.position.y) for m in spheres] == [(p.point.x, p.point.y) for p in live.points]
    assert {m.header.frame_id for m in markers.markers} == {"map"}
    # the node's clock is the bag's: the markers carry the newest frame's stamp
    assert markers.markers[0].header.stamp.sec == int(graph.scene.stamp(graph.scene.n_frames - 1))

    graph.script.push("main", *measuring_cells(graph.scene))
    config = load_config(graph.config, overrides={"agent": {"sessions_dir": str(tmp_path / "sessions")}})
    offline = ask_bag(graph.bag, QUESTION, config, out_bag=tmp_path / "answer")
    assert offline.result.status == "answered", offline.result.error_message
    assert abs(offline.result.answer.value - graph.truth.closest) <= TOLERANCE_M
    assert abs(offline.result.answer.value - live.value) <= 0.01
    assert offline.out_bag is not None and any(offline.out_bag.glob("*.mcap"))
    assert offline.result.session_dir.parent == tmp_path / "sessions"


def test_images_the_cells_show_go_to_the_debug_topic(graph):
    import threading

    from sensor_msgs.msg import Image

    received, arrived = [], threading.Event()

    def on_image(message):
        received.append(message)
        arrived.set()

    subscription = graph.client.node.create_subscription(Image, "/spatialclaw/debug_image", on_image, 10)
    try:
        time.sleep(1.0)  # discovery of the new subscription
        graph.script.push("main", cell("show(InputImages[0], label='first key frame')\nReturnAnswer(len(InputImages))"))
        status, result = graph.client.ask(question=COUNT_QUESTION, cameras=["front"])
        assert status == SUCCEEDED, result.error_message
        assert arrived.wait(10)
    finally:
        graph.client.node.destroy_subscription(subscription)
    (image,) = received
    assert (image.width, image.height, image.encoding) == (320, 240, "rgb8")
