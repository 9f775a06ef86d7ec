"""Node memory over many goals: the node's RSS must stay flat (within 10 %) over 50 goals in a row.

A real graph (the harness of tests/ros): the node process, the synthetic room looping from a bag player,
the scripted model over HTTP answering each goal with the real measuring cells (reconstruction,
segmentation, distance) or, with ``--question count``, a one-line cell. Goals start once the frame buffer
is full (``buffer.seconds`` of stream), so its bounded memory is all there. RSS is read from /proc after
``--warmup`` goals and after every goal; growth = last / after-warm-up - 1. Exits 1 above 10 %.

Usage (repo root, the ROS venv active): python bench/node_memory.py [--goals 50] [--question distance|count]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "ros"))

from spatialclaw_ros.scenes.generator import living_room_side_view  # noqa: E402
from graph_support import (QUESTION, GraphClient, Process, ScriptQueue, cell, measuring_cells,  # noqa: E402
                           node_command, player_command, ros_environment, write_room_bag, write_yaml)

TARGET_GROWTH = 0.10
BUFFER_SECONDS = 10.0


def rss_mb(pid: int) -> float:
    """Resident set size of a process (MB), from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goals", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--question", choices=("distance", "count"), default="distance")
    args = parser.parse_args()

    import rclpy

    from spatialclaw_ros.llm.scripted_server import ScriptedModelServer

    tmp = Path(tempfile.mkdtemp(prefix="node_memory_"))
    scene = living_room_side_view()
    bag = write_room_bag(tmp / "room", scene)
    script = ScriptQueue()
    env = ros_environment(100 + os.getpid() % 50)
    os.environ.update(env)
    with ScriptedModelServer(script) as server:
        config = write_yaml(tmp / "config.yaml", {"model": {"base_url": server.url, "max_retries": 0},
                                                  "agent": {"plan": False}, "kernel": {"pool_size": 1}})
        params = write_yaml(tmp / "params.yaml", {"spatialclaw": {"ros__parameters": {
            "model": {"config_file": str(config)}, "sessions_dir": str(tmp / "sessions"), "query": {"max_frames": 6},
            "buffer": {"min_interval_s": 0.0, "seconds": BUFFER_SECONDS}}}})
        node = Process(node_command(params), env, "node")
        player = None
        context = rclpy.Context()
        try:
            node.wait_for("spatialclaw node ready", 90)
            player = Process(player_command(bag, "--loop", "--wait-for-subscribers", "20"), env, "player")
            player.wait_for("PLAYING", 60)
            time.sleep(BUFFER_SECONDS + 2.0)
            rclpy.init(context=context)
            client = GraphClient(context)
            samples, baseline = [], None
            for number in range(1, args.goals + 1):
                if args.question == "distance":
                    script.push("main", *measuring_cells(scene))
                    status, result = client.ask(question=QUESTION)
                else:
                    script.push("main", cell("ReturnAnswer(len(InputImages))"))
                    status, result = client.ask(question="How many images are there?")
                if not result.success:
                    raise RuntimeError(f"goal {number} failed: {result.error_message}")
                samples.append(rss_mb(node.popen.pid))
                if number == args.warmup:
                    baseline = samples[-1]
                if number % 10 == 0:
                    print(f"goal {number:3d}: RSS {samples[-1]:7.1f} MB (answer {result.answer}, {result.elapsed_sec:.2f} s)",
                          flush=True)
            client.close()
        finally:
            context.try_shutdown()
            for process in (player, node):
                if process is not None:
                    process.stop()
    growth = samples[-1] / baseline - 1
    print(f"RSS after {args.warmup} goals {baseline:.1f} MB, after {args.goals}: {samples[-1]:.1f} MB "
          f"(growth {100 * growth:+.1f} %, max {max(samples[args.warmup - 1:]):.1f} MB); target <= {100 * TARGET_GROWTH:.0f} %")
    return 0 if growth <= TARGET_GROWTH else 1


if __name__ == "__main__":
    sys.exit(main())
