"""Parts of the ROS graph tests: a private DDS domain, processes started and awaited by their readiness
lines, the README's ros2 commands, the synthetic room as a rosbag2, and the scripted model's cells that
measure it."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "How far is the chair from the table?"
#: The line before the README's block of ros2 commands that test_ros2_cli.py runs as written.
README_MARKER = "<!-- ros2 commands run as written by tests/ros/test_ros2_cli.py -->"
#: Placeholders in those commands, for the files each test makes.
README_PARAMS, README_BAG = "my_cameras.yaml", "my_run.mcap"
READY_LINE = "spatialclaw node active"


def ros_environment(domain_id: int) -> dict[str, str]:
    """The environment of every process of one test session: its own domain, discovery on localhost only, and
    this venv as the ament prefix (the ros2 tools find the installed packages there)."""
    env = dict(os.environ)
    env.update({"ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                "PYTHONUNBUFFERED": "1", "RCUTILS_COLORIZED_OUTPUT": "0", "AMENT_PREFIX_PATH": sys.prefix,
                "PATH": f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}"})
    env.pop("ROS_LOCALHOST_ONLY", None)
    return env


@contextlib.contextmanager
def in_environment(env: dict[str, str]):
    """``env`` set in this process's os.environ (rclpy contexts read the domain from it), restored afterwards."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def readme_commands() -> list[str]:
    """The README's ros2 commands (the bash block after README_MARKER), comments removed."""
    text = (ROOT / "README.md").read_text()
    block = re.search(re.escape(README_MARKER) + r"\s*```bash\n(.*?)```", text, re.S)
    assert block, f"README.md has no bash block after {README_MARKER!r}"
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def readme_command(start: str, **files: Path) -> list[str]:
    """The README command that is ``start``, or else the one that begins with it, split into arguments, with the
    placeholder files (``params``: my_cameras.yaml, ``bag``: my_run.mcap) replaced by the test's own."""
    lines = readme_commands()
    found = [line for line in lines if line == start] or [line for line in lines if line.startswith(start)]
    assert len(found) == 1, f"README has {len(found)} commands starting {start!r}: {found}"
    line = found[0].replace(README_PARAMS, str(files.get("params", README_PARAMS)))
    return shlex.split(line.replace(README_BAG, str(files.get("bag", README_BAG))))


def ros2(env: dict[str, str], args: list[str], timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    """Run a ros2 command line (``args`` begins with "ros2") to its end; stdout and stderr together."""
    assert args[0] == "ros2", args
    return subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout_s, cwd=ROOT)


class Process:
    """A child process whose output (stdout and stderr together) is collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str], name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.popen = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      cwd=ROOT, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, text: str, timeout_s: float, start: int = 0) -> str:
        """The first output line (from line ``start``) containing ``text``; fails with the output so far."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for line in self.lines[start:]:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.popen.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"{self.name}: no line with {text!r} within {timeout_s} s "
                                         f"(exit code {self.popen.poll()}); output:\n" + "\n".join(self.lines[-60:]))
                self._changed.wait(min(left, 0.5))

    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def interrupt(self) -> None:
        """SIGINT to its whole process group, as Ctrl-C in a terminal sends it (``ros2 run`` and ``ros2 launch``
        leave their children to get it that way)."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGINT)

    def stop(self, timeout_s: float = 20.0) -> int:
        """Ctrl-C (``interrupt``), then SIGKILL to the group if it does not exit in time; the exit code."""
        if self.popen.poll() is None:
            self.interrupt()
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self._reader.join(5)
        return self.popen.returncode


class Room:
    """The synthetic living room as a rosbag2 with its ground truth, and the scripted model server playing the
    turns each test queues; ``params`` writes a params file for a node that uses both."""

    def __init__(self, tmp: Path) -> None:
        from spatialclaw_ros.llm.scripted_server import ScriptedModelServer
        from spatialclaw_ros.scenes.bag import read_ground_truth
        from spatialclaw_ros.scenes.generator import living_room_side_view

        self.tmp = tmp
        self.scene = living_room_side_view()
        self.bag = write_room_bag(tmp / "room", self.scene)
        self.truth = read_ground_truth(self.bag).pair("chair", "table")
        self.script = ScriptQueue()
        self.server = ScriptedModelServer(self.script)
        self.sessions = tmp / "sessions"

    def params(self, name: str, **extra) -> Path:
        return node_params(self.tmp, name, self.server.url, self.sessions, **extra)

    def close(self) -> None:
        self.server.close()


def write_room_bag(path: Path, scene) -> Path:
    """Render ``scene`` into a rosbag2 (MCAP) with its ground truth beside it; returns the bag directory."""
    from spatialclaw_ros.scenes.bag import write_bag
    from spatialclaw_ros.scenes.render import render_scene

    return write_bag(scene, [r.frame for r in render_scene(scene)], path, camera=scene.mount.name)


def cell(code: str, reasoning: str = "Next step.") -> str:
    """A main-model reply: reasoning, then one python cell."""
    return f"{reasoning}\n```python\n{code}\n```"


def measuring_cells(scene) -> list[str]:
    """Cells that measure the chair-table distance: boxes from each object's corners (what a grounding model
    would give) projected into every key frame, segmented, their points pooled, then the closest distance."""
    corners = {label: np.round(scene.object(label).corners(), 4).tolist() for label in ("chair", "table")}
    measure = f"""
