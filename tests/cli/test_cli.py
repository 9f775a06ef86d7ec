"""The ``spatialclaw`` console script as a subprocess against a real scripted model server."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from spatialclaw_ros.llm.scripted_server import ScriptedModelServer, Turn

SPATIALCLAW = str(Path(sys.executable).parent / "spatialclaw")
QUESTION = "How many images are there?"


def cell(code: str) -> str:
    return f"Let me check.\n```python\n{code}\n```"


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "model": {"max_retries": 0},
        "agent": {"plan": False, "cell_timeout_s": 20.0, "sessions_dir": str(tmp_path / "sessions")},
        "kernel": {"memory_limit_mb": 2048},
    }))
    return path


def run(args, url="http://127.0.0.1:9/v1", timeout=120):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SPATIALCLAW_", "OPENAI_"))}
    env["SPATIALCLAW_BASE_URL"] = url
    return subprocess.run([SPATIALCLAW, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_ask_json_then_replay(config_file, images, tmp_path):
    script = {"main": [cell("n = len(InputImages)\nprint('n =', n)"), cell("ReturnAnswer(n)")]}
    with ScriptedModelServer(script) as server:
        done = run(["ask", QUESTION, "--images", *images, "--json", "--config", str(config_file),
                    "--out", str(tmp_path / "out")], server.url)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {"answer", "value", "unit", "steps", "low_confidence", "session_dir", "status",
                           "error_code", "error_message", "log_error"}
    assert (result["status"], result["value"], result["steps"], result["low_confidence"]) == ("answered", 2, 2, False)
    assert result["log_error"] == ""
    assert Path(result["session_dir"]).parent == tmp_path / "out"
    assert "step 1/30 ok: n = 2" in done.stderr and "step 2/30 answered" in done.stderr
    replayed = run(["replay", result["session_dir"], "--config", str(config_file)])
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "step 1: match" in replayed.stdout and "2/2 steps match" in replayed.stdout


def test_replay_reports_a_mismatch(config_file, images, tmp_path):
    script = {"main": [cell("print(len(InputImages))"), cell("ReturnAnswer(2)")]}
    with ScriptedModelServer(script) as server:
        done = run(["ask", QUESTION, "--images", *images, "--json", "--config", str(config_file)], server.url)
    session = Path(json.loads(done.stdout)["session_dir"])
    trace = session / "trace.jsonl"
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    for event in events:
        if event["kind"] == "cell" and event["step"] == 1:
            event["stdout"] = "3\n"  # pretend the recording saw something else
    trace.write_text("".join(json.dumps(event) + "\n" for event in events))
    replayed = run(["replay", str(session), "--config", str(config_file)])
    assert replayed.returncode == 1
    assert "step 1: MISMATCH" in replayed.stdout and "1/2 steps match" in replayed.stdout


def test_ask_from_a_video_prints_the_answer(config_file, tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (32, 24))
    for i in range(20):
        writer.write(np.full((24, 32, 3), i * 10, np.uint8))
    writer.release()
    script = {"main": [cell("print(Metadata.is_video, Metadata.total_frames, InputImages.frame_indices[-1])"),
                       cell("ReturnAnswer(len(InputImages))")]}
    with ScriptedModelServer(script) as server:
        done = run(["ask", QUESTION, "--video", str(path), "--config", str(config_file)], server.url)
    assert done.returncode == 0, done.stderr
    assert "True 20 19" in done.stderr
    assert done.stdout.strip() == "20"


def test_bad_input_exit_code(config_file, tmp_path):
    done = run(["ask", QUESTION, "--images", str(tmp_path / "missing.png"), "--config", str(config_file)])
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"spatialclaw: cannot read image {tmp_path / 'missing.png'}: "
                                                f"[Errno 2] No such file or directory: '{tmp_path / 'missing.png'}'"]


def test_model_failure_exit_code(config_file, images):
    done = run(["ask", QUESTION, "--images", *images, "--config", str(config_file)])
    assert done.returncode == 3
    assert "failed (model_unreachable): model endpoint http://127.0.0.1:9/v1 is unreachable" in done.stderr


def test_other_failure_exit_code(config_file, images):
    with ScriptedModelServer({"main": [cell("print(1)"), "ANSWER: lots"]}) as server:
        done = run(["ask", QUESTION, "--images", *images, "--max-steps", "1", "--json", "--config", str(config_file)],
                   server.url)
    assert done.returncode == 4
    assert json.loads(done.stdout)["error_code"] == "no_answer"
    assert "steps exhausted: asking for a final answer" in done.stderr


def test_deadline_flag(config_file, images):
    with ScriptedModelServer({"main": [Turn(text=cell("x = 1"), delay_s=30.0)]}) as server:
        done = run(["ask", QUESTION, "--images", *images, "--deadline", "1", "--config", str(config_file)], server.url)
    assert done.returncode == 4
    assert "(deadline_exceeded)" in done.stderr


def test_doctor(config_file):
    with ScriptedModelServer({}) as server:
        done = run(["doctor", "--config", str(config_file)], server.url)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert f"ok      model endpoint: {server.url} lists scripted-model" in lines
    assert "ok      kernel: runs cells" in lines
    assert any(line.startswith("ok      sandbox landlock: ABI") for line in lines)
    assert any(line.startswith("ok      sandbox seccomp: ") for line in lines)
    assert "ok      reconstruction backend sensor: spatialclaw_ros.perception.sensor:SensorBackend" in lines
    assert any(line.startswith(("ok      GPU", "missing GPU")) for line in lines)
    assert any(line.startswith(("ok      ROS 2", "missing ROS 2")) for line in lines)


def test_doctor_names_an_unreachable_endpoint(config_file):
    done = run(["doctor", "--config", str(config_file)])
    assert done.returncode == 1
    assert any(line.startswith("missing model endpoint: model endpoint http://127.0.0.1:9/v1 is unreachable")
               for line in done.stdout.splitlines())


def test_ctrl_c_cancels_a_running_question(config_file, images):
    with ScriptedModelServer({"main": [cell("while True:\n    pass")]}) as server:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("SPATIALCLAW_", "OPENAI_"))}
        env["SPATIALCLAW_BASE_URL"] = server.url
        process = subprocess.Popen([SPATIALCLAW, "ask", QUESTION, "--images", *images, "--config", str(config_file)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        while not server.requests and time.monotonic() < deadline:  # wait until the cell is about to run
            time.sleep(0.05)
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "spatialclaw: cancelled (cancelled): cancelled by the caller (interrupted with Ctrl-C)" in stderr


def test_demo_measures_the_chair_to_table_distance_within_3_cm(config_file):
    done = run(["demo", "--json", "--config", str(config_file)])
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["unit"] == "m" and result["steps"] == 3
    assert abs(result["value"] - result["ground_truth_m"]) <= 0.03, result
    assert "scripted turns standing in for a vision-language model" in done.stderr


def test_ask_about_a_bag_writes_the_answer_bag(config_file, tmp_path):
    from rosbags.highlevel import AnyReader

    from spatialclaw_ros.scenes.bag import write_bag
    from spatialclaw_ros.scenes.generator import living_room
    from spatialclaw_ros.scenes.render import render_scene

    scene = living_room(n_frames=4)
    bag = write_bag(scene, [r.frame for r in render_scene(scene)], tmp_path / "bag")
    code = "print(Metadata.world_frame, Metadata.has_depth, Metadata.has_poses)\nReturnAnswer(len(InputImages))"
    with ScriptedModelServer({"main": [cell(code)]}) as server:
        done = run(["ask", QUESTION, "--bag", str(bag), "--camera", "front", "--json", "--config", str(config_file),
                    "--out-bag", str(tmp_path / "answer")], url=server.url)
        observation = server.requests[0].text()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["value"] == 4
    assert "frame 3 (camera front" in observation
    with AnyReader([tmp_path / "answer"]) as reader:
        topics = {connection.topic for connection in reader.connections}
        answers = [reader.deserialize(raw, connection.msgtype).data
                   for connection, _, raw in reader.messages() if connection.topic == "/spatialclaw/answer"]
    assert {"/spatialclaw/markers", "/spatialclaw/answer"} <= topics
    assert json.loads(answers[0])["answer"] == "4"


def test_ask_about_a_missing_bag_is_bad_input(config_file, tmp_path):
    done = run(["ask", QUESTION, "--bag", str(tmp_path / "nope"), "--config", str(config_file)])
    assert done.returncode == 2 and "cannot use bag" in done.stderr
    done = run(["ask", QUESTION, "--images", "x.png", "--out-bag", str(tmp_path / "o"), "--config", str(config_file)])
    assert done.returncode == 2 and "--out-bag needs --bag" in done.stderr
