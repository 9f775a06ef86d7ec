"""GPU figures for the perception models: latency per call in torch FP16 and onnxruntime (CUDA, TensorRT), next to the
FLOP-bound time on the GPU it runs on, and each path's parity with torch FP32.

Cases are the graphs the ONNX backends run, at the shapes the node uses: Depth Anything 3 on ``--views`` frames of
640x480 processed at 378x504 (the node's ``query.max_frames`` 16 and ``process_res`` 504), and SAM 3's four parts
(image encoder at 1008x1008, text encoder, grounding head, interactive decoder with 14 points: a box and tracking's
12 seeds). Real architectures; real weights when given (``--da3-model-dir``, ``--sam3-checkpoint``), else random
(latency does not depend on them). Per case: FLOPs counted by ``torch.utils.flop_counter`` on one call; the
FLOP-bound time is FLOPs / the GPU's published dense FP16 tensor peak (by device name, or ``--peak-tflops``); latency
is the median of ``--repeats`` calls after the first and ``--warmup`` more; parity is the largest absolute difference
from torch FP32 over the largest absolute FP32 value, per output, worst output shown. Torch paths keep tensors on the
device; onnxruntime paths take and return numpy arrays, as the backends do, so their times include the host
transfers. onnxruntime's CUDA and TensorRT paths run where this onnxruntime has them (TensorRT FP16, engines cached
per run in a temporary folder: the first call builds them, outside the timing), its CPU path with ``--device cpu``;
the export needs onnxscript. Stops starting new paths once ``--budget-s`` has passed.

Usage (repo root, venv with torch, onnx, onnxruntime(-gpu), onnxscript, sam3, depth-anything-3; no network):
  python bench/gpu_perception.py --out gpu_perception.json             # CUDA GPU, full-size models
  python bench/gpu_perception.py --device cpu --tiny --repeats 1 --warmup 0   # a CPU check: tiny shapes and SAM 3
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib
import importlib.util
import inspect
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from spatialclaw_ros.config import OnnxRuntimeConfig
from spatialclaw_ros.perception.clip_tokenizer import ClipTokenizer
from spatialclaw_ros.perception.onnx_runtime import CPU, CUDA, TENSORRT, InputShape, open_session
from spatialclaw_ros.perception.sam3 import default_bpe_path
from spatialclaw_ros.perception.sam3_onnx import PARTS
from spatialclaw_ros.perception.torch_compat import device_mode

MODELS = Path(__file__).resolve().parents[1] / "models"
#: Published dense FP16 tensor-core peaks (TFLOPS, no sparsity; FP32 accumulation where NVIDIA lists both), matched
#: against torch's device name, most specific first. Others: --peak-tflops.
PEAK_FP16_TFLOPS = (("H200 NVL", 835.0), ("H200", 989.4), ("H100 PCIe", 756.5), ("H100 NVL", 835.0),
                    ("H100", 989.4), ("A100", 312.0), ("L40S", 362.1), ("L40", 181.0), ("L4", 121.0),
                    ("A10G", 70.0), ("A10", 125.0), ("T4", 65.0), ("RTX 4090", 165.2), ("RTX 3090", 71.0))
#: The tracking prompt the interactive decoder is timed with: two box corners and 12 seeds (SAM3OnnxSpec opt).
INTERACTIVE_POINTS = 14


@dataclass
class Measured:
    """One path of a case: latency per call (s) and parity with torch FP32, or why it did not run."""

    latency_s: float | None = None
    parity: float | None = None
    skipped: str = ""


@dataclass
class CaseResult:
    name: str
    shapes: dict[str, list[int]]
    gflops: float
    flop_bound_ms: float | None
    paths: dict[str, Measured] = field(default_factory=dict)


@dataclass
class Case:
    """A torch module with its inputs on the device, and the ONNX graph exported from it."""

    name: str
    module: torch.nn.Module
    inputs: tuple[torch.Tensor, ...]
    input_names: tuple[str, ...]
    onnx: Path | None
    family: str
    shapes: dict[str, InputShape]
    mode: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext


def load_script(name: str):
    """``models/<name>.py`` (the export scripts) as a module."""
    if str(MODELS) not in sys.path:
        sys.path.append(str(MODELS))
    return importlib.import_module(name)


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tflops for pattern, tflops in PEAK_FP16_TFLOPS if pattern in name), None)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_latency(call: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        call()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def as_arrays(outputs) -> list[np.ndarray]:
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [o.detach().float().cpu().numpy() if isinstance(o, torch.Tensor) else np.asarray(o, np.float32)
            for o in outputs]


def parity(outputs, reference: list[np.ndarray]) -> float:
    """Worst output's largest absolute difference from the FP32 reference, over that reference's largest magnitude."""
    worst = 0.0
    for ours, theirs in zip(as_arrays(outputs), reference):
        scale = max(float(np.abs(theirs).max()), 1e-12)
        worst = max(worst, float(np.abs(ours.astype(np.float64) - theirs).max()) / scale)
    return worst


def count_flops(case: Case) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    case.module.requires_grad_(False)  # the counter's module hooks trip over parameters that would take gradients
    with case.mode(), torch.no_grad(), counter:
        case.module(*case.inputs)
    return float(counter.get_total_flops())


def synthetic_bpe(folder: Path) -> str:
    """A minimal CLIP merges file for random-weight builds where open_clip_torch's real one is absent: the text
    encoder's size does not depend on it, and the bench feeds it token ids directly."""
    path = folder / "bpe_simple_vocab_16e6.txt.gz"
    path.write_bytes(gzip.compress("#version: 0.2\nt h\n".encode()))
    return str(path)


