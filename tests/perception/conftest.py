"""Session-wide ONNX exports (each takes tens of seconds on CPU): made once, shared by the test modules."""

from __future__ import annotations

import importlib.util

import pytest
from onnx_exports import export_da3, export_sam3_tiny, save_random_da3


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
