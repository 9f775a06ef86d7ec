"""Export SAM 3 to ONNX in four parts, for the ``sam3-onnx`` backend and TensorRT.

The split keeps the ``sam3`` backend's caches: the image encoder (once per image), the text encoder (once per
phrase), the grounding head with its mask decoder (a text prompt's instances) and the interactive decoder (a box or
points: one object). Every input is static except the interactive decoder's point count (min/opt/max in the sidecar,
a TensorRT optimisation profile). Graphs are float32, opset 18; weights go to FILE.onnx.data beside each FILE.onnx;
``sam3_onnx.json`` records the preprocessing constants and every input's shape (``SAM3OnnxSpec``).

Usage (repo root, venv with torch, sam3, onnx, onnxscript; ``--check`` compares onnxruntime with torch):
  python models/export_sam3_onnx.py --checkpoint models/sam3/sam3.pt --out models/sam3-onnx
  python models/export_sam3_onnx.py --random-weights --tiny --out /tmp/sam3-tiny-onnx --check
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from spatialclaw_ros.perception.clip_tokenizer import ClipTokenizer
from spatialclaw_ros.perception.sam3 import RESOLUTION, build_model, default_bpe_path, load_checkpoint
from spatialclaw_ros.perception.sam3_onnx import PARTS, SIDECAR, SAM3OnnxSpec
from spatialclaw_ros.perception.torch_compat import device_mode

#: ONNX opset: 17 brought LayerNormalization; below it TensorRT's FP16 build of the decomposed LayerNorm overflows.
OPSET = 18
#: Seed of --random-weights (trials and tests: the masks are meaningless).
RANDOM_WEIGHTS_SEED = 0
#: Interactive prompt points: at least one; typically a box (two corners) and tracking's 12 seeds; at most this.
POINTS = (1, 14, 64)
#: Package constants the runtime repeats (``Sam3Processor`` and the interactive predictor's defaults).
MEAN = STD = (0.5, 0.5, 0.5)
MASK_PROBABILITY = 0.5


class ImageEncoder(torch.nn.Module):
    """Normalised (1, 3, R, R) image -> the grounding head's three feature maps and the interactive decoder's three
    (its two high-resolution projections and the embedding with the no-memory token added, as ``predict_inst``)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model
        self.tracker = model.inst_interactive_predictor.model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model.backbone.forward_image(image)
        instance = out["sam2_backbone_out"]["backbone_fpn"]
        decoder = self.tracker.sam_mask_decoder
        return (*out["backbone_fpn"], decoder.conv_s0(instance[0]), decoder.conv_s1(instance[1]),
                instance[2] + self.tracker.no_mem_embed.reshape(1, -1, 1, 1))


class TextEncoder(torch.nn.Module):
    """(1, L) token ids -> text features (L, 1, d) and padding mask (1, L): ``VETextEncoder`` after its tokenizer."""

    def __init__(self, model) -> None:
        super().__init__()
        self.text = model.backbone.language_backbone

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, memory = self.text.encoder(tokens)
        return self.text.resizer(memory.transpose(0, 1)), tokens == 0


class Grounding(torch.nn.Module):
    """Image features and one phrase's text features -> per query the score sigmoid(logit) x sigmoid(presence),
    the box (normalised cx, cy, w, h) and the mask logits: ``forward_grounding`` without geometric prompts."""

    def __init__(self, model) -> None:
        super().__init__()
        from sam3.model.sam3_image_processor import Sam3Processor

        self.model = model
        device = next(model.parameters()).device
        self.find_stage = Sam3Processor(model, resolution=RESOLUTION, device=device).find_stage  # one image, one text

    def forward(self, fpn_0, fpn_1, fpn_2, text_features, text_mask) -> tuple[torch.Tensor, ...]:
        position = self.model.backbone.vision_backbone.position_encoding
        features = (fpn_0, fpn_1, fpn_2)
        backbone_out = {"backbone_fpn": list(features), "vision_pos_enc": [position(f) for f in features],
                        "language_features": text_features, "language_mask": text_mask}
        out = self.model.forward_grounding(backbone_out=backbone_out, find_input=self.find_stage, find_target=None,
                                           geometric_prompt=self.model._get_dummy_prompt())
        scores = out["pred_logits"].sigmoid() * out["presence_logit_dec"].sigmoid().unsqueeze(1)
        return scores[..., 0], out["pred_boxes"], out["pred_masks"]


