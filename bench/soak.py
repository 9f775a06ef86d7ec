"""Soak: goals in a row through the node (200 by default), mixing good, malformed and hostile cells. Every goal must
end with a result (answered, or aborted with the code its kind calls for), the node's resident memory must stay
flat (within 10 % from the end of the warm-up to the last goal), and the node must leak no processes, threads or
file descriptors: counted once the kernel pool has settled after the warm-up, halfway and at the end, none may
grow over the second half (rclpy's executor starts its worker threads as bursts of callbacks first need them, up to
its fixed number, so a few may appear during the first half; a leak grows with the goals).

The graph of tests/ros: the node launched as the README says (``ros2 launch spatialclaw_ros spatialclaw.launch.py``),
the synthetic room looping from the project's bag player, the scripted model over HTTP, an rclpy ActionClient.
The goals cycle through these kinds (the model's turns for each are queued before it is sent):
- count: one good cell (``ReturnAnswer(len(InputImages))``);
- distance: the real measuring cells (reconstruction, segmentation, closest distance), every tenth goal;
- malformed: a reply with no code cell, then a good cell;
- hostile: a sandbox escape attempt from tests/kernel/escape_corpus.py (refused by the static check), a cell that
  allocates past the kernel's memory limit, or one that never ends (interrupted at the cell timeout, the kernel
  restarted); then a good cell;
- model error: the endpoint answers HTTP 500 (ERROR_MODEL).
Prints per-kind outcomes and the figures; exits 1 when a goal has no result or the wrong code, RSS grows over
10 %, or a count grows.

Usage (repo root, the ROS venv built by scripts/ros2_env.sh): python bench/soak.py [--goals 200] [--warmup 20]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "ros"))
sys.path.insert(0, str(ROOT / "tests" / "kernel"))

from escape_corpus import STATIC_ESCAPES  # noqa: E402
from graph_support import (QUESTION, READY_LINE, GraphClient, Process, Room, cell, launch_command,  # noqa: E402
                           measuring_cells, node_process, player_command, ros_environment, stop_daemon)

TARGET_GROWTH = 0.10
COUNT_QUESTION = "How many images are there?"
GOOD = cell("ReturnAnswer(len(InputImages))")
MEMORY_LIMIT_MB = 2048
CELL_TIMEOUT_S = 15.0  # the measuring cell needs a few seconds on a loaded machine; the endless cell waits this long
RUNTIME_HOSTILE = [cell(f"hog = bytearray({2 * MEMORY_LIMIT_MB} * 1024 * 1024)"),
                   cell("spin = 0\nwhile True:\n    spin += 1")]
SETTLE_S = 15.0


def goal_kind(number: int) -> str:
    """The kind of goal ``number`` (1-based)."""
    if number % 10 == 0:
        return "distance"
    return ("count", "malformed", "hostile", "count", "model error", "hostile")[number % 6]


def queue_turns(script, kind: str, number: int, scene) -> None:
    """The model's turns for one goal of ``kind``."""
    from spatialclaw_ros.llm.scripted_server import Turn

    if kind == "count":
        script.push("main", GOOD)
    elif kind == "distance":
        script.push("main", *measuring_cells(scene))
    elif kind == "malformed":
        script.push("main", "I will count the images, but I forgot the code block.", GOOD)
    elif kind == "hostile":
        hostile = [cell(escape.code) for escape in STATIC_ESCAPES] + RUNTIME_HOSTILE
        script.push("main", hostile[number % len(hostile)], GOOD)
    else:
        script.push("main", Turn(status=500, text="the model server broke"))


def thread_names(node) -> collections.Counter:
    """The node's threads by name (/proc/<pid>/task/<tid>/comm), to say which leaked."""
    names = collections.Counter()
    for task in Path(f"/proc/{node.pid}/task").iterdir():
        try:
            names[(task / "comm").read_text().strip()] += 1
        except OSError:
            pass  # the thread ended meanwhile
    return names


def counts(node) -> dict:
    """The node's resident memory (MB), threads (and their names), open file descriptors and descendant processes."""
    return {"rss_mb": node.memory_info().rss / 2**20, "threads": node.num_threads(), "fds": node.num_fds(),
            "processes": len(node.children(recursive=True)), "names": thread_names(node)}


