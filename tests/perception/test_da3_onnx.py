"""The da3-onnx backend against the da3 (torch) backend: random da3-small weights exported at 2 x 3 x 84 x 112.

Random weights make the depth meaningless, so these tests check that the ONNX path computes what torch does:
the export (models/export_da3_onnx.py), its sidecar, the torch-free preprocessing, the predictions and the
reconstruction. Two torch references: DA3Backend as shipped, whose backbone runs under the package's FP16
autocast (differences at FP16 level), and the same with that autocast off (float32, as exported: ~1e-7).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata

import numpy as np
import pytest

pytest.importorskip("depth_anything_3")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")
import onnx  # noqa: E402
import torch  # noqa: E402

from spatialclaw_ros.config import OnnxRuntimeConfig  # noqa: E402
from spatialclaw_ros.frames import FrameSet  # noqa: E402
from spatialclaw_ros.kernel.host import HostRequest  # noqa: E402
from spatialclaw_ros.perception.da3 import DA3Backend  # noqa: E402
from spatialclaw_ros.perception.da3_onnx import (INPUT_NAME, DA3OnnxBackend, DA3OnnxSpec, preprocess,  # noqa: E402
                                                 processed_size, sidecar_path)
from spatialclaw_ros.perception.model_service import SERVICE, reconstruction_from_reply, reconstruction_handler  # noqa: E402
from spatialclaw_ros.scenes.generator import living_room  # noqa: E402
from spatialclaw_ros.scenes.render import render_scene  # noqa: E402
from onnx_exports import DA3_HEIGHT as HEIGHT  # noqa: E402
from onnx_exports import DA3_PROCESS_RES as PROCESS_RES  # noqa: E402  (160x120 frames are processed at 112x84)
from onnx_exports import DA3_VIEWS as VIEWS  # noqa: E402
from onnx_exports import DA3_WIDTH as WIDTH  # noqa: E402


def _frames(width: int, height: int):
    return [r.frame for r in render_scene(living_room(n_frames=2, width=width, height=height))]


@pytest.fixture(scope="module")
def frames():
    return _frames(160, 120)


@pytest.fixture(scope="module")
def onnx_backend(da3_onnx_path):
    return DA3OnnxBackend(da3_onnx_path, OnnxRuntimeConfig(providers="CPUExecutionProvider"))


@pytest.fixture(scope="module")
def torch_backend(da3_model_dir):
    return DA3Backend(str(da3_model_dir), process_res=PROCESS_RES)


@pytest.fixture(scope="module")
def shipped(torch_backend, frames):
    """DA3Backend's prediction and reconstruction as shipped (backbone under FP16 autocast)."""
    return torch_backend.predict(frames), torch_backend.reconstruct(frames)


@pytest.fixture(scope="module")
def float32(torch_backend, frames):
    """DA3Backend's prediction and reconstruction with ``DepthAnything3.forward`` minus its FP16 autocast."""
    model = torch_backend.model

    def forward(*args):
        with torch.inference_mode():
            return model.model(*args)

    model.forward = forward
    try:
        return torch_backend.predict(frames), torch_backend.reconstruct(frames)
    finally:
        del model.forward


def test_the_sidecar_and_graph_record_the_static_export(da3_onnx_path, onnx_backend):
    from depth_anything_3.utils.io.input_processor import InputProcessor

    spec = DA3OnnxSpec.load(sidecar_path(da3_onnx_path))
    assert spec == onnx_backend.spec
    assert (spec.views, spec.height, spec.width, spec.process_res) == (VIEWS, HEIGHT, WIDTH, PROCESS_RES)
    assert (spec.process_res_method, spec.patch_size, spec.ref_view_strategy) == ("upper_bound_resize", 14,
                                                                                  "saddle_balanced")
    assert spec.mean == tuple(InputProcessor.NORMALIZE.mean) and spec.std == tuple(InputProcessor.NORMALIZE.std)
    assert (spec.model_name, spec.package_version) == ("da3-small", importlib.metadata.version("depth-anything-3"))
    graph = onnx.load(str(da3_onnx_path), load_external_data=False)
    assert [o.version for o in graph.opset_import if o.domain == ""] == [spec.opset] and spec.opset >= 17
    (image_input,) = graph.graph.input
    assert image_input.name == INPUT_NAME
    assert [d.dim_value for d in image_input.type.tensor_type.shape.dim] == [VIEWS, 3, HEIGHT, WIDTH]


@pytest.mark.parametrize("frame_hw, process_res", [((120, 160), 112), ((480, 640), 378), ((75, 100), 112),
                                                   ((333, 500), 504)])
def test_preprocessing_is_da3s_own(onnx_backend, frame_hw, process_res):
    from depth_anything_3.utils.io.input_processor import InputProcessor

    rgb = np.random.default_rng(0).integers(0, 256, (*frame_hw, 3), dtype=np.uint8)
    expected = InputProcessor()([rgb], process_res=process_res, num_workers=1)[0][0].numpy()
    hw = processed_size(frame_hw, process_res, 14)
    assert hw == expected.shape[1:]
    spec = dataclasses.replace(onnx_backend.spec, process_res=process_res, height=hw[0], width=hw[1])
    np.testing.assert_array_equal(preprocess(rgb, spec), expected)


