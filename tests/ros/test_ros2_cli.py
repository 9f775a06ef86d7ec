"""The README's ros2 commands, run as written (read from README.md's block) on a real graph over loopback: the
node launched with a params file for two cameras (front fed by the project's bag player looping a synthetic room,
rear silent) and the scripted model over real HTTP playing the agent's cells; ``ros2 node/action/param/topic/
lifecycle`` against it; the launch with ``autostart:=false``; and the replay launch. Each launch runs on its own
ROS_DOMAIN_ID, with that domain's ros2 daemon started before it and stopped after it. Run under the ROS venv (see
conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from graph_support import (LAUNCH, QUESTION, READY_LINE, Process, Room, cell, measuring_cells, player_command,
                           readme_command, ros2, ros_environment, stop_daemon)

pytestmark = pytest.mark.ros

DOMAIN = 50 + os.getpid() % 40  # 50..94 with the +5 below (test_node_graph.py: 10..49); Fast DDS wants <= 101
TOLERANCE_M = 0.03
COUNT_QUESTION = "How many images are there?"
SEND_GOAL = "ros2 action send_goal /spatialclaw/query"


class Graph:
    """One launch on its own domain: its processes, environment and ros2 commands."""

    def __init__(self, room: Room, domain: int, command: list[str]) -> None:
        self.room, self.env = room, ros_environment(domain)
        ros2(self.env, ["ros2", "daemon", "start"])  # a warm daemon: a command that starts one sees too little
        self.processes = [Process(command, self.env, "launch")]

    @property
    def launch(self) -> Process:
        return self.processes[0]

    def start(self, *args: str, name: str) -> Process:
        self.processes.append(Process(list(args), self.env, name))
        return self.processes[-1]

    def run(self, start: str, timeout_s: float = 60.0, **files: Path) -> str:
        """The README command that begins with ``start``, run to its end; its output."""
        return ros2(self.env, readme_command(start, **files), timeout_s).stdout

    def poll(self, start: str, done, timeout_s: float = 30.0) -> str:
        """Run the README command until ``done(output)`` (a cold daemon reports an empty graph for a while)."""
        deadline = time.monotonic() + timeout_s
        while True:
            output = self.run(start)
            if done(output) or time.monotonic() > deadline:
                return output
            time.sleep(0.5)

    def stop(self) -> str:
        """Ctrl-C every process, stop the domain's daemon; the launch's output."""
        for process in reversed(self.processes):
            process.stop()
        stop_daemon(self.env)
        return self.launch.output()


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    room = Room(tmp_path_factory.mktemp("cli"))
    yield room
    room.close()


@pytest.fixture(scope="module")
def graph(room):
    graph = Graph(room, DOMAIN, readme_command(LAUNCH, params=room.params("cameras")))
    try:
        graph.launch.wait_for(READY_LINE, 90)
        graph.start(*player_command(room.bag, "--loop", "--wait-for-subscribers", "20"), name="player").wait_for(
            "PLAYING", 60)
        time.sleep(3.5)  # one pass of the 3 s recording into the buffer
        yield graph
    finally:
        output = graph.stop()
    assert "Traceback" not in output, output[-3000:]


def printed(output: str, title: str) -> list[dict]:
    """Every message ``ros2 action send_goal`` printed under ``title`` ("Feedback" or "Result"), as YAML: the
    first field follows the title on an indented line, the rest start at the margin."""
    blocks = re.findall(rf"^{title}:\n    (.*?)(?=^Feedback:\n|^Result:\n|^Goal finished|\Z)", output, re.M | re.S)
    return [yaml.safe_load(block) for block in blocks]


def result_of(output: str) -> dict:
    (result,) = printed(output, "Result")
    return result


def test_the_launched_node_is_one_node_with_one_action_server(graph):
    names = graph.poll("ros2 node list", lambda out: "/spatialclaw_ingest" in out).split()
    assert names.count("/spatialclaw") == 1 and names.count("/spatialclaw_ingest") == 1, names
    assert len(names) == len(set(names)), names
    info = graph.poll("ros2 action info /spatialclaw/query", lambda out: "Action servers: 1" in out)
    assert re.search(r"Action servers: 1\n\s+/spatialclaw\n", info), info


def test_send_goal_prints_feedback_and_the_distance_with_its_points(graph):
    room = graph.room
    room.script.push("main", *measuring_cells(room.scene))
    output = graph.run(SEND_GOAL, timeout_s=240)
    assert "Goal accepted" in output and "Goal finished with status: SUCCEEDED" in output, output[-3000:]
    feedback = printed(output, "Feedback")
    assert [f["stage"] for f in feedback][:3] == ["buffering", "step 1", "step 2"]
    assert feedback[1]["code"].startswith("recon = tools.Reconstruct") and feedback[1]["bytes_sent"] >= 0
    result = result_of(output)
    value = result["value"]
    assert (result["success"], result["unit"], result["answer_type"], result["error_code"]) == (True, "m", "number", 0)
    assert abs(value - room.truth.closest) <= TOLERANCE_M, (value, room.truth.closest)
    a, b = (np.array([p["point"][axis] for axis in "xyz"]) for p in result["points"])
    assert {p["header"]["frame_id"] for p in result["points"]} == {"base_link"}
    assert np.linalg.norm(a - b) == pytest.approx(value, abs=0.001)
    echoed = graph.run("ros2 topic echo --once --full-length /spatialclaw/answer")
    record = json.loads(yaml.safe_load(echoed.split("---")[0])["data"])
    assert (record["question"], record["value"], record["frame"]) == (QUESTION.lower(), value, "base_link")
    assert record["status"] == "answered" and Path(record["session_dir"], "result.json").is_file()


def test_param_describe_get_and_set(graph):
    described = graph.run("ros2 param describe /spatialclaw buffer.seconds")
    for line in ("Type: double", "Description: seconds of frames kept per camera", "Read only: true",
                 "Min value: 0.5", "Max value: 3600.0"):
        assert line in described, described
    assert graph.run("ros2 param get /spatialclaw perception.reconstruction").strip() == "String value is: sensor"
    assert graph.run("ros2 param set /spatialclaw query.window_s 8.0").strip() == "Set parameter successful"
    assert ros2(graph.env, ["ros2", "param", "get", "/spatialclaw", "query.window_s"]).stdout.strip() == \
        "Double value is: 8.0"


def test_lifecycle_deactivate_stops_serving_and_activate_serves_again(graph):
    assert graph.run("ros2 lifecycle get /spatialclaw").strip() == "active [3]"
    seen = len(graph.launch.lines)
    assert "Transitioning successful" in graph.run("ros2 lifecycle set /spatialclaw deactivate")
    graph.launch.wait_for("deactivated: not serving goals; perception models freed", 10, start=seen)
    assert "Action servers: 0" in graph.poll("ros2 action info /spatialclaw/query",
                                             lambda out: "Action servers: 0" in out)
    assert graph.run("ros2 lifecycle get /spatialclaw").strip() == "inactive [2]"
    assert "Transitioning successful" in graph.run("ros2 lifecycle set /spatialclaw activate")
    graph.launch.wait_for(READY_LINE, 10, start=seen)
    assert "Action servers: 1" in graph.poll("ros2 action info /spatialclaw/query",
                                             lambda out: "Action servers: 1" in out)


def autostart_off(room: Room, params: Path, domain: int) -> Graph:
    """The README's launch that leaves the node unconfigured, on its own domain."""
    graph = Graph(room, domain, readme_command(f"{LAUNCH} autostart:=false", params=params))
    graph.launch.wait_for("spatialclaw node unconfigured", 90)
    graph.poll("ros2 lifecycle get /spatialclaw", lambda out: "[1]" in out)  # the daemon has discovered it
    return graph


