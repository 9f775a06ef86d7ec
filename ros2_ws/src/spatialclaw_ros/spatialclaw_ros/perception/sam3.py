"""SAM 3 (the ``sam3`` package) for the ``sam3`` segmentation backend, in the parent process.

Text prompts go through SAM 3's grounding head: every instance scoring at least the threshold, the
score being sigmoid(query logit) x sigmoid(presence logit). Box and point prompts go through its
interactive (SAM 1 task) head, which returns the one object the prompt selects and honours
background points. Image-encoder outputs are cached per image content and text-encoder outputs per
phrase, so prompting a frame again, or one phrase in many frames, runs no encoder twice. The
sandboxed kernel reaches this through the "perception.segment" host service (``model_service``).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .backends import BoxPrompt, PointPrompt, Prompt, Segment, TextPrompt
from .cache import PerceptionCache, content_digest

log = logging.getLogger(__name__)

#: SAM 3's fixed input resolution (square); every size inside the model is derived from it.
RESOLUTION = 1008
#: Grounding masks are sigmoid probabilities; a pixel belongs to the instance above this.
MASK_PROBABILITY = 0.5
#: A checkpoint that fills less than this share of the model's tensors is the wrong file.
MIN_LOADED_SHARE = 0.5
#: The tokenizer's vocabulary file (CLIP's byte-pair merges).
BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
#: Checkpoint key prefixes of the official ``sam3.pt`` -> where they go in the image model.
CHECKPOINT_PREFIXES = {"detector.": "", "tracker.": "inst_interactive_predictor.model."}


def load_sam3():
    """The ``sam3.model_builder`` module, imported on a CPU-only torch without triton too (see ``torch_compat``)."""
    from .torch_compat import register_torchvision_ops, stub_sam3_triton_kernel

    register_torchvision_ops()
    stub_sam3_triton_kernel()
    from sam3 import model_builder

    return model_builder


def default_bpe_path() -> str:
    """The CLIP BPE vocabulary SAM 3's tokenizer reads, as open_clip_torch ships it ("" if that is not installed);
    ``sam3`` itself does not ship the file."""
    spec = importlib.util.find_spec("open_clip")  # found, not imported: the file is all that is needed
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / BPE_FILE
        if path.is_file():
            return str(path)
    return ""


def build_model(bpe_path: str, device: str = "cpu", *, tiny: bool = False):
    """A SAM 3 image model with the interactive head and random weights, in eval mode on ``device``.

    ``tiny`` builds the same architecture with a 2-block ViT, a 1-layer text encoder and 1-layer
    fusion encoder and decoder (tests and CI: the real pre- and post-processing at a fraction of the
    cost); otherwise the full 840 M-parameter model, the one the official checkpoint fits.
    """
    from .torch_compat import device_mode

    import torch

    builder = load_sam3()
    with device_mode(device):
        if not tiny:
            model = builder.build_sam3_image_model(bpe_path=bpe_path, device="cpu", checkpoint_path=None,
                                                   load_from_HF=False, enable_inst_interactivity=True)
        else:
            model = _build_tiny(builder, bpe_path)
    # The text encoder leaves these two as torch.empty (a checkpoint fills them): give them CLIP's initialisation.
    text = model.backbone.language_backbone.encoder
    torch.nn.init.normal_(text.positional_embedding, std=0.01)
    if isinstance(getattr(text, "text_projection", None), torch.nn.Parameter):
        torch.nn.init.normal_(text.text_projection, std=text.width ** -0.5)
    return model.to(device).eval()


def _build_tiny(builder, bpe_path: str):
    """The tiny configuration of ``build_model``, assembled from the package's own modules."""
    from sam3.model.decoder import TransformerDecoder, TransformerDecoderLayer
    from sam3.model.encoder import TransformerEncoderFusion, TransformerEncoderLayer
    from sam3.model.model_misc import MultiheadAttentionWrapper, TransformerWrapper
    from sam3.model.sam1_task_predictor import SAM3InteractiveImagePredictor
    from sam3.model.text_encoder_ve import VETextEncoder
    from sam3.model.tokenizer_ve import SimpleTokenizer
    from sam3.model.vitdet import ViT

    d_model = 256  # the width every head and the interactive predictor are built for

    def attention(batch_first: bool):
        return MultiheadAttentionWrapper(num_heads=8, dropout=0.0, embed_dim=d_model, batch_first=batch_first)

    vit = ViT(img_size=RESOLUTION, pretrain_img_size=336, patch_size=14, embed_dim=64, depth=2, num_heads=2,
              mlp_ratio=2.0, norm_layer="LayerNorm", drop_path_rate=0.0, qkv_bias=True, use_abs_pos=True,
              tile_abs_pos=True, global_att_blocks=(1,), rel_pos_blocks=(), use_rope=True, use_interp_rope=True,
              window_size=24, pretrain_use_cls_token=True, retain_cls_token=False, ln_pre=True, ln_post=False,
              return_interm_layers=False, bias_patch_embed=False)
    neck = builder._create_vit_neck(builder._create_position_encoding(precompute_resolution=RESOLUTION), vit,
                                    enable_inst_interactivity=True)
    text = VETextEncoder(tokenizer=SimpleTokenizer(bpe_path=bpe_path), d_model=d_model, width=64, heads=2, layers=1)
    encoder = TransformerEncoderFusion(
        layer=TransformerEncoderLayer(activation="relu", d_model=d_model, dim_feedforward=256, dropout=0.0,
                                      pos_enc_at_attn=True, pos_enc_at_cross_attn_keys=False,
                                      pos_enc_at_cross_attn_queries=False, pre_norm=True,
                                      self_attention=attention(True), cross_attention=attention(True)),
        num_layers=1, d_model=d_model, num_feature_levels=1, frozen=False, use_act_checkpoint=False,
        add_pooled_text_to_img_feat=False, pool_text_with_mask=True)
    decoder = TransformerDecoder(
        layer=TransformerDecoderLayer(activation="relu", d_model=d_model, dim_feedforward=256, dropout=0.0,
                                      cross_attention=attention(False), n_heads=8, use_text_cross_attention=True),
        num_layers=1, num_queries=20, return_intermediate=True, box_refine=True, num_o2m_queries=0, dac=True,
        boxRPB="log", d_model=d_model, frozen=False, interaction_layer=None, dac_use_selfatt_ln=True,
        resolution=RESOLUTION, stride=14, use_act_checkpoint=False, presence_token=True)
    interactive = SAM3InteractiveImagePredictor(builder.build_tracker(apply_temporal_disambiguation=False))
    return builder._create_sam3_model(builder._create_vl_backbone(neck, text),
                                      TransformerWrapper(encoder=encoder, decoder=decoder, d_model=d_model),
                                      builder._create_geometry_encoder(), builder._create_segmentation_head(),
                                      builder._create_dot_product_scoring(), interactive, True)


