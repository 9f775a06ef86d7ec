"""Export Depth Anything 3's network to ONNX at one static shape, for the ``da3-onnx`` backend and TensorRT.

The graph is what ``DepthAnything3.inference`` runs between its input preprocessing and its numpy
post-processing: ImageNet-normalised RGB (N, 3, H, W) -> depth and confidence (N, H, W), intrinsics (N, 3, 3)
and world-to-camera extrinsics (N, 3, 4) at (H, W), in float32 (the package autocasts its backbone to FP16;
a TensorRT build chooses its own precision). Weights go to FILE.onnx.data next to FILE.onnx (a protobuf stops
at 2 GB), the preprocessing constants to FILE.json (``DA3OnnxSpec``). H and W are what DA3 processes the
camera's frames at (multiples of 14, long side = process_res: 640x480 at 504 is 378x504).

Usage (repo root, venv with torch, depth-anything-3, onnx, onnxscript):
  python models/export_da3_onnx.py --model-dir models/da3-large --out models/da3-large-2x378x504.onnx \
      --views 2 --height 378 --width 504
  python models/export_da3_onnx.py --random-weights --out /tmp/da3-small.onnx --views 2 --height 84 --width 112
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import inspect
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import torch

from spatialclaw_ros.perception.da3 import load_depth_anything_3
from spatialclaw_ros.perception.da3_onnx import INPUT_NAME, OUTPUT_NAMES, DA3OnnxSpec, sidecar_path

#: ONNX opset: 17 brought LayerNormalization; below it TensorRT's FP16 build of the decomposed LayerNorm overflows.
OPSET = 18
#: Rows of the fixed RoPE frequency table; the largest position is the patch grid's long side (the class token
#: takes position 0), so 256 rows cover inputs up to 14 x 255 = 3570 px a side.
ROPE_POSITIONS = 256
#: Preset and seed of --random-weights (trials and tests: the depth is meaningless).
RANDOM_WEIGHTS_PRESET = "da3-small"
RANDOM_WEIGHTS_SEED = 0
#: DepthAnything3Net's output keys, in the order of the graph's OUTPUT_NAMES.
NET_OUTPUTS = ("depth", "depth_conf", "intrinsics", "extrinsics")


class NetworkForward(torch.nn.Module):
    """DepthAnything3Net on one batch of N views without input poses: the tensors ``inference`` converts to numpy."""

    def __init__(self, net: torch.nn.Module, ref_view_strategy: str) -> None:
        super().__init__()
        self.net = net
        self.ref_view_strategy = ref_view_strategy

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = self.net(images[None], None, None, [], False, False, self.ref_view_strategy)
        return tuple(output[key][0] for key in NET_OUTPUTS)


@contextlib.contextmanager
def fixed_rope_table(model: torch.nn.Module, positions: int = ROPE_POSITIONS) -> Iterator[None]:
    """Within this context the 2D RoPE modules of ``model`` look their angles up in a ``positions``-row table.

    As shipped, ``RotaryPositionEmbedding2D.forward`` sizes the table as ``int(positions.max()) + 1``, a
    data-dependent size the exporter cannot trace; rows past the largest position are never read, so the outputs
    are unchanged. Only ``model``'s modules change (an instance ``forward``), and the RoPE's two caches (frequency
    tables, patch positions) start empty: the trace would leave fake tensors in them for later eager calls.
    Everything is restored on exit.
    """
    from depth_anything_3.model.dinov2.layers.rope import PositionGetter, RotaryPositionEmbedding2D

    def forward(self, tokens: torch.Tensor, token_positions: torch.Tensor) -> torch.Tensor:
        cos, sin = self._compute_frequency_components(tokens.size(-1) // 2, positions, tokens.device, tokens.dtype)
        vertical, horizontal = tokens.chunk(2, dim=-1)
        return torch.cat((self._apply_1d_rope(vertical, token_positions[..., 0], cos, sin),
                          self._apply_1d_rope(horizontal, token_positions[..., 1], cos, sin)), dim=-1)

    ropes = [m for m in model.modules() if isinstance(m, RotaryPositionEmbedding2D)]
    getters = [getter for m in model.modules()
               if isinstance(getter := getattr(m, "position_getter", None), PositionGetter)]
    caches = ([(rope, "frequency_cache", rope.frequency_cache) for rope in ropes]
              + [(getter, "position_cache", getter.position_cache) for getter in getters])
    for owner, name, _ in caches:
        setattr(owner, name, {})
    for rope in ropes:
        rope.forward = types.MethodType(forward, rope)
    try:
        yield
    finally:
        for rope in ropes:
            del rope.forward
        for owner, name, cache in caches:
            setattr(owner, name, cache)


def export(model: torch.nn.Module, out: Path, views: int, height: int, width: int) -> DA3OnnxSpec:
    """Write ``model`` (a ``DepthAnything3``) to ``out`` for (views, 3, height, width) inputs, and its sidecar."""
    from depth_anything_3.utils.io.input_processor import InputProcessor

    if getattr(model.model, "cam_dec", None) is None:
        raise ValueError(f"{model.model_name} predicts no camera poses; export a preset with a camera decoder "
                         "(da3-small, da3-base, da3-large, da3-giant)")
    patch = InputProcessor.PATCH_SIZE
    if height % patch or width % patch or max(height, width) // patch >= ROPE_POSITIONS:
        raise ValueError(f"height and width must be multiples of {patch} up to {patch * (ROPE_POSITIONS - 1)} px, "
                         f"got {height}x{width}")
    if views < 1:
        raise ValueError(f"views must be at least 1, got {views}")
    defaults = inspect.signature(type(model).inference).parameters
    spec = DA3OnnxSpec(views=views, height=height, width=width, process_res=max(height, width),
                       process_res_method=defaults["process_res_method"].default, patch_size=patch,
                       mean=tuple(InputProcessor.NORMALIZE.mean), std=tuple(InputProcessor.NORMALIZE.std),
                       ref_view_strategy=defaults["ref_view_strategy"].default, model_name=model.model_name,
                       package_version=importlib.metadata.version("depth-anything-3"), opset=OPSET)
    forward = NetworkForward(model.model, spec.ref_view_strategy).eval()
    images = torch.zeros(views, 3, height, width)
    out.parent.mkdir(parents=True, exist_ok=True)
    with fixed_rope_table(model), torch.no_grad():
        program = torch.onnx.export(forward, (images,), dynamo=True, opset_version=OPSET,
                                    input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES))
    program.save(str(out), external_data=True)
    spec.save(sidecar_path(out))
    return spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--model-dir", help="a DepthAnything3.save_pretrained directory (see models/README.md)")
    weights.add_argument("--random-weights", action="store_true",
                         help=f"{RANDOM_WEIGHTS_PRESET} with random weights (seed {RANDOM_WEIGHTS_SEED}): for trials")
    parser.add_argument("--out", type=Path, required=True, help="the .onnx to write (the sidecar goes next to it)")
    parser.add_argument("--views", type=int, required=True, help="number of frames per call (static)")
    parser.add_argument("--height", type=int, required=True, help="processed height in px (multiple of 14)")
    parser.add_argument("--width", type=int, required=True, help="processed width in px (multiple of 14)")
    args = parser.parse_args(argv)

    DepthAnything3 = load_depth_anything_3()
    if args.model_dir:
        model = DepthAnything3.from_pretrained(args.model_dir)
    else:
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        model = DepthAnything3(model_name=RANDOM_WEIGHTS_PRESET)
    start = time.perf_counter()
    try:
        spec = export(model, args.out, args.views, args.height, args.width)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {args.out} and {sidecar_path(args.out)} ({spec.model_name}, {spec.views}x3x{spec.height}x"
          f"{spec.width}, opset {spec.opset}) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