recon = tools.Reconstruct.Reconstruct(InputImages)
corners = {corners!r}
pooled = {{label: [] for label in corners}}
for image in InputImages:
    fi = image.frame_index
    T = np.asarray(recon.extrinsics[fi])
    K = recon.intrinsics[fi]
    for label, box3d in corners.items():
        cam = (np.asarray(box3d) - T[:3, 3]) @ T[:3, :3]
        if (cam[:, 2] < 0.2).any():
            continue
        u = K["fx"] * cam[:, 0] / cam[:, 2] + K["cx"]
        v = K["fy"] * cam[:, 1] / cam[:, 2] + K["cy"]
        box = [max(0.0, u.min()), max(0.0, v.min()), min(image.size[0], u.max() + 1), min(image.size[1], v.max() + 1)]
        if box[2] - box[0] < 8 or box[3] - box[1] < 8:
            continue
        mask = tools.SAM3.segment_image_by_box(image, box, label=label)
        pooled[label].append(mask.get_masked_points(recon, fi))
chair, table = (np.concatenate(pooled[label]) for label in ("chair", "table"))
d = tools.Geometry.closest_point_distance(chair, table)
print(d)
"""
    answer = "ReturnAnswer(round(d.value_m, 3), unit='m', evidence={'chair': d.point_a, 'table': d.point_b})"
    return [cell(measure.strip(), "Segment both objects in every key frame and measure."),
            cell(answer, "The distance is measured.")]


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


#: The README's launch command for live cameras (params_file: the placeholder).
LAUNCH = f"ros2 launch spatialclaw_ros spatialclaw.launch.py rviz:=false params_file:={README_PARAMS}"


def launch_command(params: Path) -> list[str]:
    """The README's ``ros2 launch`` of the node, with ``params`` as its params file."""
    return readme_command(LAUNCH, params=params)


def node_process(launch: Process, timeout_s: float = 30.0):
    """The spatialclaw_node process a ``ros2 launch`` started (a psutil.Process)."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for child in psutil.Process(launch.popen.pid).children(recursive=True):
            if any("spatialclaw_node" in part for part in child.cmdline()):
                return child
        time.sleep(0.1)
    raise AssertionError(f"{launch.name} started no spatialclaw_node within {timeout_s} s")


def player_command(bag: Path, *extra: str) -> list[str]:
    """The project's bag player, as ``ros2 run`` finds it in lib/spatialclaw_ros/."""
    return ["ros2", "run", "spatialclaw_ros", "spatialclaw_bag_player", str(bag), *extra]


def node_params(tmp: Path, name: str, server_url: str, sessions: Path, **extra) -> Path:
    """A params file for the graph tests: the scripted model, no plan, small kernels, cameras front (the room) and
    rear (no depth); ``extra`` (nested dicts) on top."""
    values = {"camera_names": ["front", "rear"], "cameras": {"rear": {"depth_topic": ""}},
              "model": {"base_url": server_url, "max_retries": 0},
              "agent": {"plan": False, "cell_timeout_s": 60.0, "sessions_dir": str(sessions)},
              "kernel": {"pool_size": 1, "memory_limit_mb": 2048}, "query": {"max_frames": 6},
              "diagnostics": {"period_s": 0.5, "endpoint_check_s": 2.0}}
    for key, value in extra.items():
        values[key] = {**values[key], **value} if isinstance(value, dict) and key in values else value
    return write_yaml(tmp / f"{name}.yaml", {"spatialclaw": {"ros__parameters": values}})