def test_autostart_false_leaves_the_node_unconfigured_until_configure(room):
    graph = autostart_off(room, room.params("unconfigured"), DOMAIN + 1)
    try:
        assert graph.poll("ros2 lifecycle get /spatialclaw", lambda out: "[1]" in out).strip() == "unconfigured [1]"
        assert "Transitioning successful" in graph.run("ros2 lifecycle set /spatialclaw configure")
        assert "Transitioning successful" in graph.run("ros2 lifecycle set /spatialclaw activate")
        graph.launch.wait_for(READY_LINE, 30)
        # Ctrl-C in the middle of a goal: the launch and the node end quietly.
        graph.start(*player_command(room.bag, "--loop", "--wait-for-subscribers", "20"), name="player").wait_for(
            "FINISHED", 60)
        room.script.push("main", cell("spin = 0\nwhile True:\n    spin += 1"))
        goal = graph.start(*readme_command(SEND_GOAL), name="send_goal")
        goal.wait_for("stage: buffering", 60)
        time.sleep(1.0)
    finally:
        output = graph.stop()
        room.script.clear("main")
    assert "process has finished cleanly" in output and "Traceback" not in output, output[-3000:]


@pytest.mark.parametrize("mistake, reason", [
    ({"buffer": {"secnds": 30.0}, "query": {"window_s": 10}},
     "the params file sets parameters this node does not have: buffer.secnds (did you mean buffer.seconds?)"),
    ({"perception": {"reconstruction": "da3", "da3": {"model_dir": "/nonexistent/da3"}}},
     "the da3 reconstruction backend needs perception.da3.model_dir"),
])
def test_configure_fails_with_the_reason_on_a_bad_params_file(room, mistake, reason):
    domain = DOMAIN + 2 + (1 if "perception" in mistake else 0)
    graph = autostart_off(room, room.params("mistaken", **mistake), domain)
    try:
        output = graph.run("ros2 lifecycle set /spatialclaw configure")
        assert "Transitioning failed" in output, output
        graph.launch.wait_for(reason, 10)
        if "query" in mistake:  # an integer for a float parameter is named too
            graph.launch.wait_for("query.window_s", 1)
        assert graph.poll("ros2 lifecycle get /spatialclaw", lambda out: "[1]" in out).strip() == "unconfigured [1]"
    finally:
        output = graph.stop()
    assert "Traceback" not in output, output[-3000:]


