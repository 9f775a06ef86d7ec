"""Following segmented objects through key frames by re-projecting their 3D points (depth + camera poses).

On a robot every key frame has a metric reconstruction in one world frame, so an object's 3D points
from the frames where it is known say where it must appear in the next frame: a box around the
re-projected points that the frame's depth does not hide, and seed points where the re-projected
depth agrees with the observed one. A segmentation backend turns that box and those seeds into the
mask; the loop runs frame by frame, forwards and backwards from the prompt frame, and needs no
video file or video model.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..frames import Frame
from .camera import clip_box
from .reconstruction import Reconstruction, ViewGeometry
from .segmentation import DEFAULT_CONF_THRESHOLD, masked_points

#: A re-projected point is visible when it lies at most this far behind the frame's depth (m, + 5 % of range).
VISIBILITY_TOLERANCE_M = 0.05
#: Fewer visible re-projected points than this means the object is out of view or occluded.
MIN_VISIBLE_POINTS = 15
#: A re-projected point seeds the object when the observed depth agrees within this fraction.
SEED_TOLERANCE = 0.02
#: Seeds lie at least this high above the object's lowest point, which touches its support (m).
SEED_MIN_HEIGHT_M = 0.06
MAX_TRACK_POINTS = 20000
MAX_TRACK_SEEDS = 12
#: While the mask reaches a side of its box, that side moves out by BOX_GROWTH of the box size
#: (at most BOX_GROWTH_STEPS segmentations per frame): a new view may show parts not seen before.
BOX_GROWTH = 0.3
BOX_GROWTH_STEPS = 3

#: (frame, the reconstruction holding it, box [x1, y1, x2, y2] px, (K, 2) foreground seed pixels) -> (H, W) bool mask.
Refiner = Callable[[Frame, Reconstruction, np.ndarray, np.ndarray], np.ndarray]


def object_points(view: ViewGeometry, mask: np.ndarray) -> np.ndarray:
    """(K, 3) world points under ``mask`` that 3D statistics would use (eroded, confident depth)."""
    return masked_points(view.points, view.confidence, mask, DEFAULT_CONF_THRESHOLD)


def follow_objects(frames: list[Frame], recon: Reconstruction, prompt_position: int, masks: list[np.ndarray],
                   refine: Refiner) -> list[np.ndarray]:
    """Per frame an (N, H, W) bool stack: the N ``masks`` of ``frames[prompt_position]`` followed through
    ``frames`` (empty where the object is out of view or hidden)."""
    stacks = [np.zeros((len(masks), f.height, f.width), dtype=bool) for f in frames]
    prompt_view = recon.views[frames[prompt_position].index]
    for n, mask in enumerate(masks):
        stacks[prompt_position][n] = mask
        for step in (1, -1):
            known = object_points(prompt_view, mask)
            position = prompt_position + step
            while 0 <= position < len(frames) and len(known):
                frame = frames[position]
                found = follow(frame, recon, known, refine)
                stacks[position][n] = found
                if found.any():
                    known = np.concatenate([known, object_points(recon.views[frame.index], found)])
                    known = known[:: max(1, len(known) // MAX_TRACK_POINTS)]
                position += step
    return stacks


def follow(frame: Frame, recon: Reconstruction, known: np.ndarray, refine: Refiner) -> np.ndarray:
    """The object's mask in ``frame`` from its known world points, or an empty mask if they are not visible.

    Seeds: re-projected points that lie on the observed surface, above the object's bottom. Box: around
    the re-projected points that the frame's depth does not hide, grown while the mask reaches its sides.
    """
    view = recon.views[frame.index]
    heights = -(known @ recon.gravity_direction)
    uv, z, observed = view.depth_at(known, frame.distortion)
    with np.errstate(invalid="ignore"):
        visible = z <= observed + VISIBILITY_TOLERANCE_M + 0.05 * z  # NaN depth (or out of view): not visible
        on_surface = visible & (np.abs(z - observed) <= SEED_TOLERANCE * z)
    if visible.sum() < MIN_VISIBLE_POINTS:
        return np.zeros((frame.height, frame.width), dtype=bool)
    low, high = uv[visible].min(axis=0), uv[visible].max(axis=0)
    pad = 0.05 * (high - low) + 3
    box = np.array([*(low - pad), *(high + pad + 1)])
    seeds = uv[on_surface & (heights >= heights.min() + SEED_MIN_HEIGHT_M)]
    seeds = seeds[np.linspace(0, len(seeds) - 1, min(MAX_TRACK_SEEDS, len(seeds))).astype(int)]
    for _ in range(BOX_GROWTH_STEPS):
        mask = refine(frame, recon, box, seeds)
        grown = grow_box(box, mask, frame.width, frame.height)
        if grown is None:
            break
        box = grown
    return mask


def grow_box(box: np.ndarray, mask: np.ndarray, width: int, height: int) -> np.ndarray | None:
    """``box`` pushed out by BOX_GROWTH of its size on each side the mask reaches (and the image continues
    beyond), or None when the mask lies well inside."""
    x1, y1, x2, y2 = clip_box(box, width, height)
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    reach = np.array([cols.min() <= x1 and x1 > 0, rows.min() <= y1 and y1 > 0,
                      cols.max() >= x2 - 1 and x2 < width, rows.max() >= y2 - 1 and y2 < height])
    if not reach.any():
        return None
    step = BOX_GROWTH * np.array([x2 - x1, y2 - y1, x2 - x1, y2 - y1])
    return np.array([x1, y1, x2, y2], dtype=float) + np.where(reach, step, 0.0) * [-1, -1, 1, 1]