class Interactive(torch.nn.Module):
    """The interactive decoder's features and (1, P, 2) points in model-input pixels with (1, P) labels (box corners
    2 and 3, foreground 1, background 0) -> one mask's low-resolution logits and its predicted IoU."""

    def __init__(self, model) -> None:
        super().__init__()
        self.tracker = model.inst_interactive_predictor.model

    def forward(self, inst_fpn_0, inst_fpn_1, inst_embed, point_coords, point_labels) -> tuple[torch.Tensor, ...]:
        prompts = self.tracker.sam_prompt_encoder
        sparse, dense = prompts(points=(point_coords, point_labels), boxes=None, masks=None)
        masks, iou, _, _ = self.tracker.sam_mask_decoder(
            image_embeddings=inst_embed, image_pe=prompts.get_dense_pe(), sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense, multimask_output=False, repeat_image=False,
            high_res_features=[inst_fpn_0, inst_fpn_1])
        return masks, iou


WRAPPERS = {"image_encoder": ImageEncoder, "text_encoder": TextEncoder, "grounding": Grounding,
            "interactive": Interactive}


@contextlib.contextmanager
def static_box_bias_size(model, feature_hw: tuple[int, int]) -> Iterator[None]:
    """Within this context the grounding decoder's box relative-position bias gets its feature size as Python ints.

    As shipped, the decoder reads the size out of a tensor (``spatial_shapes[0, 0]``) and compares it with a cached
    one, a data-dependent branch the exporter cannot trace; the size is fixed by the input resolution. The decoder's
    coordinate cache starts empty (the trace would leave fake tensors in it) and everything is restored on exit.
    """
    decoder = model.transformer.decoder
    shipped = decoder._get_rpb_matrix
    saved = decoder.compilable_cord_cache, decoder.compilable_stored_size
    decoder._get_rpb_matrix = lambda reference_boxes, _size: shipped(reference_boxes, feature_hw)
    decoder.compilable_cord_cache = decoder.compilable_stored_size = None
    try:
        yield
    finally:
        del decoder._get_rpb_matrix
        decoder.compilable_cord_cache, decoder.compilable_stored_size = saved


def example_inputs(model, tokenizer: ClipTokenizer) -> dict[str, tuple[torch.Tensor, ...]]:
    """Inputs of every part for tracing and checking: a fixed random image, "object", and a box with one seed."""
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, RESOLUTION, RESOLUTION, generator=generator) * 2 - 1
    tokens = torch.from_numpy(tokenizer("object"))
    with torch.no_grad():
        features = ImageEncoder(model)(image)
        text = TextEncoder(model)(tokens)
    coords = torch.tensor([[[100.0, 200.0], [600.0, 700.0], [350.0, 450.0]]])
    labels = torch.tensor([[2, 3, 1]], dtype=torch.int32)
    return {"image_encoder": (image,), "text_encoder": (tokens,), "grounding": (*features[:3], *text),
            "interactive": (*features[3:], coords, labels)}