def test_ctrl_c_while_the_node_starts_prints_no_traceback(room):
    """Ctrl-C while the node's executable (as ``ros2 run`` and launch find it) is still importing ROS, the agent
    and NumPy, or declaring its parameters."""
    env = ros_environment(DOMAIN + 4)
    executable = str(Path(sys.prefix) / "lib" / "spatialclaw_ros" / "spatialclaw_node")
    for delay_s in (0.3, 0.8, 1.5):
        node = Process([executable], env, "node")
        time.sleep(delay_s)
        code = node.stop()
        assert "Traceback" not in node.output() and code in (0, 130), (delay_s, code, node.output())


def test_the_replay_launch_answers_like_the_truth_and_like_offline_with_the_same_poses(room, tmp_path):
    from spatialclaw_ros.bag_reader import read_bag
    from spatialclaw_ros.config import load_config
    from spatialclaw_ros.frames import FrameSet
    from spatialclaw_ros.offline import ask_bag

    params = room.params("replay")
    graph = Graph(room, DOMAIN + 5, readme_command("ros2 launch spatialclaw_ros replay.launch.py", params=params,
                                                   bag=room.bag))
    try:
        graph.launch.wait_for(READY_LINE, 90)
        graph.launch.wait_for("FINISHED", 60)  # one pass of the bag; the player holds the last /clock
        room.script.push("main", *measuring_cells(room.scene))
        output = graph.run(SEND_GOAL, timeout_s=240)
    finally:
        launch_output = graph.stop()
    assert "Goal finished with status: SUCCEEDED" in output, output[-3000:]
    assert "Traceback" not in launch_output, launch_output[-3000:]
    live = result_of(output)["value"]
    assert abs(live - room.truth.closest) <= TOLERANCE_M, (live, room.truth.closest)

    # The same bag through tf2 (the node) and through the offline reader's TF buffer: the same camera poses.
    node_frames = FrameSet.load(Path(result_of(output)["session_dir"]) / "inputs")
    config = load_config(env={}, overrides={"agent": {"sessions_dir": str(tmp_path / "sessions"), "plan": False},
                                            "model": {"base_url": room.server.url, "max_retries": 0},
                                            "kernel": {"memory_limit_mb": 2048}})
    offline_frames = read_bag(room.bag, config.frames)
    by_stamp = {round(f.stamp, 6): f for f in offline_frames.frames}
    assert node_frames.world_frame == offline_frames.world_frame == "map" and len(node_frames.frames) == 6
    for frame in node_frames.frames:
        offline = by_stamp[round(frame.stamp, 6)]
        np.testing.assert_allclose(frame.T_world_camera, offline.T_world_camera, atol=1e-6)
        np.testing.assert_allclose(frame.poses["base_link"], offline.poses["base_link"], atol=1e-6)

    room.script.push("main", *measuring_cells(room.scene))
    answered = ask_bag(room.bag, QUESTION, config, out_bag=tmp_path / "answer")
    assert answered.result.status == "answered", answered.result.error_message
    assert abs(answered.result.answer.value - live) <= 0.01
    assert answered.out_bag is not None and any(answered.out_bag.glob("*.mcap"))
