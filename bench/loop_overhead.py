"""Agent-loop overhead per step, by step decile, over 100 reference-style cells in one question.

Runs the real loop (context rendering, parsing, kernel round trip with its static check and variable
summaries, observations with image encoding, session log) against the scripted model server, in its
own process like a real model server, on the living-room scene (8 key frames of 640x480). Each cell times its own compute and prints it (show()'s
PNG encoding in the kernel is part of that compute); step k's overhead is the time between the
progress events of steps k-1 and k, less the model call (its latency in the trace: client encoding,
HTTP and the scripted server) and less the cell's compute. Step 1 also opens the kernel session and
is left out. Every ``--show-every``-th cell shows a 640x480 frame, whose PNG the loop decodes and
re-encodes as JPEG for the model.

Usage (repo root, venv active): python bench/loop_overhead.py [--steps 100] [--show-every 4] [--runs 5]
Each step's figures are its minimum over the runs: on a shared machine other work only ever adds time,
so the least disturbed run is the one that shows what the loop itself costs.
Exits 1 if a target is missed: median <= 2.5 ms, p95 <= 30 ms, steps 91-100 within 1.3x of steps 1-10.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_cells import QUESTION, compute_ms, living_room_frames, reference_cell, reply  # noqa: E402

from spatialclaw_ros.agent import Agent, AgentEvent  # noqa: E402
from spatialclaw_ros.config import AgentConfig, Config, ModelConfig  # noqa: E402
from spatialclaw_ros.session_log import read_trace  # noqa: E402

TARGET_MEDIAN_MS = 2.5
TARGET_P95_MS = 30.0
TARGET_GROWTH = 1.3


@contextlib.contextmanager
def model_server(turns: list[str], directory: str):
    """The scripted model server playing ``turns`` as the main model, in its own process; yields its URL."""
    script = Path(directory) / "turns.yaml"
    script.write_text(yaml.safe_dump({"main": turns}))
    process = subprocess.Popen([sys.executable, "-m", "spatialclaw_ros.llm.scripted_server", "--script", str(script)],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"the scripted model server did not start: {line!r}")
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_question(frames, cells: list[str], sessions: str) -> tuple[dict[int, float], dict[int, float], dict]:
    """One question: per step its overhead and kernel round trip (both less the cell's compute), in ms,
    and the model call and the compute."""
    stamps: dict[int, float] = {}

    def on_event(event: AgentEvent) -> None:
        if event.stage == "step":
            stamps[event.step] = event.elapsed_s

    with model_server([*cells, reply("ReturnAnswer(1.2, unit='m')")], sessions) as url:
        config = Config(model=ModelConfig(base_url=url, max_retries=0),
                        agent=AgentConfig(plan=False, max_steps=len(cells) + 1, sessions_dir=sessions))
        with Agent(config) as agent:
            result = agent.ask(QUESTION, frames, on_event=on_event)
    if result.status != "answered":
        raise RuntimeError(f"the run failed: {result.error_code}: {result.error_message}")
    trace = read_trace(Path(result.session_dir))
    latency = {event["step"]: 1000 * event["latency_s"] for event in trace if event["kind"] == "model_response"}
    cells_run = {event["step"]: event for event in trace if event["kind"] == "cell" and event["step"] <= len(cells)}
    failed = [step for step, event in cells_run.items() if event["status"] != "ok"]
    if failed:
        raise RuntimeError(f"cells that did not run cleanly: {failed}: {cells_run[failed[0]]['error']}")
    compute = {step: compute_ms(event["stdout"]) for step, event in cells_run.items()}
    measured = range(2, len(cells) + 1)
    overhead = {k: 1000 * (stamps[k] - stamps[k - 1]) - latency[k] - compute[k] for k in measured}
    kernel = {k: 1000 * cells_run[k]["duration_s"] - compute[k] for k in measured}
    return overhead, kernel, {"model": latency, "compute": compute}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--show-every", type=int, default=4, help="every N-th cell shows a frame (0: none)")
    parser.add_argument("--runs", type=int, default=5,
                        help="questions run; each step's figures are its least disturbed (minimum) over the runs")
    args = parser.parse_args()
    frames = living_room_frames()
    cells = [reply(reference_cell(k, show=bool(args.show_every) and k % args.show_every == 0, timed=True))
             for k in range(1, args.steps + 1)]
    runs = []
    with tempfile.TemporaryDirectory() as sessions:
        for _ in range(args.runs):
            runs.append(run_question(frames, cells, sessions))
    measured = range(2, args.steps + 1)
    overhead = {k: min(run[0][k] for run in runs) for k in measured}
    kernel = {k: min(run[1][k] for run in runs) for k in measured}
    latency = {k: min(run[2]["model"][k] for run in runs) for k in measured}
    compute = {k: min(run[2]["compute"][k] for run in runs) for k in measured}
    values = list(overhead.values())
    median, p95 = statistics.median(values), float(np.percentile(values, 95))
    print(f"{len(values)} steps measured (step 1, which opens the kernel session, left out), each its minimum "
          f"over {args.runs} runs; show() in every {args.show_every or 'no'}th cell")
    print(f"{'steps':>8} {'median ms':>9} {'p95 ms':>7} {'kernel round trip ms':>21} {'model call ms':>13} "
          f"{'cell compute ms':>15}")
    deciles = []
    for start in range(1, args.steps + 1, 10):
        steps = [k for k in measured if start <= k < start + 10]
        if not steps:
            continue
        row = statistics.median(overhead[k] for k in steps)
        deciles.append(row)
        print(f"{start:>3}-{start + 9:<4} {row:>9.2f} {np.percentile([overhead[k] for k in steps], 95):>7.2f} "
              f"{statistics.median(kernel[k] for k in steps):>21.2f} "
              f"{statistics.median(latency[k] for k in steps):>13.2f} "
              f"{statistics.median(compute[k] for k in steps):>15.2f}")
    growth = deciles[-1] / deciles[0]
    print(f"loop overhead per step: median {median:.2f} ms, p95 {p95:.2f} ms, last/first decile {growth:.2f}x "
          f"(targets: median <= {TARGET_MEDIAN_MS} ms, p95 <= {TARGET_P95_MS:.0f} ms, <= {TARGET_GROWTH}x)")
    missed = median > TARGET_MEDIAN_MS or p95 > TARGET_P95_MS or growth > TARGET_GROWTH
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