def test_prediction_matches_torch_in_float32(onnx_backend, float32, frames):
    # Measured: depth and confidence 1.2e-7 relative, K 1.1e-6 relative, extrinsics 6e-7 absolute.
    expected, ours = float32[0], onnx_backend.predict(frames)
    assert ours.depth.shape == ours.confidence.shape == (VIEWS, HEIGHT, WIDTH)
    assert ours.K.shape == (VIEWS, 3, 3) and ours.T_camera_model.shape == (VIEWS, 3, 4)
    np.testing.assert_allclose(ours.depth, expected.depth, rtol=2e-6)
    np.testing.assert_allclose(ours.confidence, expected.confidence, rtol=2e-6)
    np.testing.assert_allclose(ours.K, expected.K, rtol=1e-5)
    np.testing.assert_allclose(ours.T_camera_model, expected.T_camera_model, atol=1e-5)


def test_prediction_matches_the_torch_backend(onnx_backend, shipped, frames):
    # FP16 autocast in torch's backbone. Measured: depth 1.5e-5 and confidence 6e-6 relative, K 8.7e-4 relative,
    # extrinsics 6.6e-4 absolute.
    expected, ours = shipped[0], onnx_backend.predict(frames)
    np.testing.assert_allclose(ours.depth, expected.depth, rtol=2e-4)
    np.testing.assert_allclose(ours.confidence, expected.confidence, rtol=1e-4)
    np.testing.assert_allclose(ours.K, expected.K, rtol=5e-3)
    np.testing.assert_allclose(ours.T_camera_model, expected.T_camera_model, atol=5e-3)


@pytest.mark.parametrize("reference, atol", [("float32", 5e-6), ("shipped", 2e-3)])
def test_reconstruction_matches_the_torch_backend(onnx_backend, frames, reference, atol, request):
    # Measured against float32 / shipped: depth 4.5e-7 / 7.3e-5 m, points 5.4e-7 / 1.2e-4 m, poses 5e-7 / 2.8e-4,
    # confidence 1.2e-7 / 3.2e-6, alignment residual 3e-11 / 8e-6 m.
    expected, ours = request.getfixturevalue(reference)[1], onnx_backend.reconstruct(frames)
    assert (ours.source, ours.world_frame, ours.frame_indices) == ("da3-onnx", "world", expected.frame_indices)
    assert ours.alignment_residual_m == pytest.approx(expected.alignment_residual_m, abs=atol)
    for n, frame in enumerate(frames):
        fi = frame.index
        for field in ("depth", "points", "confidence"):
            np.testing.assert_allclose(getattr(ours, field)[fi], getattr(expected, field)[fi], rtol=0, atol=atol)
        np.testing.assert_allclose(ours.extrinsics[fi], expected.extrinsics[fi], rtol=0, atol=atol)
        np.testing.assert_array_equal(ours.intrinsics.K[n], frame.K)


def test_frames_of_another_resolution_that_process_to_the_export_size_run(onnx_backend):
    assert onnx_backend.predict(_frames(320, 240)).depth.shape == (VIEWS, HEIGHT, WIDTH)  # 320x240 -> 112x84 too


def test_frames_that_do_not_fit_the_export_are_refused_saying_how_to_export(onnx_backend, frames):
    with pytest.raises(ValueError, match=r"takes exactly 2 views processed at 84x112 .*got 1 frames of 120x160, "
                                         r"processed at 84x112.*--views 1 --height 84 --width 112"):
        onnx_backend.predict(frames[:1])
    with pytest.raises(ValueError, match=r"got 2 frames of 100x160, processed at 70x112.*"
                                         r"export_da3_onnx.py .*--views 2 --height 70 --width 112"):
        onnx_backend.predict([dataclasses.replace(f, rgb=f.rgb[:100], depth=None) for f in frames])
    with pytest.raises(ValueError, match="one resolution per call"):
        onnx_backend.predict([frames[0], dataclasses.replace(frames[1], rgb=frames[1].rgb[:100], depth=None)])


def test_a_path_without_an_export_is_refused(tmp_path):
    (tmp_path / "lonely.onnx").write_bytes(b"")
    for path in ("", tmp_path / "lonely.onnx", tmp_path / "model.pt"):
        with pytest.raises(ValueError, match="needs perception.da3_onnx.onnx_path: a FILE.onnx written by "
                                             "models/export_da3_onnx.py"):
            DA3OnnxBackend(path)


def test_host_service_round_trip(onnx_backend, frames):
    reply = reconstruction_handler(FrameSet(frames=frames), onnx_backend)(
        HostRequest(SERVICE, {"frame_indices": [f.index for f in frames]}))
    recon, direct = reconstruction_from_reply(reply), onnx_backend.reconstruct(frames)
    assert (recon.source, recon.world_frame) == ("da3-onnx", "world")
    assert recon.alignment_residual_m == direct.alignment_residual_m
    for fi in recon.frame_indices:
        np.testing.assert_array_equal(recon.depth[fi], direct.depth[fi])