def export(model, out: Path, tokenizer: ClipTokenizer, *, tiny: bool, random_weights: bool) -> SAM3OnnxSpec:
    """Write the four parts of ``model`` (a SAM 3 image model with the interactive head) and the sidecar to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with device_mode("cpu"), torch.no_grad():
        inputs = example_inputs(model, tokenizer)
        feature_hw = tuple(inputs["grounding"][2].shape[-2:])
        for name, part in PARTS.items():
            dynamic = None
            if name == "interactive":
                points = torch.export.Dim("points", min=POINTS[0], max=POINTS[2])
                dynamic = (None, None, None, {1: points}, {1: points})
            with static_box_bias_size(model, feature_hw):
                program = torch.onnx.export(WRAPPERS[name](model).eval(), inputs[name], dynamo=True,
                                            opset_version=OPSET, input_names=list(part.inputs),
                                            output_names=list(part.outputs), dynamic_shapes=dynamic)
            program.save(str(out / part.file), external_data=True)
    shapes = {input_name: list(tensor.shape) for name, part in PARTS.items()
              for input_name, tensor in zip(part.inputs, inputs[name])}
    for dynamic in ("point_coords", "point_labels"):
        shapes.pop(dynamic)
    tracker = model.inst_interactive_predictor
    spec = SAM3OnnxSpec(model="sam3-tiny" if tiny else "sam3", random_weights=random_weights, resolution=RESOLUTION,
                        mean=MEAN, std=STD, context_length=tokenizer.context_length,
                        num_queries=model.transformer.decoder.num_queries, mask_probability=MASK_PROBABILITY,
                        mask_threshold=float(tracker.mask_threshold),
                        max_hole_area=float(tracker._transforms.max_hole_area), points=POINTS, shapes=shapes,
                        package_version=importlib.metadata.version("sam3"), opset=OPSET)
    spec.save(out / SIDECAR)
    return spec


def check(model, out: Path, tokenizer: ClipTokenizer) -> dict[str, float]:
    """Largest absolute difference between onnxruntime (CPU) and torch per part output, on ``example_inputs``."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False  # one part's session at a time, memory returned after it (full size: GBs)
    with device_mode("cpu"), torch.no_grad():
        inputs = example_inputs(model, tokenizer)
        differences = {}
        for name, part in PARTS.items():
            expected = [t.numpy() for t in WRAPPERS[name](model).eval()(*inputs[name])]
            session = onnxruntime.InferenceSession(str(out / part.file), options, providers=["CPUExecutionProvider"])
            got = session.run(None, {n: t.numpy() for n, t in zip(part.inputs, inputs[name])})
            del session
            for output, actual, reference in zip(part.outputs, got, expected):
                difference = np.abs(actual.astype(np.float64) - reference.astype(np.float64))
                differences[f"{name}.{output}"] = float(difference.max())
    return differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--checkpoint", help="the official sam3.pt (see models/README.md)")
    weights.add_argument("--random-weights", action="store_true",
                         help=f"random weights (seed {RANDOM_WEIGHTS_SEED}): for trials and tests")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny configuration (random weights only)")
    parser.add_argument("--bpe-path", default="", help="bpe_simple_vocab_16e6.txt.gz (default: open_clip_torch's)")
    parser.add_argument("--out", type=Path, required=True, help="the folder to write the parts and sam3_onnx.json to")
    parser.add_argument("--check", action="store_true", help="compare onnxruntime with torch on example inputs")
    args = parser.parse_args(argv)
    if args.tiny and args.checkpoint:
        parser.error("--tiny builds a test configuration that no checkpoint fits; use it with --random-weights")
    bpe_path = args.bpe_path or default_bpe_path()
    if not bpe_path or not Path(bpe_path).is_file():
        parser.error(f"needs the tokenizer's vocabulary: --bpe-path FILE (got {bpe_path!r})")

    torch.manual_seed(RANDOM_WEIGHTS_SEED)
    model = build_model(bpe_path, tiny=args.tiny)
    if args.checkpoint:
        try:
            load_checkpoint(model, args.checkpoint)
        except (OSError, ValueError) as error:
            parser.error(str(error))
    tokenizer = ClipTokenizer(bpe_path, model.backbone.language_backbone.context_length)
    start = time.perf_counter()
    spec = export(model, args.out, tokenizer, tiny=args.tiny, random_weights=args.random_weights)
    sizes = {part.file: sum(p.stat().st_size for p in args.out.glob(part.file + "*")) for part in PARTS.values()}
    print(f"wrote {', '.join(f'{file} ({size / 1e6:.0f} MB)' for file, size in sizes.items())} and {SIDECAR} to "
          f"{args.out} ({spec.model}, opset {spec.opset}) in {time.perf_counter() - start:.1f} s")
    if args.check:
        for output, difference in check(model, args.out, tokenizer).items():
            print(f"onnxruntime vs torch, largest difference: {output} {difference:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