def da3_case(args, device: torch.device, folder: Path) -> Case:
    from spatialclaw_ros.perception.da3 import load_depth_anything_3

    script = load_script("export_da3_onnx")
    DepthAnything3 = load_depth_anything_3()
    torch.manual_seed(0)
    model = DepthAnything3.from_pretrained(args.da3_model_dir) if args.da3_model_dir else DepthAnything3(
        model_name=args.da3_preset)
    model = model.eval()
    views, height, width = (2, 84, 112) if args.tiny else (args.views, 378, 504)
    onnx = None
    if importlib.util.find_spec("onnxscript"):
        onnx = folder / "da3.onnx"
        script.export(model, onnx, views, height, width)
    strategy = inspect.signature(type(model).inference).parameters["ref_view_strategy"].default  # as the export
    net = script.NetworkForward(model.model, strategy).to(device).eval()
    images = torch.randn(views, 3, height, width, generator=torch.Generator().manual_seed(0)).to(device)
    return Case("da3", net, (images,), ("images",), onnx, "depth-anything-3",
                {"images": InputShape.static(images.shape)})


def sam3_cases(args, device: torch.device, folder: Path) -> list[Case]:
    from spatialclaw_ros.perception.sam3 import build_model, load_checkpoint

    script = load_script("export_sam3_onnx")
    bpe = default_bpe_path() or synthetic_bpe(folder)
    torch.manual_seed(0)
    model = build_model(bpe, tiny=args.tiny)
    if args.sam3_checkpoint:
        load_checkpoint(model, args.sam3_checkpoint)
    tokenizer = ClipTokenizer(bpe, model.backbone.language_backbone.context_length)
    exported = importlib.util.find_spec("onnxscript") is not None
    if exported:
        spec = script.export(model, folder / "sam3", tokenizer, tiny=args.tiny, random_weights=not args.sam3_checkpoint)
    with device_mode("cpu"):
        inputs = script.example_inputs(model, tokenizer)
    labels = torch.tensor([[2, 3] + [1] * (INTERACTIVE_POINTS - 2)], dtype=torch.int32)
    coords = torch.rand(1, INTERACTIVE_POINTS, 2, generator=torch.Generator().manual_seed(0)) * script.RESOLUTION
    inputs["interactive"] = (*inputs["interactive"][:3], coords, labels)
    model = model.to(device)
    cases = []
    for name, part in PARTS.items():
        shapes = {n: InputShape.static(t.shape) for n, t in zip(part.inputs, inputs[name])}
        if exported:
            shapes = spec.input_shapes(name) if name == "interactive" else shapes
        cases.append(Case(f"sam3.{name}", script.WRAPPERS[name](model).eval(),
                          tuple(t.to(device) for t in inputs[name]), part.inputs,
                          folder / "sam3" / part.file if exported else None, "sam3", shapes,
                          lambda: device_mode(str(device))))
    return cases