def stop_daemon(env: dict[str, str]) -> None:
    """Stop the ros2 daemon of this domain (the CLI starts one per ROS_DOMAIN_ID)."""
    subprocess.run(["ros2", "daemon", "stop"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=30, cwd=ROOT)


class ScriptQueue:
    """The scripted model's turns, queued per role by each test before it sends a goal (thread-safe)."""

    def __init__(self) -> None:
        self._turns: dict[str, list] = {}
        self._lock = threading.Lock()

    def push(self, role: str, *turns) -> None:
        with self._lock:
            self._turns.setdefault(role, []).extend(turns)

    def pending(self, role: str) -> int:
        with self._lock:
            return len(self._turns.get(role, []))

    def clear(self, role: str) -> None:
        """Drop the turns still queued for ``role`` (a goal that ended before asking for them)."""
        with self._lock:
            self._turns.pop(role, None)

    def __call__(self, request):
        with self._lock:
            turns = self._turns.get(request.role)
            if not turns:
                raise LookupError(f"no scripted turn queued for role {request.role!r}")
            return turns.pop(0)


def wait_future(future, timeout_s: float):
    """Block until an rclpy future (completed by an executor spinning elsewhere) is done; its result."""
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    if not done.wait(timeout_s):
        raise AssertionError(f"no answer within {timeout_s} s")
    return future.result()


class GraphClient:
    """The test's side of the graph: an action client, parameter client and subscriptions on one node, spun by a
    single-threaded executor in the background. Requests are sent from that executor's thread (``_request``):
    rclpy's clients store a request's future only after sending it, so a reply taken by another thread in
    between is dropped ("Ignoring unexpected goal response") and the request never completes."""

    def __init__(self, context, node_name: str = "spatialclaw") -> None:
        import rclpy
        from rclpy.action import ActionClient
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter_client import AsyncParameterClient
        from spatialclaw_msgs.action import SpatialQuery

        self.SpatialQuery = SpatialQuery
        self.node = rclpy.create_node("graph_test_client", context=context)
        self.action = ActionClient(self.node, SpatialQuery, f"/{node_name}/query")
        self.parameters = AsyncParameterClient(self.node, node_name)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        if not self.action.wait_for_server(timeout_sec=30):
            raise AssertionError(f"action server /{node_name}/query did not appear")

    def send(self, feedback: list | None = None, **fields):
        """Send a goal (fields of SpatialQuery.Goal); the accepted goal handle. Feedback is appended to ``feedback``."""
        goal = self.SpatialQuery.Goal(**fields)
        callback = None if feedback is None else (lambda message: feedback.append(message.feedback))
        handle = self._request(lambda: self.action.send_goal_async(goal, feedback_callback=callback), 30)
        assert handle.accepted, "the node accepts every goal and reports problems in the result"
        return handle

    def result(self, handle, timeout_s: float = 120.0):
        """(status, SpatialQuery.Result) of a sent goal."""
        response = self._request(handle.get_result_async, timeout_s)
        return response.status, response.result

    def ask(self, feedback: list | None = None, timeout_s: float = 120.0, **fields):
        return self.result(self.send(feedback, **fields), timeout_s)

    def cancel(self, handle) -> None:
        self._request(handle.cancel_goal_async, 30)

    def set_parameters(self, **values):
        """Set node parameters (dots written as __); the SetParametersResult of each."""
        from rclpy.parameter import Parameter

        parameters = [Parameter(name.replace("__", "."), value=value) for name, value in values.items()]
        return self._request(lambda: self.parameters.set_parameters(parameters), 30).results

    def _request(self, send, timeout_s: float):
        """Call ``send`` (which sends a request and returns its future) on the executor's thread; the reply."""
        async def request():
            return await send()

        return wait_future(self.executor.create_task(request), timeout_s)

    def latched(self, msg_type, topic: str, count: int = 1, timeout_s: float = 20.0) -> list:
        """The first ``count`` messages of a TRANSIENT_LOCAL subscription created now (a late joiner)."""
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        return self.collect(msg_type, topic, count, timeout_s, qos)

    def collect(self, msg_type, topic: str, count: int = 1, timeout_s: float = 20.0, qos=10, until=None) -> list:
        """Messages on ``topic`` until ``count`` have arrived (and ``until(messages)`` holds, if given)."""
        received: list = []
        enough = threading.Event()

        def on_message(message) -> None:
            received.append(message)
            if len(received) >= count and (until is None or until(received)):
                enough.set()

        subscription = self.node.create_subscription(msg_type, topic, on_message, qos)
        try:
            if not enough.wait(timeout_s):
                raise AssertionError(f"{len(received)} messages on {topic} within {timeout_s} s, wanted {count}")
        finally:
            self.node.destroy_subscription(subscription)
        return list(received)

    def close(self) -> None:
        self.executor.shutdown()
        self.action.destroy()
        self.node.destroy_node()
