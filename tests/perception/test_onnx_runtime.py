"""Provider selection, TensorRT engine-cache keying and warm-up of the ONNX backends' sessions.

No GPU and no TensorRT exist here: onnxruntime's real CPU provider runs every graph. The one test double sits at
the onnxruntime provider boundary: a machine's providers, GPU and TensorRT version are given as a
``RuntimeEnvironment`` value (as ``onnxruntime.get_available_providers``, the CUDA driver and TensorRT's library would
report them), and a recording subclass of ``onnxruntime.InferenceSession`` (``recorded_sessions`` in conftest.py)
captures what each session is asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from spatialclaw_ros.config import OnnxRuntimeConfig  # noqa: E402
from spatialclaw_ros.perception.onnx_runtime import (CPU, CUDA, TENSORRT, EngineKey, GpuIdentity,  # noqa: E402
                                                     InputShape, RuntimeEnvironment, detect_gpu, known_bad_tensorrt,
                                                     onnx_digest, open_session, plan_session, profile_options,
                                                     tensorrt_version_string)

RTX = GpuIdentity("NVIDIA GeForce RTX 4090", (8, 9))
ORIN = GpuIdentity("Orin", (8, 7))
EVERYTHING = (TENSORRT, CUDA, CPU)
SHAPES = {"x": InputShape.static((1, 3)), "points": InputShape((1, 1, 2), (1, 14, 2), (1, 64, 2))}


@pytest.fixture
def toy_graph(tmp_path):
    """A real ONNX graph with one static input and one input whose point count varies: y = sum(x) + sum(points)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    points = helper.make_tensor_value_info("points", TensorProto.FLOAT, [1, "P", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [])
    nodes = [helper.make_node("ReduceSum", ["x"], ["sx"], keepdims=0),
             helper.make_node("ReduceSum", ["points"], ["sp"], keepdims=0),
             helper.make_node("Add", ["sx", "sp"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "toy", [x, points], [y]),
                              opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / "toy.onnx"
    onnx.save(model, str(path))
    path.with_name("toy.onnx.data").write_bytes(b"weights v1")
    return path


def runtime(tmp_path, **settings) -> OnnxRuntimeConfig:
    return OnnxRuntimeConfig(engine_cache_dir=str(tmp_path / "engines"), **settings)


def test_the_default_chain_is_tensorrt_with_fp16_and_keyed_caches_then_cuda_then_cpu(toy_graph, tmp_path):
    plan = plan_session(toy_graph, runtime(tmp_path), RuntimeEnvironment(EVERYTHING, RTX, "10.8.0"),
                        family="sam3", shapes=SHAPES)
    assert [name for name, _ in plan.providers] == [TENSORRT, CUDA, CPU] and plan.notes == plan.warnings == []
    trt, cuda = plan.providers[0][1], plan.providers[1][1]
    assert trt["trt_fp16_enable"] is True and trt["device_id"] == 0 and trt["trt_max_workspace_size"] == 4096 << 20
    assert trt["trt_engine_cache_enable"] is True and trt["trt_timing_cache_enable"] is True
    folder = tmp_path / "engines" / "nvidia-geforce-rtx-4090-sm89-trt10.8.0"
    assert trt["trt_timing_cache_path"] == str(folder)  # one timing cache per GPU and TensorRT, shared by graphs
    assert trt["trt_engine_cache_path"] == str(plan.engine_folder) and plan.engine_folder.parent == folder
    assert plan.engine_folder.name.startswith(f"toy-fp16-{onnx_digest(toy_graph)[:16]}-")
    # The dynamic input gets an optimisation profile; the static one needs none.
    assert (trt["trt_profile_min_shapes"], trt["trt_profile_opt_shapes"], trt["trt_profile_max_shapes"]) == (
        "points:1x1x2", "points:1x14x2", "points:1x64x2")
    assert cuda == {"device_id": 0}
    manifest = json.loads((plan.engine_folder / "key.json").read_text())
    assert (manifest["gpu"], manifest["compute_capability"], manifest["tensorrt"], manifest["fp16"]) == (
        RTX.name, "8.9", "10.8.0", True)
    assert manifest["onnx_sha256"] == onnx_digest(toy_graph) and manifest["shapes"]["points"]["max"] == [1, 64, 2]


def test_every_part_of_the_key_gives_its_own_engine_folder(toy_graph, tmp_path):
    """A changed GPU, TensorRT, precision, export or input shape never loads an engine built for another."""
    def folder(environment=RuntimeEnvironment(EVERYTHING, RTX, "10.8.0"), shapes=SHAPES, **settings):
        return plan_session(toy_graph, runtime(tmp_path, **settings), environment, family="sam3",
                            shapes=shapes).engine_folder

    first = folder()
    (first / "TensorrtExecutionProvider_toy.engine").write_bytes(b"an engine for the RTX 4090 and TensorRT 10.8")
    assert folder() == first  # the same key finds the same engines
    others = [folder(RuntimeEnvironment(EVERYTHING, ORIN, "10.8.0")),
              folder(RuntimeEnvironment(EVERYTHING, GpuIdentity(RTX.name, (8, 6)), "10.8.0")),
              folder(RuntimeEnvironment(EVERYTHING, RTX, "10.9.0")),
              folder(trt_fp16=False),
              folder(shapes={**SHAPES, "points": InputShape((1, 1, 2), (1, 14, 2), (1, 32, 2))})]
    toy_graph.with_name("toy.onnx.data").write_bytes(b"weights v2")  # a re-export with other weights
    others.append(folder())
    assert len({first, *others}) == len(others) + 1
    assert all(not any(path.suffix == ".engine" for path in other.iterdir()) for other in others)


def test_the_key_hashes_the_graph_and_its_weights(toy_graph):
    before = onnx_digest(toy_graph)
    toy_graph.with_name("toy.onnx.data").write_bytes(b"weights v2")
    assert onnx_digest(toy_graph) != before
    key = EngineKey(RTX, "10.8.0", True, before, SHAPES)
    assert key.folder(toy_graph.parent, toy_graph).parent == key.platform_folder(toy_graph.parent)


def test_without_a_gpu_or_the_providers_only_cpu_is_asked_for(toy_graph, tmp_path):
    plan = plan_session(toy_graph, runtime(tmp_path), RuntimeEnvironment(EVERYTHING, None, "10.8.0"), family="sam3",
                        shapes=SHAPES)
    assert [name for name, _ in plan.providers] == [CPU] and plan.engine_folder is None
    assert plan.notes == [f"{TENSORRT} left out: no CUDA device 0 is visible",
                          f"{CUDA} left out: no CUDA device 0 is visible"] and plan.warnings == []
    plan = plan_session(toy_graph, runtime(tmp_path), RuntimeEnvironment((CPU,), RTX), family="sam3", shapes=SHAPES)
    assert [name for name, _ in plan.providers] == [CPU]
    assert plan.notes == [f"{TENSORRT} left out: this onnxruntime build does not have it",
                          f"{CUDA} left out: this onnxruntime build does not have it"]
    # Configured explicitly, a missing provider is a warning: the operator asked for it.
    plan = plan_session(toy_graph, runtime(tmp_path, providers=f"{TENSORRT},{CPU}"), RuntimeEnvironment((CPU,), RTX),
                        family="sam3", shapes=SHAPES)
    assert plan.warnings == [f"{TENSORRT} left out: this onnxruntime build does not have it"] and plan.notes == []
    assert not (tmp_path / "engines").exists()


def test_a_known_bad_tensorrt_is_left_out_for_that_model_only(toy_graph, tmp_path):
    jetson = RuntimeEnvironment(EVERYTHING, ORIN, "10.3.0")
    plan = plan_session(toy_graph, runtime(tmp_path), jetson, family="depth-anything-3", shapes=SHAPES)
    assert [name for name, _ in plan.providers] == [CUDA, CPU]
    assert plan.warnings == [f"{TENSORRT} left out: TensorRT 10.3.0 is known bad for depth-anything-3: TensorRT 10.3 "
                          "(JetPack 6.2) gives Depth Anything an unstable depth scale; later TensorRT fixes it "
                          "(upgrade, or keep the CUDA provider)"]
    assert [name for name, _ in plan_session(toy_graph, runtime(tmp_path), jetson, family="sam3",
                                             shapes=SHAPES).providers] == [TENSORRT, CUDA, CPU]
    assert known_bad_tensorrt("depth-anything-3", "10.3") and known_bad_tensorrt("depth-anything-3", "10.3.0")
    assert not known_bad_tensorrt("depth-anything-3", "10.30.1") and not known_bad_tensorrt("depth-anything-3", None)
    assert not known_bad_tensorrt("depth-anything-3", "10.7.0")


def test_without_tensorrts_library_its_provider_is_left_out(toy_graph, tmp_path):
    """onnxruntime-gpu lists its TensorRT provider whether or not TensorRT is installed."""
    plan = plan_session(toy_graph, runtime(tmp_path), RuntimeEnvironment(EVERYTHING, RTX, None), family="sam3",
                        shapes=SHAPES)
    assert [name for name, _ in plan.providers] == [CUDA, CPU] and plan.engine_folder is None
    assert plan.notes == [f"{TENSORRT} left out: TensorRT's library (libnvinfer) is not installed"]


def test_configured_providers_are_honoured_and_unknown_names_refused(toy_graph, tmp_path):
    environment = RuntimeEnvironment(EVERYTHING, RTX, "10.8.0")
    plan = plan_session(toy_graph, runtime(tmp_path, providers="CUDAExecutionProvider", device_id=1), environment,
                        family="sam3", shapes=SHAPES)
    assert plan.providers == [(CUDA, {"device_id": 1}), (CPU, {})]  # CPU always last, for what CUDA cannot run
    plan = plan_session(toy_graph, runtime(tmp_path, trt_fp16=False, trt_workspace_mb=512), environment,
                        family="sam3", shapes=SHAPES)
    assert dict(plan.providers)[TENSORRT]["trt_fp16_enable"] is False
    assert dict(plan.providers)[TENSORRT]["trt_max_workspace_size"] == 512 << 20
    with pytest.raises(ValueError, match="perception.onnx.providers names TensorRT, which onnxruntime does not know"):
        plan_session(toy_graph, runtime(tmp_path, providers="TensorRT,CPUExecutionProvider"), environment,
                     family="sam3", shapes=SHAPES)


def test_the_session_is_asked_for_the_plan_and_reports_what_really_runs(toy_graph, tmp_path, recorded_sessions):
    session = open_session(toy_graph, runtime(tmp_path), family="sam3", shapes=SHAPES,
                           environment=RuntimeEnvironment(EVERYTHING, RTX, "10.8.0"))
    [created] = recorded_sessions
    assert created.requested == [TENSORRT, CUDA, CPU]
    assert created.options[0]["trt_engine_cache_path"] == str(session.plan.engine_folder)
    assert session.provider == CPU  # this onnxruntime has neither GPU provider: it runs on the CPU, and says so
    session.warm_up()  # one run at each input's opt shape: where TensorRT builds the profile's engine
    assert created.runs == [{"x": (1, 3), "points": (1, 14, 2)}]
    feeds = {"x": np.ones((1, 3), np.float32), "points": np.ones((1, 5, 2), np.float32)}
    assert float(session.run(feeds)[0]) == 13.0


def test_this_machine_is_detected_as_it_is():
    environment = RuntimeEnvironment.detect()
    assert environment.available == tuple(onnxruntime.get_available_providers())
    if detect_gpu() is None:  # no CUDA driver here (the project's CI machines)
        assert environment.gpu is None
        plan = plan_session(Path("unused.onnx"), OnnxRuntimeConfig(), environment, family="sam3",
                            shapes=SHAPES)
        assert plan.providers == [(CPU, {})]


def test_names_and_profiles():
    assert [tensorrt_version_string(n) for n in (100300, 100801, 8601, 8205)] == ["10.3.0", "10.8.1", "8.6.1", "8.2.5"]
    assert RTX.slug == "nvidia-geforce-rtx-4090-sm89" and ORIN.slug == "orin-sm87"
    assert profile_options({"x": InputShape.static((1, 3))}) == {}
    assert InputShape.static([2, 3]).is_static and not SHAPES["points"].is_static
