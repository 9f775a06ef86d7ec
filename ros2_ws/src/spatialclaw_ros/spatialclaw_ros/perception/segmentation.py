"""``PerFrameMask``: object masks over frames, and the 3D points and centroids they select in a Reconstruction."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from ..imaging import to_rgb_array
from ..image_types import VisualFeedback
from .reconstruction import FrameMap, Reconstruction

#: Mask borders are eroded by this many pixels before 3D statistics: border pixels often carry
#: the background's depth (segmentation a pixel off, or mixed depth at the silhouette).
MASK_ERODE_PX = 1
#: Confidence below which a pixel's depth is left out of 3D statistics (sensor depth edges score 0.1).
DEFAULT_CONF_THRESHOLD = 0.3

_PALETTE = np.array([(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
                     (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128)], dtype=np.uint8)


def erode_mask(mask: np.ndarray, pixels: int = MASK_ERODE_PX) -> np.ndarray:
    """``mask`` shrunk by ``pixels`` at its border; the mask itself when erosion would leave nothing."""
    if pixels <= 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    eroded = cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    return eroded if eroded.any() else mask


def masked_points(points: np.ndarray, confidence: np.ndarray, mask: np.ndarray, conf_threshold: float) -> np.ndarray:
    """(K, 3) float64 points under the eroded ``mask`` with finite depth and ``confidence >= conf_threshold``."""
    if points.shape[:2] != mask.shape:
        raise ValueError(f"mask {mask.shape} and point map {points.shape[:2]} differ in size")
    keep = erode_mask(mask) & (confidence >= conf_threshold) & np.isfinite(points[..., 2])
    return points[keep].astype(np.float64)


class PerFrameMask:
    """Masks of N objects in T frames: ``masks`` (T, N, H, W) bool, ``labels``, ``object_ids`` (0..N-1),
    ``frame_indices``, ``num_frames`` (T, also ``len(seg)``), ``num_objects`` (N), ``scores``.

    ``seg[fi]`` is the (N, H, W) masks of absolute frame ``fi``. Objects are addressed by index
    (0..N-1) or by exact label. ``source`` names the segmentation backend that made them.
    """

    def __init__(self, masks: list[np.ndarray], labels: list[str], frame_indices: list[int], *,
                 images: list[np.ndarray], scores: list[float] | None = None, source: str = "") -> None:
        if not (len(masks) == len(frame_indices) == len(images)):
            raise ValueError(f"{len(masks)} mask stacks, {len(images)} images and {len(frame_indices)} frame indices differ")
        for fi, stack, image in zip(frame_indices, masks, images):
            if stack.ndim != 3 or stack.shape[0] != len(labels) or stack.shape[1:] != image.shape[:2]:
                raise ValueError(f"frame {fi}: masks {stack.shape} do not match {len(labels)} labels and image {image.shape}")
        self._masks = FrameMap("mask", {int(fi): m.astype(bool) for fi, m in zip(frame_indices, masks)})
        self._images = dict(zip(self._masks, images))
        self.labels = list(labels)
        self.object_ids = list(range(len(labels)))
        self.scores = list(scores) if scores is not None else [1.0] * len(labels)
        self.source = source

    @property
    def frame_indices(self) -> list[int]:
        """Absolute indices of the frames the masks cover, in order."""
        return list(self._masks)

    @property
    def masks(self) -> np.ndarray:
        """(T, N, H, W) bool."""
        return self._masks.stacked()

    @property
    def num_frames(self) -> int:
        """How many frames the masks cover (T)."""
        return len(self._masks)

    @property
    def num_objects(self) -> int:
        """How many objects (N)."""
        return len(self.labels)

    def __len__(self) -> int:
        return len(self._masks)

    def __getitem__(self, frame_index: int) -> np.ndarray:
        return self._masks[frame_index]

    def __repr__(self) -> str:
        areas = {label: [int(self._masks[fi][n].sum()) for fi in self._masks] for n, label in enumerate(self.labels)}
        return (f"PerFrameMask({len(self.labels)} objects x {len(self._masks)} frames {self.frame_indices}, "
                f"source={self.source}, mask areas in px: {areas})")

    _PROMPT_HIDDEN = ("object_index",)

    def object_index(self, obj: int | str = 0) -> int:
        """Position of ``obj`` (index or label) among the objects."""
        if not self.labels:
            raise IndexError("no object was segmented (the prompt found nothing), so there is no mask to use")
        if isinstance(obj, str):
            matches = [n for n, label in enumerate(self.labels) if label == obj]
            if len(matches) != 1:
                raise KeyError(f"{len(matches)} objects are labelled {obj!r}; labels: {self.labels} (use an index)")
            return matches[0]
        if not -len(self.labels) <= int(obj) < len(self.labels):
            raise IndexError(f"object index {obj} out of range: {len(self.labels)} objects {self.labels}")
        return int(obj) % len(self.labels)

    def get_mask(self, frame: int, object: int | str = 0) -> np.ndarray:
        """(H, W) bool mask of ``object`` (index or label) in absolute frame ``frame``."""
        return self._masks[frame][self.object_index(object)]

    def get_masked_points(self, recon: Reconstruction, frame: int, object: int | str = 0,
                          conf_threshold: float = DEFAULT_CONF_THRESHOLD) -> np.ndarray:
        """(K, 3) world points (m) under the mask (border eroded 1 px), with depth and confidence >=
        ``conf_threshold``. May be empty."""
        return masked_points(recon.points[frame], recon.confidence[frame], self.get_mask(frame, object), conf_threshold)

    def get_centroid_3d(self, recon: Reconstruction, frame: int, object: int | str = 0,
                        conf_threshold: float = DEFAULT_CONF_THRESHOLD) -> np.ndarray:
        """(3,) per-axis MEDIAN of ``get_masked_points`` (m): the visible surface's centre, not the whole
        object's; of all masked pixels with depth if none reaches ``conf_threshold``; ValueError if none has depth."""
        points = self.get_masked_points(recon, frame, object, conf_threshold)
        if len(points) == 0:
            points = self.get_masked_points(recon, frame, object, -np.inf)
            if len(points):
                print(f"get_centroid_3d: no pixel of {self.labels[self.object_index(object)]!r} in frame {frame} has "
                      f"confidence >= {conf_threshold}; using all {len(points)} with depth")
        if len(points) == 0:
            n = self.object_index(object)
            area = int(self.get_mask(frame, n).sum())
            raise ValueError(f"object {self.labels[n]!r} has no 3D points in frame {frame}: its mask has {area} px, none "
                             f"with valid depth (use a frame where the object is visible)")
        return np.median(points, axis=0)

    def get_all_masked_points(self, recon: Reconstruction, object: int | str = 0,
                              conf_threshold: float = DEFAULT_CONF_THRESHOLD) -> np.ndarray:
        """(K, 3) world points of ``object`` from every frame that both this mask and ``recon`` hold."""
        frames = [fi for fi in self.frame_indices if fi in recon.points]
        if not frames:
            raise ValueError(f"the masks' frames {self.frame_indices} and the reconstruction's {recon.frame_indices} "
                             f"do not overlap")
        return np.concatenate([self.get_masked_points(recon, fi, object, conf_threshold) for fi in frames])

    def visualize(self, frame_idx: int | None = None, background=None, *, frame: int | None = None,
                  **kwargs) -> VisualFeedback:
        """VisualFeedback of frame ``frame_idx`` (or ``frame=``; optional for one frame): masks tinted, outlined and
        labelled over the frame or ``background``."""
        chosen = frame_idx if frame_idx is not None else frame
        if chosen is None:
            if len(self._masks) != 1:
                raise TypeError(f"visualize() needs the frame: visualize(frame_idx) with one of {self.frame_indices}")
            chosen = self.frame_indices[0]
        masks = self._masks[chosen]
        image = self._images[chosen].copy() if background is None else to_rgb_array(background).copy()
        if image.shape[:2] != masks.shape[1:]:
            raise ValueError(f"background is {image.shape[1]}x{image.shape[0]} but the masks are "
                             f"{masks.shape[2]}x{masks.shape[1]}")
        for n, (label, mask) in enumerate(zip(self.labels, masks)):
            if not mask.any():
                continue
            colour = _PALETTE[n % len(_PALETTE)]
            image[mask] = (0.5 * image[mask] + 0.5 * colour).astype(np.uint8)
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(image, contours, -1, colour.tolist(), 2)
            ys, xs = np.nonzero(mask)
            cv2.putText(image, f"{n}:{label}", (int(xs.min()), max(12, int(ys.min()) - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5, colour.tolist(), 1, cv2.LINE_AA)
        areas = ", ".join(f"{label} {int(mask.sum())} px" for label, mask in zip(self.labels, masks))
        return VisualFeedback(Image.fromarray(image), "PerFrameMask.visualize",
                              f"masks in frame {chosen}: {areas or 'no objects'}", frame_index=chosen)