def checkpoint_state(checkpoint: dict) -> dict:
    """The image model's state dict from an official-layout checkpoint (``{"model": {...}}`` or the dict itself):
    detector weights as they are, tracker weights under the interactive predictor."""
    if isinstance(checkpoint.get("model"), dict):
        checkpoint = checkpoint["model"]
    state = {}
    for key, value in checkpoint.items():
        for prefix, target in CHECKPOINT_PREFIXES.items():
            if key.startswith(prefix):
                state[target + key[len(prefix):]] = value
    return state


def load_checkpoint(model, path: str) -> None:
    """Load an official-layout SAM 3 checkpoint (``sam3.pt``) into ``model``; ValueError if it does not fit."""
    import torch

    state = checkpoint_state(torch.load(path, map_location="cpu", weights_only=True))
    missing, unexpected = model.load_state_dict(state, strict=False)
    expected = len(model.state_dict())
    if expected - len(missing) < MIN_LOADED_SHARE * expected:
        raise ValueError(f"{path} fills only {expected - len(missing)} of the model's {expected} tensors: not a SAM 3 "
                         f"checkpoint with detector./tracker. keys (e.g. the official sam3.pt)")
    if missing or unexpected:
        log.warning("SAM 3 checkpoint %s: %d tensors missing (%s...), %d unexpected (%s...)", path, len(missing),
                    missing[:3], len(unexpected), unexpected[:3])