def run_case(case: Case, args, device: torch.device, peak: float | None, deadline: float, cache: Path) -> CaseResult:
    flops = count_flops(case)
    result = CaseResult(case.name, {n: list(t.shape) for n, t in zip(case.input_names, case.inputs)}, flops / 1e9,
                        flops / (peak * 1e12) * 1e3 if peak else None)

    def torch_call(dtype: torch.dtype | None):
        def call():
            autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
            with case.mode(), torch.no_grad(), autocast:
                return case.module(*case.inputs)
        return call

    reference = as_arrays(torch_call(None)())
    paths: dict[str, Callable[[], Callable[[], object]] | str] = {
        "torch fp32": lambda: torch_call(None), "torch fp16 (autocast)": lambda: torch_call(torch.float16)}
    import onnxruntime

    providers = ((CPU, "onnxruntime cpu"),) if device.type == "cpu" else (
        (CUDA, "onnxruntime cuda"), (TENSORRT, "onnxruntime tensorrt fp16"))
    for provider, label in providers:
        if provider not in onnxruntime.get_available_providers():
            paths[label] = f"this onnxruntime has no {provider}"
        elif case.onnx is None:
            paths[label] = "not exported: the exporter needs onnxscript"
        else:
            paths[label] = lambda provider=provider: ort_call(case, provider, cache)
    for label, make in paths.items():
        if isinstance(make, str) or time.monotonic() > deadline:
            result.paths[label] = Measured(skipped=make if isinstance(make, str) else "time budget spent")
            continue
        try:
            call = make()
            outputs = call()
            result.paths[label] = Measured(median_latency(call, device, args.repeats, args.warmup),
                                           parity(outputs, reference))
        except Exception as error:  # a path that cannot run on this machine is reported, not fatal
            result.paths[label] = Measured(skipped=f"{type(error).__name__}: {str(error)[:200]}")
    return result


def ort_call(case: Case, provider: str, cache: Path) -> Callable[[], object]:
    runtime = OnnxRuntimeConfig(providers=f"{provider},{CPU}", engine_cache_dir=str(cache))
    session = open_session(case.onnx, runtime, family=case.family, shapes=case.shapes)
    feeds = {name: tensor.cpu().numpy() for name, tensor in zip(case.input_names, case.inputs)}
    if session.provider != provider:
        raise RuntimeError(f"onnxruntime fell back to {session.provider}")
    return lambda: session.run(feeds)


def table(results: list[CaseResult], device_name: str, peak: float | None) -> str:
    labels = list(dict.fromkeys(label for r in results for label in r.paths))
    lines = [f"device: {device_name}; dense FP16 peak: {f'{peak:g} TFLOPS' if peak else 'unknown (--peak-tflops)'}",
             "| case | GFLOPs | FLOP-bound ms | " + " | ".join(f"{label} ms (parity)" for label in labels) + " |",
             "|---" * (3 + len(labels)) + "|"]
    for r in results:
        cells = []
        for label in labels:
            path = r.paths.get(label, Measured(skipped="-"))
            measured = f"{path.latency_s * 1e3:.1f} ({path.parity:.1e})" if not path.skipped else ""
            cells.append(measured or f"skipped: {path.skipped}")
        bound = f"{r.flop_bound_ms:.2f}" if r.flop_bound_ms is not None else "n/a"
        lines.append(f"| {r.name} | {r.gflops:.1f} | {bound} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="torch device (default cuda)")
    parser.add_argument("--tiny", action="store_true", help="tiny SAM 3, da3 at 2x84x112: a quick check, on CPU too")
    parser.add_argument("--views", type=int, default=16, help="Depth Anything views per call (the node's default 16)")
    parser.add_argument("--da3-preset", default="da3-large", help="DA3 preset for random weights (default da3-large)")
    parser.add_argument("--da3-model-dir", help="a DepthAnything3.save_pretrained directory (real weights)")
    parser.add_argument("--sam3-checkpoint", help="the official sam3.pt (real weights)")
    parser.add_argument("--models", default="da3,sam3", help="comma-separated: da3, sam3")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per path (the median is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per path after its first")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense FP16 peak, where the table lacks it")
    parser.add_argument("--budget-s", type=float, default=420.0, help="start no new path after this many seconds")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.tiny:
        args.da3_preset = "da3-small"
    deadline = time.monotonic() + args.budget_s
    peak = peak_tflops(device, args.peak_tflops)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    results = []
    with tempfile.TemporaryDirectory(prefix="gpu_perception_") as temporary:
        folder = Path(temporary)
        models = {m.strip() for m in args.models.split(",")}
        cases = ([da3_case(args, device, folder)] if "da3" in models else []) + (
            sam3_cases(args, device, folder) if "sam3" in models else [])
        for case in cases:
            results.append(run_case(case, args, device, peak, deadline, folder / "engines"))
            print(f"{case.name}: done", file=sys.stderr)
    report = table(results, device_name, peak)
    print(report)
    if args.out:
        args.out.write_text(json.dumps({"device": device_name, "peak_fp16_tflops": peak, "tiny": args.tiny,
                                        "results": [asdict(r) for r in results]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
