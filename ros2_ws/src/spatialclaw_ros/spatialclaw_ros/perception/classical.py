"""The weight-free ``classical`` segmenter: OpenCV GrabCut seeded by the prompt, refined with depth and gravity.

Box prompt: GrabCut starts from the box (outside = background). Where the frame has a metric
reconstruction, depth speaks first: the crop around the box is cut into surfaces at depth
discontinuities; a horizontal surface that continues outside the box (the floor, a table under the
object) is support and a surface that runs out of the crop (a wall) is background: both are removed.
The surfaces left in the box are grouped into 3D objects (Euclidean clustering of their points); the
groups whose extent fills the box are the object, small other groups are removed, larger ones start
GrabCut as background and colour decides. Point prompts: the same with the points as seeds
(foreground points keep their surface and group, background points reject theirs and start GrabCut
with the pixels nearer to them than to any foreground point as background) in a box around the
foreground points' surfaces. Text prompts: ``vlm.locate`` gives one point. Video: ``tracking`` gives
a box and seeds in each further frame, and the box prompt's method with those seeds segments it.
"""

from __future__ import annotations

import re

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..frames import Frame
from .backends import BoxPrompt, MissingInputError, PointPrompt, Prompt, Segment, SegmentationBackend
from .camera import clip_box, depth_edges
from .reconstruction import Reconstruction, ViewGeometry

#: A support surface is this thick (m): it absorbs depth noise and the bottom of what stands on it.
SUPPORT_TOLERANCE_M = 0.03
#: A height level holding at least this share of a frame's valid pixels is a horizontal surface (floor, table top).
SUPPORT_MIN_SHARE = 0.05
LEVEL_BIN_M = 0.01
#: Surfaces in the box join one object when their points come within this gap (m), plus 1.5 sample
#: spacings and CLUSTER_NOISE of the range (depth noise); clustering uses about CLUSTER_SAMPLES pixels.
CLUSTER_GAP_M = 0.03
CLUSTER_NOISE = 0.02
CLUSTER_SAMPLES = 4000
#: A 3D group besides the object's with fewer pixels than this share of the object's is certainly not the object.
MINOR_SHARE = 0.1
#: A further 3D group joins the boxed object when it improves the fit of the object's extent to the box by this.
MIN_FIT_GAIN = 0.02
#: If depth would leave less than this share of the box to the object, the object must be joined to a
#: surface that leaves the crop (e.g. it fills the box and touches a wall): then only support is removed.
MIN_OBJECT_SHARE = 0.1
#: When GrabCut keeps (almost) none of the surfaces depth chose, colour cannot tell the object
#: from its surroundings and those surfaces are the mask.
MIN_COLOUR_AGREEMENT = 0.1
#: The crop around the box extends by this fraction of the box's longer side (at least CROP_MIN_PX).
CROP_MARGIN = 0.15
CROP_MIN_PX = 10
GRABCUT_ITERATIONS = 4
GRABCUT_SEED = 0
SEED_RADIUS_PX = 3
#: Without a box, support around a point prompt is what continues beyond this fraction of the image
#: around the points (and, without depth, this window is the box).
POINT_WINDOW = 0.5


def _disk(mask: np.ndarray, points: np.ndarray, value: int) -> None:
    for x, y in np.round(points).astype(int):
        cv2.circle(mask, (int(x), int(y)), SEED_RADIUS_PX, int(value), thickness=-1)


def horizontal_levels(heights: np.ndarray) -> list[float]:
    """Heights (m) of the horizontal surfaces in a frame (floor, table tops): peaks of a 1 cm height histogram
    holding at least SUPPORT_MIN_SHARE of the frame's valid pixels within SUPPORT_TOLERANCE_M of the peak."""
    heights = heights[np.isfinite(heights)]
    if heights.size == 0:
        return []
    low = heights.min() - LEVEL_BIN_M
    counts = gaussian_filter1d(np.bincount(((heights - low) / LEVEL_BIN_M).astype(int)).astype(float), 1.0)
    band = int(round(SUPPORT_TOLERANCE_M / LEVEL_BIN_M))
    levels = []
    for peak in np.flatnonzero((counts > 0) & (counts == maximum_filter1d(counts, 2 * band + 1))):
        level = low + (peak + 0.5) * LEVEL_BIN_M
        near = np.abs(heights - level) <= SUPPORT_TOLERANCE_M
        if near.sum() >= SUPPORT_MIN_SHARE * heights.size:
            levels.append(float(np.median(heights[np.abs(heights - level) <= LEVEL_BIN_M])))
    return levels


