"""What a question costs the model endpoint against its step count: bytes sent, image tokens, prefix reuse.

A scripted model plays a typical question on the living-room scene (8 key frames of 640x480): N-1
reference-style cells, two of which show() a frame, then ReturnAnswer. Bytes are what the server
received (Content-Length of every request, planner included); images and their tokens are counted
from what arrived (each image's size through the configured encoder); the prefix share is the
agent's own per-call figure (share of a main call's estimated prompt tokens identical to the
previous main call's prompt), averaged over the main calls after the first, and the server checks
how many main calls began with the previous call's messages verbatim.

Usage (repo root, venv active): python bench/context_cost.py [--steps 5 10 20 30 100] [--format jpeg|png]
  [--quality Q] [--encoder NAME] [--max-tokens N] (the context budget; a small one makes the history
  compact); exits 1 if the 20-step question sends more than 96.2 MB / 5, or the
  mean prefix share of the 20, 30 and 100-step questions is under 90 %.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_cells import QUESTION, living_room_frames, reference_cell, reply  # noqa: E402

from spatialclaw_ros.agent import Agent  # noqa: E402
from spatialclaw_ros.config import (AgentConfig, Config, ContextBudget, ImageSettings, ModelConfig,  # noqa: E402
                                   VISION_ENCODERS)
from spatialclaw_ros.imaging import decode_png, image_size  # noqa: E402
from spatialclaw_ros.llm.scripted_server import ScriptedModelServer  # noqa: E402
from spatialclaw_ros.llm.vision import ImageEncoding, encoder_for  # noqa: E402

BEFORE_20_STEPS_MB = 96.2  # issue 12: the same question with every key frame re-sent as PNG on every call
TARGET_SHARE = 0.9
SHOW_STEPS = (2, 4)


def key_frame_fidelity(frames, images: ImageSettings) -> tuple[float, float]:
    """Mean bytes of a key frame as sent, and its mean PSNR (dB) against the same pixels uncompressed."""
    encoding = ImageEncoding.from_settings(images, AgentConfig.image_max_side, "")
    sizes, errors = [], []
    for frame in frames.frames:
        sent = encoding.encode(frame.rgb)
        lossless = encoding.pixels(frame.rgb).astype(float)
        sizes.append(len(sent.data))
        errors.append(np.mean((decode_png(sent.data).astype(float) - lossless) ** 2))
    mse = float(np.mean(errors))
    return float(np.mean(sizes)), (10 * np.log10(255.0 ** 2 / mse) if mse else float("inf"))


def ask(frames, steps: int, images: ImageSettings, budget: ContextBudget, sessions: str) -> dict:
    """Run one question of ``steps`` steps; the server's and the agent's figures."""
    cells = [reply(reference_cell(k, show=k in SHOW_STEPS)) for k in range(1, steps)]
    script = {"planner": ["1. Look at the frames.\n2. Measure.\n3. Answer in metres."],
              "main": [*cells, reply("ReturnAnswer(1.2, unit='m')")]}
    with ScriptedModelServer(script) as server:
        config = Config(model=ModelConfig(base_url=server.url, max_retries=0),
                        agent=AgentConfig(max_steps=steps, sessions_dir=sessions, images=images, context=budget))
        with Agent(config) as agent:
            result = agent.ask(QUESTION, frames)
        requests = list(server.requests)
    if result.status != "answered" or result.steps != steps:
        raise RuntimeError(f"the {steps}-step question did not run through: {result.error_code} {result.error_message}")
    encoder = encoder_for(images, "")
    main = [request for request in requests if request.role == "main"]
    verbatim = sum(1 for before, after in zip(main, main[1:]) if after.messages[:len(before.messages)] == before.messages)
    return {
        "bytes": sum(int(request.headers["content-length"]) for request in requests),
        "per_call": [int(request.headers["content-length"]) for request in main],
        "images": sum(request.image_count() for request in requests),
        "image_tokens": sum(encoder.tokens(*image_size(data)) for request in requests for data in request.images()),
        "share": result.cost.prefix_share_mean,
        "verbatim": (verbatim, len(main) - 1),
        "compactions": result.context.compactions,
        "peak_tokens": result.context.peak_estimated_tokens,
        "over_budget": result.context.calls_over_budget,
        "reported_bytes": result.cost.bytes_sent,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 30, 100])
    parser.add_argument("--format", choices=("jpeg", "png"), default=ImageSettings.format)
    parser.add_argument("--quality", type=int, default=ImageSettings.jpeg_quality)
    parser.add_argument("--encoder", choices=VISION_ENCODERS, default="qwen2.5-vl")
    parser.add_argument("--max-tokens", type=int, default=ContextBudget.max_tokens)
    args = parser.parse_args()
    images = ImageSettings(format=args.format, jpeg_quality=args.quality, encoder=args.encoder)
    budget = ContextBudget(max_tokens=args.max_tokens)
    frames = living_room_frames()
    frame_bytes, psnr = key_frame_fidelity(frames, images)
    print(f"living room, 8 key frames 640x480, {args.format}"
          f"{f' quality {args.quality}' if args.format == 'jpeg' else ''}, encoder {args.encoder}, "
          f"show() at steps {SHOW_STEPS}, context budget {args.max_tokens} tokens")
    print(f"a key frame as sent: {frame_bytes / 1e3:.1f} KB, PSNR {psnr:.1f} dB against the uncompressed pixels")
    print(f"{'steps':>5} {'total MB':>9} {'MB/step':>8} {'first->last call KB':>20} {'images':>6} "
          f"{'image tok':>9} {'prefix share':>12} {'verbatim':>9} {'compactions':>11} {'peak tok':>8}")
    results = {}
    with tempfile.TemporaryDirectory() as sessions:
        for steps in args.steps:
            row = results[steps] = ask(frames, steps, images, budget, sessions)
            print(f"{steps:>5} {row['bytes'] / 1e6:>9.2f} {row['bytes'] / 1e6 / steps:>8.3f} "
                  f"{row['per_call'][0] / 1e3:>9.0f} -> {row['per_call'][-1] / 1e3:<8.0f} {row['images']:>6} "
                  f"{row['image_tokens']:>9} {100 * row['share']:>11.1f}% {'%d/%d' % row['verbatim']:>9} "
                  f"{row['compactions']:>11} {row['peak_tokens']:>8}")
    failures = []
    if 20 in results and results[20]["bytes"] / 1e6 > BEFORE_20_STEPS_MB / 5:
        failures.append(f"20 steps sent {results[20]['bytes'] / 1e6:.1f} MB, over {BEFORE_20_STEPS_MB} / 5 MB")
    shares = [results[steps]["share"] for steps in (20, 30, 100) if steps in results]
    if shares and sum(shares) / len(shares) < TARGET_SHARE:
        failures.append(f"mean prefix share over 20/30/100 steps {100 * sum(shares) / len(shares):.1f} % < 90 %")
    if shares:
        print(f"mean prefix share over the 20, 30 and 100-step questions: {100 * sum(shares) / len(shares):.1f} %")
    if 20 in results:
        print(f"20 steps: {BEFORE_20_STEPS_MB / (results[20]['bytes'] / 1e6):.1f}x below the {BEFORE_20_STEPS_MB} MB "
              "measured before (issue 12)")
    for failure in failures:
        print("TARGET MISSED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
