"""PerceptionService: the model backends of one owner, loaded and warmed when it says, reported, served, freed.

Real exports (random da3-small at 2x84x112, the tiny SAM 3 in four parts) on onnxruntime's real CPU provider. The
one test double is at the onnxruntime provider boundary: a recording ``InferenceSession`` subclass
(``recorded_sessions`` in conftest.py), and, for a TensorRT machine, the providers, GPU and TensorRT version given as a
``RuntimeEnvironment`` value.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

onnxruntime = pytest.importorskip("onnxruntime")

from spatialclaw_ros import doctor  # noqa: E402
from spatialclaw_ros.agent.loop import Agent  # noqa: E402
from spatialclaw_ros.config import (Config, DA3OnnxConfig, KernelConfig, OnnxRuntimeConfig,  # noqa: E402
                                    PerceptionConfig, SAM3OnnxConfig)
from spatialclaw_ros.frames import FrameSet  # noqa: E402
from spatialclaw_ros.kernel.host import HostRequest  # noqa: E402
from spatialclaw_ros.kernel.pool import KernelPool  # noqa: E402
from spatialclaw_ros.llm.client import ChatModel  # noqa: E402
from spatialclaw_ros.perception.backends import BoxPrompt, prompt_payload  # noqa: E402
from spatialclaw_ros.perception.model_service import SEGMENT_SERVICE, SERVICE, reconstruction_from_reply  # noqa: E402
from spatialclaw_ros.perception.onnx_runtime import (CPU, CUDA, TENSORRT, GpuIdentity,  # noqa: E402
                                                     RuntimeEnvironment)
from spatialclaw_ros.perception.service import NO_MODEL, BackendStatus, PerceptionService  # noqa: E402
from spatialclaw_ros.scenes.generator import living_room  # noqa: E402
from spatialclaw_ros.scenes.render import render_scene  # noqa: E402
from onnx_exports import load_script  # noqa: E402

ORIN = GpuIdentity("Orin", (8, 7))
#: A Jetson with JetPack 6.2: TensorRT 10.3, known bad for Depth Anything.
JETSON = RuntimeEnvironment((TENSORRT, CUDA, CPU), ORIN, "10.3.0")
#: Graphs and the input shapes of their warm-up run (the interactive decoder at its profile's opt point count).
WARM_UP_SHAPES = {"da3-small.onnx": {"images": (2, 3, 84, 112)},
                  "image_encoder.onnx": {"image": (1, 3, 1008, 1008)}, "text_encoder.onnx": {"tokens": (1, 32)},
                  "interactive.onnx": {"inst_fpn_0": (1, 32, 288, 288), "inst_fpn_1": (1, 64, 144, 144),
                                       "inst_embed": (1, 256, 72, 72), "point_coords": (1, 14, 2),
                                       "point_labels": (1, 14)}}


@pytest.fixture
def config(da3_onnx_path, sam3_onnx_dir, tmp_path):
    return PerceptionConfig(reconstruction="da3-onnx", segmentation="sam3-onnx",
                            da3_onnx=DA3OnnxConfig(onnx_path=str(da3_onnx_path)),
                            sam3_onnx=SAM3OnnxConfig(export_dir=str(sam3_onnx_dir)),
                            onnx=OnnxRuntimeConfig(engine_cache_dir=str(tmp_path / "engines")))


@pytest.fixture
def da3_only(config):
    """Only the quick-to-load Depth Anything export (for what does not depend on the backend)."""
    return dataclasses.replace(config, segmentation="classical")


@pytest.fixture(scope="module")
def frames():
    return [r.frame for r in render_scene(living_room(n_frames=2, width=160, height=120))]


def test_nothing_loads_until_asked_and_weight_free_backends_need_nothing(config, recorded_sessions, frames):
    service = PerceptionService(config)
    assert service.report() == [BackendStatus("da3-onnx", "reconstruction", "", False),
                                BackendStatus("sam3-onnx", "segmentation", "", False)]
    assert recorded_sessions == []
    plain = PerceptionService(PerceptionConfig())
    plain.load()
    assert plain.report() == [BackendStatus("sensor", "reconstruction", NO_MODEL, True),
                              BackendStatus("classical", "segmentation", NO_MODEL, True)]
    assert plain.handlers(FrameSet(frames)) == {}


def test_load_opens_and_runs_every_graph_once_and_says_what_it_runs_on(config, recorded_sessions):
    with PerceptionService(config) as service:
        service.load()
        service.load()  # loading again does nothing
        assert sorted(s.path.rsplit("/", 1)[1] for s in recorded_sessions) == sorted(
            ["da3-small.onnx", "image_encoder.onnx", "text_encoder.onnx", "grounding.onnx", "interactive.onnx"])
        for session in recorded_sessions:
            assert len(session.runs) == 1  # the warm-up: TensorRT would build or load its engine here
            name = session.path.rsplit("/", 1)[1]
            if name in WARM_UP_SHAPES:
                assert session.runs[0] == WARM_UP_SHAPES[name]
        report = service.report()
    absent = "this onnxruntime build does not have it" if TENSORRT not in onnxruntime.get_available_providers() else ""
    assert [(s.name, s.kind, s.provider, s.loaded) for s in report] == [
        ("da3-onnx", "reconstruction", CPU, True), ("sam3-onnx", "segmentation", CPU, True)]
    assert absent in report[0].detail and "image_encoder " in report[1].detail


def test_on_a_jetson_with_tensorrt_10_3_depth_anything_keeps_off_tensorrt_and_sam3_gets_keyed_engines(
        config, recorded_sessions, tmp_path):
    build = load_script("build_engines").build
    report = build(Config(perception=config), JETSON)
    requested = {s.path.rsplit("/", 1)[1]: (s.requested, s.options) for s in recorded_sessions}
    assert requested["da3-small.onnx"][0] == [CUDA, CPU]
    assert "TensorRT 10.3.0 is known bad for depth-anything-3" in report[0].detail  # reported at configure
    root = tmp_path / "engines" / "orin-sm87-trt10.3.0"
    for part in ("image_encoder", "text_encoder", "grounding", "interactive"):
        providers, options = requested[f"{part}.onnx"]
        assert providers == [TENSORRT, CUDA, CPU] and options[0]["trt_fp16_enable"] is True
        folder = root / options[0]["trt_engine_cache_path"].rsplit("/", 1)[1]
        assert folder.parent == root and folder.name.startswith(f"{part}-fp16-")
        assert json.loads((folder / "key.json").read_text())["tensorrt"] == "10.3.0"
        assert f"{part} engines in {folder}" in report[1].detail
    assert requested["interactive.onnx"][1][0]["trt_profile_max_shapes"] == "point_coords:1x64x2,point_labels:1x64"
    assert [s.provider for s in report] == [CPU, CPU]  # no TensorRT really here: onnxruntime runs them on the CPU


def test_handlers_serve_each_question_in_its_world_frame(config, frames):
    with PerceptionService(config) as service:
        for world in ("map", "odom"):
            framed = [dataclasses.replace(f) for f in frames]
            handlers = service.handlers(FrameSet(framed, world_frame=world))
            assert set(handlers) == {SERVICE, SEGMENT_SERVICE}
            reply = handlers[SERVICE](HostRequest(SERVICE, {"frame_indices": [f.index for f in frames]}))
            assert reconstruction_from_reply(reply).world_frame == world
        assert service.reconstruction.world_frame == "world"  # the loaded backend itself is never re-framed
        reply = handlers[SEGMENT_SERVICE](HostRequest(
            SEGMENT_SERVICE, {"prompt": prompt_payload(BoxPrompt((30, 40, 90, 110)))}, {"image": frames[0].rgb}))
        assert reply.arrays["masks"].shape == (1, 120, 160) and 0.0 <= reply.payload["scores"][0] <= 1.0
        direct = service.reconstruction.reconstruct(frames)  # the handler serves the loaded model's own output
        recon = reconstruction_from_reply(handlers[SERVICE](HostRequest(SERVICE, {"frame_indices": [0, 1]})))
        for index in (0, 1):
            np.testing.assert_array_equal(recon.depth[index], direct.depth[index])


def test_close_frees_the_models_and_a_later_question_loads_them_again(da3_only, frames, recorded_sessions):
    service = PerceptionService(da3_only)
    service.load()
    service.close()
    assert service.reconstruction is None and not service.report()[0].loaded
    assert set(service.handlers(FrameSet(frames))) == {SERVICE}
    assert service.report()[0].loaded and len(recorded_sessions) == 2
    service.close()


@pytest.mark.parametrize("settings, message", [
    ({"reconstruction": "da3"}, "the da3 reconstruction backend needs perception.da3.model_dir"),
    ({"reconstruction": "da3-onnx"}, "the da3-onnx backend needs perception.da3_onnx.onnx_path"),
    ({"segmentation": "sam3-onnx"}, "the sam3-onnx segmentation backend needs perception.sam3_onnx.export_dir"),
    ({"segmentation": "sam3"}, "the sam3 segmentation backend needs perception.sam3.checkpoint"),
])
def test_a_missing_model_file_is_refused_naming_its_setting(settings, message):
    service = PerceptionService(PerceptionConfig(**settings))
    with pytest.raises(ValueError, match=message):
        service.load()
    assert not any(s.loaded for s in service.report() if s.provider != NO_MODEL)


def test_an_agent_owns_the_service_it_creates_and_not_one_it_is_given(da3_only):
    pool = KernelPool(KernelConfig(pool_size=0))
    given = PerceptionService(da3_only)
    given.load()
    with ChatModel(Config().model) as model:
        with Agent(Config(perception=da3_only), model=model, pool=pool, perception=given) as agent:
            assert agent.perception is given
        assert given.report()[0].loaded  # still the owner's
        with Agent(Config(perception=da3_only), model=model, pool=pool) as agent:
            own = agent.perception
            assert isinstance(own, PerceptionService) and own is not given and own.config == da3_only
            own.load()
        assert not own.report()[0].loaded
    given.close()
    pool.close()


def test_doctor_says_what_each_model_backend_runs_on(config):
    checks = doctor.check_perception_providers(Config(perception=config))
    assert [(c.name, c.ok) for c in checks] == [("perception reconstruction da3-onnx", True),
                                                ("perception segmentation sam3-onnx", True)]
    assert all(c.detail.startswith(f"runs on {CPU}") for c in checks)
    assert doctor.check_perception_providers(Config()) == []  # sensor + classical: no models
    [failed] = doctor.check_perception_providers(Config(perception=PerceptionConfig(reconstruction="da3-onnx")))
    assert not failed.ok and "needs perception.da3_onnx.onnx_path" in failed.detail


def test_build_engines_fills_the_cache_from_the_config_file(config, tmp_path, capsys):
    path = tmp_path / "config.yaml"
    perception = {"reconstruction": "da3-onnx", "segmentation": "sam3-onnx",
                  "da3_onnx": {"onnx_path": config.da3_onnx.onnx_path},
                  "sam3_onnx": {"export_dir": config.sam3_onnx.export_dir}, "onnx": {"providers": CPU}}
    path.write_text(json.dumps({"perception": perception}))  # JSON is YAML
    assert load_script("build_engines").main(["--config", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [f"da3-onnx (reconstruction): {CPU}", f"sam3-onnx (segmentation): {CPU}"]
    path.write_text(json.dumps({"perception": {**perception, "da3_onnx": {"onnx_path": str(tmp_path / "no.onnx")}}}))
    assert load_script("build_engines").main(["--config", str(path)]) == 1
    assert "needs perception.da3_onnx.onnx_path" in capsys.readouterr().err
