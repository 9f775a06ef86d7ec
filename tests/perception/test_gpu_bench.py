"""bench/gpu_perception.py end to end on the CPU (no GPU is lent here): tiny shapes, every case and path, the JSON."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

for needed in ("sam3", "depth_anything_3", "onnxscript", "onnxruntime", "open_clip"):
    if importlib.util.find_spec(needed) is None:
        pytest.skip(f"{needed} is not installed (scripts/install.sh --with-models)", allow_module_level=True)

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gpu_perception.py"


def test_the_gpu_bench_runs_end_to_end_on_the_cpu(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_perception", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    out = tmp_path / "gpu.json"
    assert bench.main(["--device", "cpu", "--tiny", "--repeats", "1", "--warmup", "0", "--peak-tflops", "2",
                       "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert (report["device"], report["peak_fp16_tflops"], report["tiny"]) == ("cpu", 2.0, True)
    results = {r["name"]: r for r in report["results"]}
    assert list(results) == ["da3", "sam3.image_encoder", "sam3.text_encoder", "sam3.grounding", "sam3.interactive"]
    assert results["da3"]["shapes"] == {"images": [2, 3, 84, 112]}
    assert results["sam3.image_encoder"]["shapes"] == {"image": [1, 3, 1008, 1008]}
    assert results["sam3.interactive"]["shapes"]["point_coords"] == [1, 14, 2]
    for name, result in results.items():
        assert result["gflops"] > 0
        assert result["flop_bound_ms"] == pytest.approx(result["gflops"] * 1e9 / 2e12 * 1e3)  # FLOPs / peak
        paths = result["paths"]
        assert set(paths) == {"torch fp32", "torch fp16 (autocast)", "onnxruntime cpu"}, name
        assert all(p["latency_s"] > 0 and not p["skipped"] for p in paths.values()), (name, paths)
        assert paths["torch fp32"]["parity"] == 0.0
        assert 0 < paths["torch fp16 (autocast)"]["parity"] < 2e-2  # FP16 rounding: measured <= 1.5e-3
        assert paths["onnxruntime cpu"]["parity"] < 1e-3  # the exported graph: measured <= 4.1e-5
    # FLOPs grow with the work: the image encoder at 1008x1008 outweighs the interactive decoder by far.
    assert results["sam3.image_encoder"]["gflops"] > 10 * results["sam3.interactive"]["gflops"]
    table = capsys.readouterr().out
    assert "| sam3.grounding |" in table and "dense FP16 peak: 2 TFLOPS" in table