def settled(node) -> dict[str, float]:
    """``counts`` once the kernel pool has its warm worker again (the counts stop changing), at most SETTLE_S."""
    deadline, last = time.monotonic() + SETTLE_S, None
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = counts(node)
        if last is not None and {k: now[k] for k in ("threads", "fds", "processes")} == \
                {k: last[k] for k in ("threads", "fds", "processes")}:
            return now
        last = now
    return last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goals", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=50, help="goals before the first count (the node's RSS climbs to "
                        "a plateau over the first few dozen goals)")
    args = parser.parse_args()

    import rclpy

    room = Room(Path(tempfile.mkdtemp(prefix="soak_")))
    script, scene = room.script, room.scene
    env = ros_environment(96 + os.getpid() % 5)
    os.environ.update(env)
    expected = {"count": 0, "distance": 0, "malformed": 0, "hostile": 0, "model error": 7}  # ERROR_* constants
    outcomes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures, rss = [], []
    with contextlib.closing(room):
        params = room.params("soak", agent={"plan": False, "max_steps": 3, "cell_timeout_s": CELL_TIMEOUT_S,
                                            "sessions_dir": str(room.sessions)},
                             kernel={"pool_size": 1, "memory_limit_mb": MEMORY_LIMIT_MB})
        launch = Process(launch_command(params), env, "launch")
        player = None
        context = rclpy.Context()
        try:
            launch.wait_for(READY_LINE, 120)
            node = node_process(launch)
            player = Process(player_command(room.bag, "--loop", "--wait-for-subscribers", "20"), env, "player")
            player.wait_for("PLAYING", 60)
            time.sleep(3.5)
            rclpy.init(context=context)
            client = GraphClient(context)
            started = time.monotonic()
            for number in range(1, args.goals + 1):
                kind = goal_kind(number)
                queue_turns(script, kind, number, scene)
                question = QUESTION if kind == "distance" else COUNT_QUESTION
                status, result = client.ask(question=question, cameras=["front"], timeout_s=300)
                script.clear("main")
                outcomes[kind][result.error_code] += 1
                if result.error_code != expected[kind] or (kind != "model error" and not result.answer):
                    failures.append(f"goal {number} ({kind}): code {result.error_code}: {result.error_message}")
                rss.append(node.memory_info().rss / 2**20)
                if number == args.warmup:
                    warm = settled(node)
                    rss[-1] = warm["rss_mb"]
                if number == (args.warmup + args.goals) // 2:
                    middle = settled(node)
                if number % 20 == 0:
                    print(f"goal {number:3d}: RSS {rss[-1]:7.1f} MB, {time.monotonic() - started:6.0f} s", flush=True)
            final = settled(node)
            client.close()
        finally:
            context.try_shutdown()
            for process in (player, launch):
                if process is not None:
                    process.stop()
                    (room.tmp / f"{process.name}.log").write_text(process.output())
            stop_daemon(env)
            print(f"logs and sessions: {room.tmp}")
    growth = final["rss_mb"] / warm["rss_mb"] - 1
    leaks = {key: final[key] - middle[key] for key in ("threads", "fds", "processes") if final[key] > middle[key]}
    print(f"{args.goals} goals, every one ended with a result; outcomes by kind (error_code: goals):")
    for kind, counter in outcomes.items():
        print(f"  {kind:12s} {dict(counter)} (expected code {expected[kind]})")
    print(f"node RSS after goal 1 {rss[0]:.1f} MB (warm-up), after {args.warmup} goals {warm['rss_mb']:.1f} MB, "
          f"after {args.goals}: {final['rss_mb']:.1f} MB "
          f"(growth {100 * growth:+.1f} %, max {max(rss[args.warmup - 1:]):.1f} MB; target <= {100 * TARGET_GROWTH:.0f} %)")
    half = (args.warmup + args.goals) // 2
    print(f"after goals {args.warmup} / {half} / {args.goals}: threads {warm['threads']} / {middle['threads']} / "
          f"{final['threads']}, open fds {warm['fds']} / {middle['fds']} / {final['fds']}, processes under the node "
          f"{warm['processes']} / {middle['processes']} / {final['processes']}")
    for failure in failures:
        print("FAILED", failure)
    if leaks:
        print("LEAKED over the second half:", leaks, "; threads gained:", dict(final["names"] - middle["names"]))
    return 0 if not failures and not leaks and growth <= TARGET_GROWTH else 1


if __name__ == "__main__":
    sys.exit(main())