def support_mask(heights: np.ndarray, surface: np.ndarray, ring: np.ndarray, levels: list[float]) -> np.ndarray:
    """Pixels of horizontal surfaces that continue outside the box.

    ``heights`` (m, up), ``surface`` the pixels with trusted depth, ``ring`` the surface pixels
    outside the box, ``levels`` the horizontal surfaces that may support the object. Support is every
    surface pixel within SUPPORT_TOLERANCE_M of a level that reaches the ring through such pixels.
    """
    support = np.zeros(surface.shape, dtype=bool)
    for level in levels:
        at_level = surface & (np.abs(heights - level) <= SUPPORT_TOLERANCE_M)
        _, labels = cv2.connectedComponents(at_level.astype(np.uint8), connectivity=4)
        touching = np.unique(labels[at_level & ring])
        support |= np.isin(labels, touching[touching > 0])
    return support


def _window(points: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """A box reaching POINT_WINDOW of the image size beyond the points on each side."""
    reach = np.array([POINT_WINDOW * width, POINT_WINDOW * height]) / 2
    return clip_box((*(points.min(axis=0) - reach), *(points.max(axis=0) + reach + 1)), width, height)


def _surface_box(fg: np.ndarray, view: ViewGeometry | None, gravity: np.ndarray, width: int,
                 height: int) -> tuple[int, int, int, int]:
    """Box of the surfaces under the foreground points (support around them removed); their window without depth."""
    window = _window(fg, width, height)
    if view is None:
        return window
    inside = np.zeros((height, width), dtype=bool)
    inside[window[1]:window[3], window[0]:window[2]] = True
    labels, _ = _surfaces(view, (0, 0, width, height), inside, fg, gravity)
    seeded = labels[_pixels(fg, labels.shape)]
    if not seeded.any():
        return window
    rows, cols = np.nonzero(np.isin(labels, seeded[seeded > 0]))
    return clip_box((cols.min() - SEED_RADIUS_PX, rows.min() - SEED_RADIUS_PX, cols.max() + 1 + SEED_RADIUS_PX,
                     rows.max() + 1 + SEED_RADIUS_PX), width, height)


def segment_frame(rgb: np.ndarray, box, fg: np.ndarray, bg: np.ndarray, view: ViewGeometry | None,
                  gravity: np.ndarray) -> np.ndarray:
    """(H, W) bool mask of one object from a pixel box and/or seed points (see the module docstring).

    ``box`` [x1, y1, x2, y2] or None (then found from ``fg``); ``fg``/``bg`` (K, 2) pixel seeds;
    ``view`` the frame's reconstruction (None: colour only); ``gravity`` world down direction.
    """
    height, width = rgb.shape[:2]
    fg = np.asarray(fg, dtype=float).reshape(-1, 2)
    bg = np.asarray(bg, dtype=float).reshape(-1, 2)
    x1, y1, x2, y2 = clip_box(box, width, height) if box is not None else _surface_box(fg, view, gravity, width, height)
    margin = max(CROP_MIN_PX, int(CROP_MARGIN * max(x2 - x1, y2 - y1)))
    cx1, cy1, cx2, cy2 = max(0, x1 - margin), max(0, y1 - margin), min(width, x2 + margin), min(height, y2 + margin)
    offset = np.array([cx1, cy1], dtype=float)
    crop = np.ascontiguousarray(rgb[cy1:cy2, cx1:cx2])
    inside = np.zeros(crop.shape[:2], dtype=bool)
    inside[y1 - cy1:y2 - cy1, x1 - cx1:x2 - cx1] = True

    init = np.where(inside, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
    rejected = np.zeros(inside.shape, dtype=bool)  # what depth says is certainly not the object
    chosen = np.zeros(inside.shape, dtype=bool)  # the surfaces depth says are the object
    if view is not None:
        rejected, likely, chosen = _depth_rejection(view, (cx1, cy1, cx2, cy2), inside, fg - offset, bg - offset,
                                                    gravity, outer_sides=(cx1 < x1, cy1 < y1, cx2 > x2, cy2 > y2))
        init[inside & (rejected | likely)] = cv2.GC_PR_BGD
    if len(bg) and len(fg):
        init[inside & _nearer_to_background(inside.shape, fg - offset, bg - offset)] = cv2.GC_PR_BGD
    _disk(init, bg - offset, cv2.GC_BGD)
    _disk(init, fg - offset, cv2.GC_FGD)

    is_bg = np.isin(init, (cv2.GC_BGD, cv2.GC_PR_BGD))
    if is_bg.any() and (~is_bg).any():
        cv2.setRNGSeed(GRABCUT_SEED)  # GrabCut's k-means draws from OpenCV's thread RNG: same input, same mask
        cv2.grabCut(crop, init, None, np.zeros((1, 65)), np.zeros((1, 65)), GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    object_mask = np.isin(init, (cv2.GC_FGD, cv2.GC_PR_FGD)) & inside & ~rejected
    if view is not None and np.count_nonzero(object_mask & chosen) < MIN_COLOUR_AGREEMENT * np.count_nonzero(chosen):
        object_mask |= chosen & inside  # colour cannot tell the object from its surroundings: depth can
    mask = np.zeros((height, width), dtype=bool)
    mask[cy1:cy2, cx1:cx2] = object_mask
    return mask


def _nearer_to_background(shape: tuple[int, int], fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Pixels nearer to a background point than to any foreground point: each background point claims
    its side of the object, so GrabCut starts with a colour model that separates the two."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    pixels = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(float)
    to_fg = cKDTree(fg).query(pixels)[0]
    to_bg = cKDTree(bg).query(pixels)[0]
    return (to_bg < to_fg).reshape(shape)


def _pixels(points: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the rounded (x, y) ``points`` that fall inside an image of ``shape``."""
    xs, ys = np.round(points).astype(int).reshape(-1, 2).T
    ok = (xs >= 0) & (ys >= 0) & (xs < shape[1]) & (ys < shape[0])
    return ys[ok], xs[ok]


def _object_groups(labels: np.ndarray, candidates: np.ndarray, points: np.ndarray, depth: np.ndarray,
                   fx: float) -> dict[int, int]:
    """Surface label -> 3D group: surfaces whose points come within a gap of each other belong together.

    Euclidean clustering of the candidate pixels' world points sampled on a grid (at most about
    CLUSTER_SAMPLES); the gap allowed grows with range (sample spacing and depth noise). A surface
    takes the group most of its samples fall in; surfaces too small to be sampled are left out.
    """
    rows, cols = np.nonzero(candidates)
    step = max(1, int(np.ceil(np.sqrt(rows.size / CLUSTER_SAMPLES))))
    on_grid = (rows % step == 0) & (cols % step == 0)
    rows, cols = rows[on_grid], cols[on_grid]
    if rows.size == 0:
        return {}
    xyz = points[rows, cols].astype(np.float64)
    radius = CLUSTER_GAP_M + (1.5 * step / fx + CLUSTER_NOISE) * float(np.median(depth[rows, cols]))
    pairs = cKDTree(xyz).query_pairs(radius, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(xyz), len(xyz)))
    _, group = connected_components(graph, directed=False)
    surface = labels[rows, cols]
    return {int(label): int(np.bincount(group[surface == label]).argmax()) for label in np.unique(surface)}


def _groups_filling_box(labels: np.ndarray, groups: dict[int, int], inside: np.ndarray) -> set[int]:
    """The 3D groups that make up the boxed object: starting from the group whose extent fits the box
    best, add groups while that makes the extent fit better (an object seen in parts, e.g. a sofa whose
    arm hides where it joins the seat); a group lying within the others' extent (another object) adds nothing."""
    def fit(chosen: set[int]) -> float:
        rows, cols = np.nonzero(inside & np.isin(labels, [label for label, g in groups.items() if g in chosen]))
        if rows.size == 0:
            return 0.0
        extent = np.zeros(inside.shape, dtype=bool)
        extent[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
        return np.count_nonzero(extent & inside) / np.count_nonzero(extent | inside)

    if not groups:
        return set()
    remaining = set(groups.values())
    chosen: set[int] = set()
    score = 0.0
    while remaining:
        best = max(remaining, key=lambda g: fit(chosen | {g}))
        gain = fit(chosen | {best}) - score
        if chosen and gain < MIN_FIT_GAIN:
            break
        chosen.add(best)
        remaining.discard(best)
        score += gain
    return chosen


def _surfaces(view: ViewGeometry, crop: tuple[int, int, int, int], inside: np.ndarray, fg: np.ndarray,
              gravity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The crop cut into surfaces at depth edges: (labels, 0 = none; support mask), support being the
    horizontal surfaces that continue outside ``inside`` and lie below every foreground seed."""
    cx1, cy1, cx2, cy2 = crop
    all_heights = -(view.points.astype(np.float64) @ gravity)
    heights = all_heights[cy1:cy2, cx1:cx2]
    depth = view.depth[cy1:cy2, cx1:cx2]
    surface = np.isfinite(depth) & ~depth_edges(depth)
    levels = horizontal_levels(all_heights)
    seed_heights = heights[_pixels(fg, heights.shape)]
    seed_heights = seed_heights[np.isfinite(seed_heights)]
    if seed_heights.size:  # an object rests on what is below it: a level at or above a seed is the object
        levels = [level for level in levels if level < seed_heights.min() - SUPPORT_TOLERANCE_M]
    support = support_mask(heights, surface, surface & ~inside, levels)
    _, labels = cv2.connectedComponents((surface & ~support).astype(np.uint8), connectivity=4)
    return labels, support


def _depth_rejection(view: ViewGeometry, crop: tuple[int, int, int, int], inside: np.ndarray, fg: np.ndarray,
                     bg: np.ndarray, gravity: np.ndarray,
                     outer_sides: tuple[bool, bool, bool, bool]) -> tuple[np.ndarray, np.ndarray]:
    """Crop pixels that depth says are not the object: (certain, likely).

    Certain: support surfaces, surfaces leaving the crop, surfaces under a background seed, and small
    other 3D groups (under MINOR_SHARE of the object's pixels: slivers of other objects). Likely: the
    other 3D groups in the box than the ones under the foreground seeds or, without seeds, the ones
    whose extent fills the box; they may still be the object seen in parts, so colour decides.
    A surface under a foreground seed is never rejected. ``outer_sides`` (left, top, right, bottom)
    says which crop sides lie beyond the box (not at the image border).
    """
    cx1, cy1, cx2, cy2 = crop
    labels, support = _surfaces(view, crop, inside, fg, gravity)
    sides = [labels[:, 0], labels[0, :], labels[:, -1], labels[-1, :]]
    leaving = {int(v) for side, outer in zip(sides, outer_sides) if outer for v in np.unique(side)} - {0}
    kept = set(labels[_pixels(fg, labels.shape)].tolist()) - {0}
    refused = set(labels[_pixels(bg, labels.shape)].tolist()) - kept - {0}
    certain = np.isin(labels, sorted((leaving | refused) - kept))
    if np.count_nonzero(inside & ~support & ~certain) < MIN_OBJECT_SHARE * np.count_nonzero(inside):
        certain = np.isin(labels, sorted(refused))
    groups = _object_groups(labels, inside & (labels > 0) & ~certain, view.points[cy1:cy2, cx1:cx2],
                            view.depth[cy1:cy2, cx1:cx2], float(view.K[0, 0]))
    wanted = {groups[label] for label in kept if label in groups} or _groups_filling_box(labels, groups, inside)
    others = {label for label, g in groups.items() if g not in wanted} - kept
    in_box = np.bincount(labels[inside], minlength=labels.max() + 1)
    size = {g: sum(in_box[label] for label, of in groups.items() if of == g) for g in set(groups.values())}
    minor = MINOR_SHARE * sum(size[g] for g in wanted)
    small = {label for label in others if size[groups[label]] < minor}
    chosen = {label for label, g in groups.items() if g in wanted} | kept
    return (support | certain | np.isin(labels, sorted(small)), np.isin(labels, sorted(others - small)),
            np.isin(labels, sorted(chosen)))


class ClassicalSegmenter(SegmentationBackend):
    """GrabCut + depth + gravity, no model weights (see the module docstring)."""

    name = "classical"
    summary = ("classical (no model weights): GrabCut from the prompt refined with depth; one object per prompt, "
               "a text prompt segments the single instance vlm.locate points at; video masks follow the object "
               "by re-projecting its 3D points (needs depth and camera poses)")

    def segment_image(self, frame: Frame, prompt: Prompt) -> list[Segment]:
        try:
            recon = self.reconstruct([frame])
        except MissingInputError:  # no depth or pose (e.g. a bare image): colour alone
            return self._segment(frame, prompt, None, np.zeros(3))
        return self._segment(frame, prompt, recon.views[frame.index], recon.gravity_direction)

    def _segment(self, frame: Frame, prompt: Prompt, view: ViewGeometry | None, gravity: np.ndarray) -> list[Segment]:
        if isinstance(prompt, BoxPrompt):
            return [Segment(segment_frame(frame.rgb, prompt.box, prompt.points, [], view, gravity), 1.0)]
        if isinstance(prompt, PointPrompt):
            points = np.asarray(prompt.points, dtype=float).reshape(-1, 2)
            labels = np.asarray(prompt.labels, dtype=int).reshape(-1)
            if len(points) != len(labels) or not set(labels.tolist()) <= {0, 1}:
                raise ValueError(f"point_labels must give 1 (object) or 0 (not object) for each of the {len(points)} "
                                 f"points, got {labels.tolist()}")
            if not (labels == 1).any():
                raise ValueError("a point prompt needs at least one foreground point (label 1) on the object")
            return [Segment(segment_frame(frame.rgb, None, points[labels == 1], points[labels == 0], view, gravity), 1.0)]
        point = self._locate(frame, prompt.text)  # a TextPrompt
        if point is None:
            return []
        return self._segment(frame, PointPrompt(points=(point,), labels=(1,)), view, gravity)

    def _host_call(self, service: str, question: str, frame: Frame):
        if self.host is None:
            raise RuntimeError(f"the classical backend answers text prompts through the {service} service, which is "
                               f"not connected here; use a box or point prompt")
        return self.host.call(service, {"question": question}, {"image_0": frame.rgb}).payload["result"]

    def _locate(self, frame: Frame, text: str) -> tuple[float, float] | None:
        """Pixel (x, y) of the instance of ``text`` that vlm.locate points at, or None if not visible."""
        result = self._host_call("vlm.locate", f"Where is the {text}?", frame)
        if isinstance(result, str):
            return None
        x, y = (float(v) for v in result)
        return (min(x / 1000.0 * frame.width, frame.width - 1.0), min(y / 1000.0 * frame.height, frame.height - 1.0))

    def count(self, frame: Frame, name: str) -> int:
        answer = str(self._host_call("vlm.ask_with_thinking", f"How many {name} are visible in this image? "
                                     "Reply with a single integer (0 if none).", frame))
        numbers = re.findall(r"\d+", answer)
        if not numbers:
            raise RuntimeError(f"could not read a count of {name!r} from the VLM's answer: {answer[:200]!r}")
        return int(numbers[-1])

    def refine(self, frame: Frame, recon: Reconstruction, box: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        return segment_frame(frame.rgb, box, seeds, [], recon.views[frame.index], recon.gravity_direction)
