"""The ONNX exports the perception tests share, made on random weights by the export scripts under ``models/``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

MODELS = Path(__file__).resolve().parents[2] / "models"
#: The da3-onnx test export: random da3-small weights, 2 views of 160x120 frames processed at 112x84.
DA3_SEED = 4  # with this seed the random model's camera path runs the same way as the scene's TF (test_da3_backend)
DA3_PROCESS_RES = 112
DA3_VIEWS, DA3_HEIGHT, DA3_WIDTH = 2, 84, 112


def load_script(name: str):
    """``models/<name>.py`` as a module (the scripts are not a package)."""
    if str(MODELS) not in sys.path:
        sys.path.append(str(MODELS))
    return importlib.import_module(name)


def save_random_da3(directory: Path) -> Path:
    """A ``save_pretrained`` directory of random da3-small weights (seed ``DA3_SEED``)."""
    import torch

    from spatialclaw_ros.perception.da3 import DA3Backend

    torch.manual_seed(DA3_SEED)
    DA3Backend(allow_random_weights=True, process_res=DA3_PROCESS_RES).model.save_pretrained(str(directory))
    return directory


def export_da3(model_dir: Path, out: Path) -> Path:
    """``out`` (FILE.onnx) exported from ``model_dir`` at the test shape by models/export_da3_onnx.py."""
    assert load_script("export_da3_onnx").main(["--model-dir", str(model_dir), "--out", str(out), "--views",
                                                str(DA3_VIEWS), "--height", str(DA3_HEIGHT), "--width",
                                                str(DA3_WIDTH)]) == 0
    return out


def export_sam3_tiny(out: Path) -> Path:
    """The tiny SAM 3 configuration on random weights (the script's seed), exported in parts to folder ``out``."""
    assert load_script("export_sam3_onnx").main(["--random-weights", "--tiny", "--out", str(out)]) == 0
    return out
