"""``tools.Mask``: pixel statistics of boolean segmentation masks (areas, centroids, boxes, overlap)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .shared import Shared

if TYPE_CHECKING:
    from . import ToolContext


def as_mask(mask, name: str = "mask") -> np.ndarray:
    """Return ``mask`` as an (H, W) bool array; leading singleton axes are dropped, anything else is an error."""
    array = np.asarray(mask)
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"{name} must be one (H, W) mask, got shape {np.asarray(mask).shape}")
    return array.astype(bool, copy=False)


def as_mask_pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two masks of the same (H, W) shape, or a ValueError naming both shapes."""
    a, b = as_mask(a, "mask_a"), as_mask(b, "mask_b")
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    return a, b


class Mask(Shared):
    """Boolean (H, W) masks; pixels x = column, y = row, origin top-left. Empty masks raise ValueError."""

    def __init__(self, context: ToolContext) -> None:
        self._context = context

    def area(self, mask) -> int:
        """Number of True pixels."""
        return int(np.count_nonzero(as_mask(mask)))

    def centroid(self, mask) -> tuple[float, float]:
        """Median (x, y) pixel of the True pixels."""
        ys, xs = np.nonzero(as_mask(mask))
        if xs.size == 0:
            raise ValueError("centroid of an empty mask is undefined (no True pixels)")
        return float(np.median(xs)), float(np.median(ys))

    def centroids(self, masks) -> list[tuple[float, float] | None]:
        """centroid of each mask of a list or (N, H, W) stack; None where empty."""
        return [self.centroid(m) if self.area(m) else None for m in masks]

    def bounding_box(self, mask) -> tuple[int, int, int, int]:
        """Pixel box (x1, y1, x2, y2) of the True pixels, x2/y2 exclusive (width = x2 - x1); ValueError if empty."""
        ys, xs = np.nonzero(as_mask(mask))
        if xs.size == 0:
            raise ValueError("bounding box of an empty mask is undefined (no True pixels)")
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1

    def mask_to_bbox(self, mask) -> np.ndarray:
        """bounding_box as a float64 array [x1, y1, x2, y2] (the box format SAM3 and Draw take)."""
        return np.array(self.bounding_box(mask), dtype=np.float64)

    def intersection(self, mask_a, mask_b) -> np.ndarray:
        """(H, W) bool mask True where both are."""
        a, b = as_mask_pair(mask_a, mask_b)
        return a & b

    def iou(self, mask_a, mask_b) -> float:
        """Intersection over union in [0, 1]; ValueError if both are empty."""
        a, b = as_mask_pair(mask_a, mask_b)
        union = np.count_nonzero(a | b)
        if union == 0:
            raise ValueError("IoU of two empty masks is undefined")
        return float(np.count_nonzero(a & b) / union)
