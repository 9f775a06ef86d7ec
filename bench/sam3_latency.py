"""Latency of the sam3 backend's model calls, and what its encoder caches save.

Runs SAM 3 on random weights (no checkpoint can be downloaded here, and latency does not depend on the
weights) on one 640x480 frame of the synthetic living room: the first text prompt (image and text
encoders run), the same phrase again (both cached), a new phrase (text encoder only), a box prompt and a
point prompt (interactive head only). Prints the median of --repeats runs of each, in seconds.

Usage (repo root, venv active): python bench/sam3_latency.py [--full] [--device cpu|cuda] [--repeats 3] [--onnx DIR]
(--full: the 840 M-parameter model, about 5 GB; default: the tiny test configuration. --onnx DIR: the sam3-onnx
backend on an export folder from models/export_sam3_onnx.py instead, its providers from perception.onnx defaults.)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from spatialclaw_ros.perception.backends import BoxPrompt, PointPrompt, TextPrompt
from spatialclaw_ros.perception.cache import PerceptionCache
from spatialclaw_ros.perception.sam3 import SAM3Model, build_model, default_bpe_path
from spatialclaw_ros.perception.sam3_onnx import SAM3OnnxModel
from spatialclaw_ros.scenes.generator import living_room
from spatialclaw_ros.scenes.render import render_scene


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full-size model instead of the tiny configuration")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--onnx", help="an export folder: time the sam3-onnx backend on it instead")
    args = parser.parse_args()
    torch.manual_seed(0)
    started = time.perf_counter()
    if args.onnx:
        model = SAM3OnnxModel(args.onnx)
    else:
        model = SAM3Model(build_model(default_bpe_path(), args.device, tiny=not args.full), args.device)
    build_s = time.perf_counter() - started
    rgb = render_scene(living_room(n_frames=1, width=640, height=480))[0].frame.rgb
    rows: dict[str, list[float]] = {}
    for repeat in range(args.repeats):
        model.cache = PerceptionCache(model.cache.max_bytes)  # every repeat starts with nothing cached
        steps = {
            "text prompt, nothing cached (image + text encoders)": lambda: model.segment(rgb, TextPrompt("chair")),
            "same phrase again (both cached)": lambda: model.segment(rgb, TextPrompt("chair")),
            "new phrase (text encoder only)": lambda: model.segment(rgb, TextPrompt(f"table {repeat}")),
            "box prompt (interactive head)": lambda: model.segment(rgb, BoxPrompt((200, 150, 420, 400))),
            "point prompt, 1 fg + 1 bg": lambda: model.segment(rgb, PointPrompt(((300, 280), (50, 50)), (1, 0))),
        }
        for name, step in steps.items():
            rows.setdefault(name, []).append(timed(step))
    if args.onnx:
        spec = model.spec
        print(f"sam3-onnx, {spec.model} export ({'random' if spec.random_weights else 'real'} weights) on "
              f"{model.provider}, 640x480 frame, median of {args.repeats}; sessions {build_s:.1f} s")
    else:
        size = "full" if args.full else "tiny"
        parameters = sum(p.numel() for p in model.model.parameters()) / 1e6
        print(f"SAM 3 {size} ({parameters:.0f} M parameters, random weights) on {args.device}, 640x480 frame, "
              f"median of {args.repeats}; build {build_s:.1f} s")
    for name, seconds in rows.items():
        print(f"{name:<55} {statistics.median(seconds):8.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
