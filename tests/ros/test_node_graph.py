"""The node on a real ROS 2 graph, driven with a real rclpy ActionClient: the node launched as the README says
(``ros2 launch spatialclaw_ros spatialclaw.launch.py``), the project's bag player looping a synthetic room
restamped to wall time (``ros2 run spatialclaw_ros spatialclaw_bag_player``), and the scripted model over real
HTTP playing the agent's cells. The README's ros2 commands themselves are run by test_ros2_cli.py. Run under the
ROS venv (see conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from graph_support import (QUESTION, READY_LINE, GraphClient, Process, Room, cell, in_environment, launch_command,
                           measuring_cells, player_command, ros_environment)

pytestmark = pytest.mark.ros

SUCCEEDED, CANCELED, ABORTED = 4, 5, 6  # action_msgs/GoalStatus
COUNT_QUESTION = "How many images are there?"
TOLERANCE_M = 0.03
DOMAIN = 10 + os.getpid() % 40  # 10..49 (test_ros2_cli.py: 50..94); Fast DDS wants <= 101
#: The live node keeps 4 s of frames (the looped recording is 3 s long), so a goal queued longer than that would
#: find none of the frames it asked for had it not taken them on arrival.
BUFFER_S = 4.0


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    import rclpy

    graph = Room(tmp_path_factory.mktemp("graph"))
    env = ros_environment(DOMAIN)
    with in_environment(env):
        params = graph.params("live", buffer={"seconds": BUFFER_S}, frames={"world_frame": "map"})
        node = Process(launch_command(params), env, "node")
        player = None
        context = rclpy.Context()
        try:
            node.wait_for(READY_LINE, 90)
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
                    (graph.tmp / f"{process.name}.log").write_text(process.output())  # kept for a post-mortem
            graph.close()
    assert "Traceback" not in node.output(), node.output()[-3000:]  # Ctrl-C (the launch's SIGINT) ends it quietly


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


def test_diagnostics_report_state_inputs_tf_endpoint_goals_sandbox_and_perception(graph):
    from diagnostic_msgs.msg import DiagnosticArray

    def complete(messages):  # all statuses, and not the instant /tf pauses while the recording loops
        status = messages[-1].status
        return len(status) == 8 and all(s.level == b"\x00" for s in status if s.name == "spatialclaw: tf")

    (message,) = graph.client.collect(DiagnosticArray, "/diagnostics", count=1, until=complete)[-1:]
    statuses = {s.name: s for s in message.status}
    assert statuses["spatialclaw: node"].level == b"\x00" and statuses["spatialclaw: node"].message == "serving goals"
    front = statuses["spatialclaw: camera front"]
    values = {kv.key: kv.value for kv in front.values}
    assert front.level == b"\x00", front.message
    assert float(values["colour_rate_hz"]) == pytest.approx(2.0, abs=0.8)  # the recording's, over a 4 s buffer
    assert int(values["frames_buffered"]) > 0 and int(values["frames_with_depth"]) > 0
    assert statuses["spatialclaw: camera rear"].level == b"\x01"  # nothing on /rear/image_raw
    assert "no images on /rear/image_raw" in statuses["spatialclaw: camera rear"].message
    tf = statuses["spatialclaw: tf"]
    tf_values = {kv.key: kv.value for kv in tf.values}
    assert tf.level == b"\x00", tf.message
    assert int(tf_values["dynamic_frames"]) == 1 and int(tf_values["static_frames"]) == 2  # base_link; link, optical
    endpoint = statuses["spatialclaw: model endpoint"]
    assert endpoint.level == b"\x00" and "reachable" in endpoint.message
    goals = {kv.key: kv.value for kv in statuses["spatialclaw: goals"].values}
    assert int(goals["finished"]) >= 1 and float(goals["last_goal_latency_s"]) > 0
    perception = {kv.key: kv.value for kv in statuses["spatialclaw: perception"].values}
    assert perception == {"reconstruction": "sensor on no model, loaded", "segmentation": "classical on no model, loaded"}
    sandbox = statuses["spatialclaw: kernel sandbox"]
    layers = {kv.key: kv.value for kv in sandbox.values}
    if layers:  # KernelPool.sandbox_layers(): one key per layer
        assert all(value.startswith(("active", "OFF")) for value in layers.values()), layers
    else:
        assert "no kernel worker has reported" in sandbox.message


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
        ({"question": QUESTION, "cameras": ["rear"], "stamp": Time(sec=int(past) + 3), "window_sec": 5.0},
         codes.ERROR_TF, "camera rear: none of its"),  # and then tf2's own message:
    ]
    for goal, code, text in cases:
        status, result = graph.client.ask(**goal)
        assert (status, result.error_code, result.success) == (ABORTED, code, False), (goal, result.error_message)
        assert text in result.error_message
        if code == codes.ERROR_TF:
            assert '"rear_optical_frame" passed to lookupTransform argument source_frame does not exist' in \
                result.error_message
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
        assert [f.stage for f in waiting[:3]] == ["buffering", "queued", "step 1"]  # frames taken, then the wait
    finally:
        graph.client.set_parameters(goals__policy="reject")


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


def test_a_queued_goal_keeps_the_frames_it_arrived_to(graph):
    """Under the queue policy a goal's frames are taken when it arrives: it waits longer than the buffer keeps
    frames, and is still answered about the frames of its own window."""
    from spatialclaw_ros.frames import FrameSet
    from spatialclaw_ros.llm.scripted_server import Turn

    wait_s = BUFFER_S + 2.0
    assert all(r.successful for r in graph.client.set_parameters(goals__policy="queue", goals__queue_size=2))
    try:
        graph.script.push("main", Turn(text=cell("ReturnAnswer(len(InputImages))"), delay_s=wait_s),
                          cell("ReturnAnswer(len(InputImages))"))
        running, waiting = [], []
        first = graph.client.send(running, question=COUNT_QUESTION, cameras=["front"])
        while not running:
            time.sleep(0.05)
        arrived = time.time()
        second = graph.client.send(waiting, question=COUNT_QUESTION, cameras=["front"])
        assert graph.client.result(first)[0] == SUCCEEDED
        status, result = graph.client.result(second)
        ran = time.time()
    finally:
        graph.client.set_parameters(goals__policy="reject")
    assert status == SUCCEEDED, result.error_message
    assert ran - arrived > BUFFER_S  # by then the buffer no longer holds any frame it was given
    frames = FrameSet.load(Path(result.session_dir) / "inputs")
    stamps = [f.stamp for f in frames.frames]
    assert result.answer == str(len(stamps)) and len(stamps) >= 2
    assert max(stamps) <= arrived + 0.1 and max(stamps) < ran - BUFFER_S
    assert [f.stage for f in waiting[:2]] == ["buffering", "queued"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a read-only and a full tmpfs for the sessions dir")
@pytest.mark.parametrize("mount", ["ro,size=1m", "size=64k"])
def test_a_sessions_dir_that_cannot_be_written_ends_each_goal_and_the_node_keeps_serving(graph, tmp_path, mount):
    target = tmp_path / "sessions"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", mount, "tmpfs", str(target)], check=True)
    try:
        if "ro" not in mount:  # fill it, so the first write fails
            (target / "filler").write_bytes(b"x" * 60_000)
        assert all(r.successful for r in graph.client.set_parameters(agent__sessions_dir=str(target)))
        graph.script.push("main", cell("show(InputImages[0], label='first')\nReturnAnswer(len(InputImages))"))
        status, result = graph.client.ask(question=COUNT_QUESTION, cameras=["front"], timeout_sec=60.0)
        failure = "Read-only file system" if "ro" in mount else "No space left on device"
        assert failure in result.error_message, result.error_message
        assert status == SUCCEEDED and result.answer == "6"  # the answer is kept when its log cannot be written
    finally:
        graph.client.set_parameters(agent__sessions_dir=str(graph.sessions))
        graph.script.clear("main")
        subprocess.run(["umount", str(target)], check=True)
    graph.script.push("main", cell("ReturnAnswer(len(InputImages))"))
    status, result = graph.client.ask(question=COUNT_QUESTION, cameras=["front"])
    assert status == SUCCEEDED and result.answer == "6" and Path(result.session_dir).parent == graph.sessions
