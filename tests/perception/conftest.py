"""Shared perception fixtures: the ONNX exports (each takes tens of seconds on CPU) and SAM 3's inputs, made once per
session, and the recording onnxruntime session (the one test double at the onnxruntime provider boundary)."""

from __future__ import annotations

import importlib.util

import pytest
from onnx_exports import export_da3, export_sam3_tiny, save_random_da3

from spatialclaw_ros.scenes.generator import living_room
from spatialclaw_ros.scenes.render import frame_set, render_scene


def _needs(*modules: str) -> None:
    for module in modules:  # found, not imported: sam3 imports only through perception.torch_compat
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (scripts/install.sh --with-models)")


@pytest.fixture(scope="session")
def da3_model_dir(tmp_path_factory):
    _needs("depth_anything_3")
    return save_random_da3(tmp_path_factory.mktemp("da3-small"))


@pytest.fixture(scope="session")
def da3_onnx_path(da3_model_dir, tmp_path_factory):
    _needs("onnx", "onnxscript", "onnxruntime")
    return export_da3(da3_model_dir, tmp_path_factory.mktemp("da3-onnx") / "da3-small.onnx")


@pytest.fixture(scope="session")
def sam3_onnx_dir(tmp_path_factory):
    _needs("sam3", "onnx", "onnxscript", "onnxruntime", "open_clip")
    return export_sam3_tiny(tmp_path_factory.mktemp("sam3-tiny-onnx"))


@pytest.fixture(scope="session")
def clip_bpe_path():
    """The real CLIP vocabulary SAM 3's tokenizer reads, from open_clip_torch (installed by scripts/install.sh)."""
    from spatialclaw_ros.perception.sam3 import default_bpe_path

    path = default_bpe_path()
    if not path:
        pytest.skip("open_clip_torch (the tokenizer's vocabulary) is not installed")
    return path


@pytest.fixture(scope="session")
def sam3_scene():
    """The living room, 3 frames of 160x120: (scene, rendered frames, FrameSet)."""
    scene = living_room(n_frames=3, width=160, height=120)
    rendered = render_scene(scene)
    return scene, rendered, frame_set(scene, rendered)


@pytest.fixture
def recorded_sessions(monkeypatch):
    """Every onnxruntime session the test creates, recording the providers it is asked for (``requested``,
    ``options``) and the input shapes of each run (``runs``); otherwise onnxruntime's own session."""
    onnxruntime = pytest.importorskip("onnxruntime")
    created = []

    class RecordingSession(onnxruntime.InferenceSession):
        def __init__(self, path, providers=None, provider_options=None, **kwargs) -> None:
            created.append(self)
            self.path, self.requested, self.options, self.runs = str(path), providers, provider_options, []
            super().__init__(path, providers=providers, provider_options=provider_options, **kwargs)

        def run(self, output_names, input_feed, run_options=None):
            self.runs.append({name: value.shape for name, value in input_feed.items()})
            return super().run(output_names, input_feed, run_options)

    monkeypatch.setattr(onnxruntime, "InferenceSession", RecordingSession)
    return created
