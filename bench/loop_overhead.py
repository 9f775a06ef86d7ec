"""Agent-loop overhead per step: step wall time minus the model call, over 100 trivial cells.

Runs the real loop (context fitting, parsing, kernel round trip, observation, session log)
against the scripted model server. Step k's wall time is the time between the progress events
of steps k-1 and k; the model call's latency (from the trace) is subtracted. Step 1 also opens
the kernel session and is left out. Prints median and p95 in ms; exits 1 above the 30 ms target.

Usage (repo root, venv active): python bench/loop_overhead.py [--steps N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from spatialclaw_ros.agent import Agent, AgentEvent
from spatialclaw_ros.config import AgentConfig, Config, ModelConfig
from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.llm.scripted_server import ScriptedModelServer
from spatialclaw_ros.session_log import read_trace

TARGET_MEDIAN_MS = 30.0


def reply(code: str) -> str:
    return f"Next.\n```python\n{code}\n```"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frames = FrameSet([Frame(index=i, rgb=rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), stamp=0.1 * i)
                       for i in range(4)])
    cells = [reply(f"x = {i}\nprint('value', x * 2)") for i in range(args.steps)]
    script = {"main": [*cells, reply("ReturnAnswer(4)")]}
    stamps: dict[int, float] = {}

    def on_event(event: AgentEvent) -> None:
        if event.stage == "step":
            stamps[event.step] = event.elapsed_s

    with tempfile.TemporaryDirectory() as sessions, ScriptedModelServer(script) as server:
        config = Config(model=ModelConfig(base_url=server.url, max_retries=0),
                        agent=AgentConfig(plan=False, max_steps=args.steps + 1, sessions_dir=sessions))
        with Agent(config) as agent:
            result = agent.ask("How many images are there?", frames, on_event=on_event)
        if result.status != "answered":
            print(f"the run failed: {result.error_code}: {result.error_message}", file=sys.stderr)
            return 1
        latency = {event["step"]: event["latency_s"] for event in read_trace(Path(result.session_dir))
                   if event["kind"] == "model_response"}
    overhead_ms = [1000 * (stamps[k] - stamps[k - 1] - latency[k]) for k in range(2, args.steps + 1)]
    median = statistics.median(overhead_ms)
    p95 = float(np.percentile(overhead_ms, 95))
    model_ms = statistics.median(1000 * latency[k] for k in range(2, args.steps + 1))
    print(f"steps measured: {len(overhead_ms)} (step 1, which opens the kernel session, left out)")
    print(f"loop overhead per step: median {median:.1f} ms, p95 {p95:.1f} ms "
          f"(target median <= {TARGET_MEDIAN_MS:.0f} ms)")
    print(f"scripted model call per step (not counted): median {model_ms:.1f} ms")
    return 0 if median <= TARGET_MEDIAN_MS else 1


if __name__ == "__main__":
    sys.exit(main())