def checked_rgb(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` as a contiguous (H, W, 3) uint8 array; ValueError for any other shape (both SAM 3 backends)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"SAM 3 segments (H, W, 3) RGB images, got shape {rgb.shape}")
    return rgb


def interactive_prompt(prompt: BoxPrompt | PointPrompt) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """What SAM 3's interactive head takes for a prompt: the pixel box (4,) float32 or None, (N, 2) float32 pixel
    points and their (N,) int32 labels (a box's seeds are foreground); ValueError for background points only."""
    points = np.asarray(prompt.points, dtype=np.float32).reshape(-1, 2)
    if isinstance(prompt, BoxPrompt):
        return np.asarray(prompt.box, dtype=np.float32), points, np.ones(len(points), dtype=np.int32)
    labels = np.asarray(prompt.labels, dtype=np.int32)
    if not (labels == 1).any():
        raise ValueError("a point prompt needs at least one foreground point (label 1) on the object")
    return None, points, labels


def _tensor_bytes(value) -> int:
    if hasattr(value, "element_size"):
        return value.element_size() * value.nelement()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


@dataclass(frozen=True)
class Encoded:
    """Encoder outputs kept in the cache: an image's backbone features (with its size) or a phrase's text features."""

    features: dict
    height: int = 0
    width: int = 0

    @property
    def nbytes(self) -> int:
        return _tensor_bytes(self.features)


class SAM3Model:
    """SAM 3 behind ``segment(rgb, prompt)``, with the encoders' outputs cached (see the module docstring)."""

    def __init__(self, model, device: str = "cpu", cache_mb: int = 2048) -> None:
        from sam3.model.sam3_image_processor import Sam3Processor

        self.model = model
        self.device = device
        with self._mode():
            # Used for its input transform (resize to RESOLUTION, normalise) and its single-image query batch.
            self._processor = Sam3Processor(model, resolution=RESOLUTION, device=device)
        self.cache = PerceptionCache(max_bytes=cache_mb << 20)
        self._lock = threading.Lock()  # the interactive head keeps per-call state on the model
        #: Encoder runs so far, for tests and logs: {"image": n, "text": n}.
        self.encoder_runs = {"image": 0, "text": 0}

    @classmethod
    def load(cls, checkpoint: str, bpe_path: str = "", device: str = "cpu", cache_mb: int = 2048) -> SAM3Model:
        """The full model with the weights of ``checkpoint`` (official ``sam3.pt`` layout) and the BPE vocabulary
        at ``bpe_path`` (default: ``default_bpe_path()``)."""
        bpe_path = bpe_path or default_bpe_path()
        for what, path in (("checkpoint", checkpoint), ("bpe_path", bpe_path)):
            if not path or not Path(path).is_file():
                raise ValueError(f"the sam3 segmentation backend needs perception.sam3.{what}: a local file "
                                 f"(see models/README.md), got {path!r}")
        model = build_model(bpe_path, device)
        load_checkpoint(model, checkpoint)
        return cls(model, device, cache_mb)

    def _mode(self):
        from .torch_compat import device_mode

        return device_mode(self.device)

    def segment(self, rgb: np.ndarray, prompt: Prompt) -> list[Segment]:
        """Instances ``prompt`` selects in the (H, W, 3) uint8 ``rgb``: all above the threshold for a text prompt,
        exactly one for a box or point prompt; masks at the image's resolution."""
        rgb = checked_rgb(rgb)
        with self._lock, self._mode():
            image = self._image(rgb)
            if isinstance(prompt, TextPrompt):
                return self._ground(image, self._text(prompt.text), prompt.confidence_threshold)
            return [self._interactive(image, prompt)]

    def _image(self, rgb: np.ndarray) -> Encoded:
        def encode() -> Encoded:
            import torch

            self.encoder_runs["image"] += 1
            state = self._processor.set_image(torch.from_numpy(rgb).permute(2, 0, 1))
            return Encoded(state["backbone_out"], rgb.shape[0], rgb.shape[1])

        return self.cache.get_or_compute(("image", content_digest(rgb)), encode)

    def _text(self, phrase: str) -> Encoded:
        def encode() -> Encoded:
            self.encoder_runs["text"] += 1
            return Encoded(self.model.backbone.forward_text([phrase], device=self.device))

        return self.cache.get_or_compute(("text", phrase), encode)

    def _ground(self, image: Encoded, text: Encoded, threshold: float) -> list[Segment]:
        """Every grounded instance scoring >= ``threshold``, best first."""
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            out = self.model.forward_grounding(backbone_out={**image.features, **text.features},
                                               find_input=self._processor.find_stage, find_target=None,
                                               geometric_prompt=self.model._get_dummy_prompt())
            scores = (out["pred_logits"].sigmoid() * out["presence_logit_dec"].sigmoid().unsqueeze(1)).reshape(-1)
            keep = torch.nonzero(scores >= threshold).reshape(-1)
            keep = keep[torch.argsort(scores[keep], descending=True)]
            logits = out["pred_masks"].reshape(-1, *out["pred_masks"].shape[-2:])[keep]
            masks = F.interpolate(logits.unsqueeze(1).float(), (image.height, image.width), mode="bilinear",
                                  align_corners=False).sigmoid()[:, 0] > MASK_PROBABILITY
        return [Segment(mask.cpu().numpy(), float(score)) for mask, score in zip(masks, scores[keep])]

    def _interactive(self, image: Encoded, prompt: BoxPrompt | PointPrompt) -> Segment:
        """The one object a box (with optional seed points) or foreground/background points select."""
        box, points, labels = interactive_prompt(prompt)
        state = {"original_height": image.height, "original_width": image.width, "backbone_out": image.features}
        masks, quality, _ = self.model.predict_inst(state, point_coords=points if len(points) else None,
                                                    point_labels=labels if len(points) else None, box=box,
                                                    multimask_output=False)
        return Segment(np.asarray(masks[0]) > 0, float(np.clip(quality[0], 0.0, 1.0)))
