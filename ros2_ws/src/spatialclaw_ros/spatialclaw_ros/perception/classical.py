"""The weight-free ``classical`` segmenter: depth picks the object's surfaces, OpenCV GrabCut refines them by colour.

Box prompt (taken to be tight around the object). Where the frame has a metric reconstruction,
depth speaks first. The crop around the box is cut into surfaces at depth discontinuities.
Support (the floor, a table top: up-facing surfaces that reach beyond the box, the patches of them
that objects cut off, and a band around them within the sensor's measured noise) is cut away, which
frees what stands on it. The remaining surfaces are grouped into 3D objects (Euclidean clustering),
and the object's depth layer is the set of groups, at about one depth, whose extent best fills the
box while leaving the ring around the box free and not showing behind something nearer (the wall
between a table's legs), among the groups that run along no side of that ring (an occluder or a
wall crosses a side; the object in a tight box does not). If no such layer fills the box, the
dominant surface in the box is taken as the likely object, cut to the box: the dominant in-box
surface is never discarded for leaving the crop (a dark ottoman joined in depth to the dark sofa
behind it).

Colour then refines the layer with GrabCut. Where depth isolates the object, the layer's interior
is certain foreground (not its edges, where depth and colour images may disagree by a few pixels,
nor where it runs on beyond the box, where a touching neighbour may begin), support and surfaces
clearly in front of or behind it are certain background, and colour overrules depth elsewhere only
where GrabCut's colour models clearly disagree with it. Where depth does not isolate the object (a
magazine or keyboard flat on the table, a layer joined to its surroundings), the layer is only a
likely start and colour decides; if colour then keeps next to nothing (a transparent bottle that
shows the wall's depth, among bottles like it), the box is the answer.

Point prompts: the same with the points as seeds (foreground points choose their surfaces'
groups, of which only what has a seed's colour starts as the object: a surface may run on into a
neighbour touching it in depth; background points reject theirs and start GrabCut with the pixels
nearer to them than to any foreground point as background) in a box around the foreground points'
surfaces. Text
prompts: ``vlm.locate`` gives one point. Video: ``tracking`` gives a box and seeds in each
further frame, and the box prompt's method with those seeds segments it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..frames import Frame
from .backends import BoxPrompt, MissingInputError, PointPrompt, Prompt, Segment, SegmentationBackend
from .camera import DEPTH_EDGE_RATIO, clip_box, depth_edges
from .reconstruction import Reconstruction, ViewGeometry

#: A pixel faces up when its surface normal is within this angle of world up (normals from the point
#: map averaged over NORMAL_WINDOW_PX and differenced NORMAL_STEP_PX apart, which rides out depth noise).
SUPPORT_MAX_TILT_DEG = 25.0
NORMAL_WINDOW_PX = 9
NORMAL_STEP_PX = 4
#: ... and the unsmoothed points NORMAL_STEP_PX rows apart do not climb more steeply than this (a thin
#: upright part, such as a chair leg, whose averaged normal is the floor's).
MAX_STEP_SLOPE_DEG = 60.0
#: A support surface lies below every foreground seed by at least this much (m): what a seed is on is the object.
SUPPORT_TOLERANCE_M = 0.03
#: A support surface's fringe lies within FRINGE_TOLERANCE_M plus three standard deviations of the noise
#: of its height (measured on the support itself, so that it follows the sensor and the range).
FRINGE_TOLERANCE_M = 0.01
#: Depth and colour images are registered to within this many pixels: a surface reaches beyond the box
#: only where it runs further out than this, and the certain core keeps this far from the layer's edges.
REGISTRATION_PX = 3
#: Surfaces in the box join one object when their points come within this gap (m), plus 1.5 sample
#: spacings and CLUSTER_NOISE of the range (depth noise); clustering uses about CLUSTER_SAMPLES pixels.
CLUSTER_GAP_M = 0.03
CLUSTER_NOISE = 0.02
CLUSTER_SAMPLES = 4000
#: A 3D group besides the object's with fewer pixels than this share of the object's is certainly not the object.
MINOR_SHARE = 0.1
#: A further 3D group joins the boxed object when it raises the layer's score (below) by this.
MIN_FIT_GAIN = 0.02
#: A depth layer is the object's when its score (how well it fills the box, times the share of the RING_PX
#: wide ring around the box it leaves free, times the share of its surroundings not in front of it) reaches
#: MIN_LAYER_SCORE, or, failing that, when it is the
#: dominant surface in the box with MIN_LAYER_COVER of its pixels; otherwise depth has not found the object
#: and colour decides alone. 3D groups under MIN_GROUP_SHARE of the box take no part in that choice. A layer
#: covering more than MAX_EXIT_SHARE of a side of the ring is joined to its surroundings: only a likely start.
MIN_LAYER_SCORE = 0.3
MIN_LAYER_COVER = 0.15
MIN_GROUP_SHARE = 0.02
RING_PX = 2
MAX_EXIT_SHARE = 0.25
#: A group with more than this share of its surroundings in front of it shows through or around something
#: nearer (the wall between a table's legs): it does not join a layer as one of its parts.
MAX_BEHIND_SHARE = 0.4
#: Parts of one object lie at about one depth: a group whose depth range (5th-95th percentile) stays further
#: than this fraction of the layer's median depth (and than PART_DEPTH_MIN_M) from the layer's range is not
#: one of its parts. Ranges, not medians, and a floor in metres: seen from close by, the back of a chair is
#: well nearer than its seat, though their ranges nearly meet.
PART_DEPTH_RATIO = 0.25
PART_DEPTH_MIN_M = 0.25
#: Surfaces whose median depth lies beyond the layer's depth range (5th-95th percentile) by this gap (m, plus
#: DEPTH_EDGE_RATIO of the range) are in front of or behind the object.
LAYER_GAP_M = 0.05
#: Only surfaces holding at least this share of the layer's pixels in the box make its certain core: the
#: small ones joined to it by 3D proximity alone (a patch of wall just behind a chair's back) may be wrong.
CORE_SURFACE_SHARE = 0.2
#: Where the layer runs on beyond the box, its pixels within this fraction of the box's shorter side of
#: that exit may be a touching neighbour at the same depth: colour decides there.
EXIT_BAND = 0.25
#: Where depth has not isolated the object, a mask keeping less than this share of the box means colour
#: found nothing to set apart either (a transparent bottle among its like): the box, less what depth
#: excludes, is then the best answer.
MIN_KEPT_SHARE = 0.1
#: The crop around the box extends by this fraction of the box's longer side (at least CROP_MIN_PX).
CROP_MARGIN = 0.15
CROP_MIN_PX = 10
GRABCUT_ITERATIONS = 4
GRABCUT_SEED = 0
GRABCUT_COMPONENTS = 5  # Gaussians per colour model in OpenCV's GrabCut
#: Where depth found the object, colour overrules it only by this margin: a pixel of its layer leaves the
#: object, and any other pixel joins it, only if GrabCut's colour model of the other side explains the
#: pixel's colour this much better (log density ratio).
COLOUR_MARGIN = 2.0
SEED_RADIUS_PX = 3
#: A point prompt's surfaces keep, as the likely object, only pixels within this colour distance (CIELAB)
#: of a seed's colour (the median over its SEED_RADIUS_PX disk).
SEED_COLOUR_DISTANCE = 25.0
#: Without a box, support around a point prompt is what continues beyond this fraction of the image
#: around the points (and, without depth, this window is the box).
POINT_WINDOW = 0.5


@dataclass
class DepthPrior:
    """What depth says about each crop pixel, as GrabCut's starting labels: certainly the object (``core``),
    probably (``likely``), probably not (``unlikely``), certainly not (``excluded``); pixels in none (such as
    a surface at the object's depth touching it: a part of it, or a neighbour) stay as the box prompt puts
    them, and colour alone decides them."""

    core: np.ndarray
    likely: np.ndarray
    unlikely: np.ndarray
    excluded: np.ndarray


def _grown(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` dilated by ``radius`` pixels (a square of side 2 * radius + 1)."""
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * radius + 1,) * 2, np.uint8)).astype(bool)


def _window_mean(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean of the ``valid`` ``values`` (H, W) or (H, W, C) over each pixel's NORMAL_WINDOW_PX window,
    how many valid ones there were)."""
    window = (NORMAL_WINDOW_PX, NORMAL_WINDOW_PX)
    channels = (1,) * (values.ndim - valid.ndim)  # broadcasts the (H, W) weights over vector values
    count = cv2.boxFilter(valid.astype(np.float32), -1, window, normalize=False, borderType=cv2.BORDER_CONSTANT)
    filled = np.where(valid.reshape(valid.shape + channels), values, 0.0).astype(np.float32)
    total = cv2.boxFilter(filled, -1, window, normalize=False, borderType=cv2.BORDER_CONSTANT)
    return total / np.maximum(count, 1.0).reshape(count.shape + channels), count


def _disk(mask: np.ndarray, points: np.ndarray, value: int) -> None:
    for x, y in np.round(points).astype(int):
        cv2.circle(mask, (int(x), int(y)), SEED_RADIUS_PX, int(value), thickness=-1)


def up_facing(points: np.ndarray, camera_centre: np.ndarray, gravity: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels of the (H, W, 3) world ``points`` whose surface faces up (normal within
    SUPPORT_MAX_TILT_DEG of ``-gravity``, turned towards ``camera_centre``); the normal of a pixel needs
    depth on at least half of each NORMAL_WINDOW_PX window it is differenced across."""
    valid = np.isfinite(points[..., 0])
    smooth, count = _window_mean(points, valid)
    sampled = count >= NORMAL_WINDOW_PX * NORMAL_WINDOW_PX / 2
    height, width = valid.shape
    rows, cols = np.arange(height), np.arange(width)
    left, right = np.maximum(cols - NORMAL_STEP_PX, 0), np.minimum(cols + NORMAL_STEP_PX, width - 1)
    up, down = np.maximum(rows - NORMAL_STEP_PX, 0), np.minimum(rows + NORMAL_STEP_PX, height - 1)
    along_u, along_v = smooth[:, right] - smooth[:, left], smooth[down] - smooth[up]  # one-sided at the border
    known = sampled[:, right] & sampled[:, left] & sampled[down] & sampled[up]
    normal = np.cross(along_u, along_v)
    normal *= np.sign(np.sum(normal * (camera_centre - smooth), axis=-1, keepdims=True))
    length = np.linalg.norm(normal, axis=-1)
    # the averaging window is wider than a chair leg: the unsmoothed points must not climb steeply either
    half = NORMAL_STEP_PX // 2
    above, below = np.maximum(rows - half, 0), np.minimum(rows + half, height - 1)
    rise = (points[below] - points[above]) @ -gravity
    run = np.linalg.norm(np.cross(points[below] - points[above], gravity), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = (normal @ -gravity) / length
        steep = np.abs(rise) > run * np.tan(np.radians(MAX_STEP_SLOPE_DEG))
    return known & valid & (length > 0) & (cosine >= np.cos(np.radians(SUPPORT_MAX_TILT_DEG))) & ~steep


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
    labels = _surfaces(view, (0, 0, width, height), inside, fg, gravity)[0]
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
    nothing = np.zeros(inside.shape, dtype=bool)
    prior = DepthPrior(core=nothing, likely=nothing, unlikely=nothing, excluded=nothing)
    if view is not None:
        prior = depth_prior(view, (cx1, cy1, cx2, cy2), inside, fg - offset, bg - offset, gravity)
        if box is None:
            prior = _split_by_seed_colour(prior, crop, fg - offset)
        init[inside & prior.likely] = cv2.GC_PR_FGD
        init[inside & prior.unlikely] = cv2.GC_PR_BGD
        init[inside & prior.excluded] = cv2.GC_BGD
    core = inside & prior.core
    if len(bg) and len(fg):
        claimed = inside & _nearer_to_background(inside.shape, fg - offset, bg - offset)
        init[claimed] = cv2.GC_PR_BGD
        core &= ~claimed
    init[core] = cv2.GC_FGD
    _disk(init, bg - offset, cv2.GC_BGD)
    _disk(init, fg - offset, cv2.GC_FGD)

    depth_found = core.any()
    _refine_by_colour(crop, init, (inside & prior.likely, inside & prior.unlikely) if depth_found else None)
    object_mask = _anchored(np.isin(init, (cv2.GC_FGD, cv2.GC_PR_FGD)) & inside, init == cv2.GC_FGD)
    if not depth_found and np.count_nonzero(object_mask) < MIN_KEPT_SHARE * np.count_nonzero(inside):
        object_mask = inside & ~prior.excluded  # neither depth nor colour singles the object out: the box stands
    mask = np.zeros((height, width), dtype=bool)
    mask[cy1:cy2, cx1:cx2] = object_mask
    return mask


def _split_by_seed_colour(prior: DepthPrior, crop: np.ndarray, fg: np.ndarray) -> DepthPrior:
    """The surfaces under a point prompt's seeds may run on into a neighbour touching them in depth (a chair
    against the cabinet behind it): of what depth calls the object, only the pixels within SEED_COLOUR_DISTANCE
    (CIELAB) of a seed's colour stay so; the rest start as probably not, and GrabCut's colour models decide."""
    lab = cv2.cvtColor(crop.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    colours = []
    for point in fg:
        disk = np.zeros(crop.shape[:2], dtype=np.uint8)
        _disk(disk, point[None], 1)
        colours.append(np.median(lab[disk.astype(bool)], axis=0))
    nearest = np.min(np.linalg.norm(lab[:, :, None, :] - colours, axis=-1), axis=-1)
    unlike = prior.likely & (nearest > SEED_COLOUR_DISTANCE)
    return DepthPrior(core=prior.core & ~unlike, likely=prior.likely & ~unlike, unlikely=prior.unlikely | unlike,
                      excluded=prior.excluded)


def _refine_by_colour(crop: np.ndarray, init: np.ndarray, depth_side: tuple[np.ndarray, np.ndarray] | None) -> None:
    """Run GrabCut on ``init`` (its labels, updated in place). With ``depth_side`` (the pixels depth calls
    likely and unlikely the object, where it isolated the object), GrabCut's colour models overrule depth
    there only where they explain a pixel's colour COLOUR_MARGIN better (log density) on the other side."""
    is_bg = np.isin(init, (cv2.GC_BGD, cv2.GC_PR_BGD))
    if not is_bg.any() or is_bg.all():
        return
    cv2.setRNGSeed(GRABCUT_SEED)  # GrabCut's k-means draws from OpenCV's thread RNG: same input, same mask
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(crop, init, None, background, foreground, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    if depth_side is None:
        return
    likely, unlikely = depth_side
    undecided = np.isin(init, (cv2.GC_PR_FGD, cv2.GC_PR_BGD)) & (likely | unlikely)
    pixels = crop[undecided].astype(np.float64)
    leaning = _gmm_log_density(foreground, pixels) - _gmm_log_density(background, pixels)
    keep = np.where(likely[undecided], leaning >= -COLOUR_MARGIN, leaning > COLOUR_MARGIN)
    init[undecided] = np.where(keep, cv2.GC_PR_FGD, cv2.GC_PR_BGD)


def _gmm_log_density(model: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Log density of (N, 3) colours under one of GrabCut's colour models: OpenCV's (1, 65) layout of
    GRABCUT_COMPONENTS weights, then their means (3 each), then their covariances (3 x 3 each)."""
    k = GRABCUT_COMPONENTS
    weights, means = model[0, :k], model[0, k:4 * k].reshape(k, 3)
    covariances = model[0, 4 * k:].reshape(k, 3, 3)
    density = np.zeros(len(pixels))
    for weight, mean, covariance in zip(weights, means, covariances):
        if weight <= 0:
            continue
        offset = pixels - mean
        inverse = np.linalg.inv(covariance)
        mahalanobis = np.einsum("ni,ij,nj->n", offset, inverse, offset)
        density += weight * np.exp(-0.5 * mahalanobis) / np.sqrt((2 * np.pi) ** 3 * np.linalg.det(covariance))
    return np.log(density + 1e-300)


def _anchored(mask: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """The parts of ``mask`` (8-connected) that hold an anchor pixel (certain foreground), or, without anchors,
    its largest part: colour alone leaves islands of object-coloured background."""
    count, parts = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    held = np.unique(parts[anchors & mask])
    return np.isin(parts, held if held.size else [np.bincount(parts[mask]).argmax()])


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


def _layer_score(labels: np.ndarray, groups: dict[int, int], chosen: set[int], inside: np.ndarray,
                 sides: np.ndarray, depth: np.ndarray) -> float:
    """The score of taking the ``chosen`` groups' surfaces as the object: how well their in-box extent fills
    the box (intersection over union), times the share of the ring around the box they leave free
    (1 - _exit_share), times the share of their surroundings that is not in front of them (1 - _behind_share)."""
    surfaces = np.isin(labels, [label for label, g in groups.items() if g in chosen])
    rows, cols = np.nonzero(inside & surfaces)
    if rows.size == 0:
        return 0.0
    extent = np.zeros(inside.shape, dtype=bool)
    extent[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
    fit = np.count_nonzero(extent & inside) / np.count_nonzero(extent | inside)
    return fit * (1.0 - _exit_share(surfaces, sides)) * (1.0 - _behind_share(surfaces, depth))


def _behind_share(surface: np.ndarray, depth: np.ndarray) -> float:
    """The share of the pixels just around ``surface`` (with depth) that lie in front of it, nearer than its
    nearest pixels close by by DEPTH_EDGE_RATIO: high for what shows through or around something nearer,
    as the wall does between a table's legs."""
    around = _grown(surface, 2) & ~surface & np.isfinite(depth)
    if not around.any():
        return 0.0
    nearest = cv2.erode(np.where(surface, depth, np.inf).astype(np.float32), np.ones((5, 5), np.uint8))
    with np.errstate(invalid="ignore"):
        nearer = depth < (1.0 - DEPTH_EDGE_RATIO) * nearest
    return np.count_nonzero(nearer & around) / np.count_nonzero(around)


def _exit_share(mask: np.ndarray, sides: np.ndarray) -> float:
    """The largest share of one side of the ring around the box (``sides``: (4, H, W), left, top, right,
    bottom) that ``mask`` covers: an object in a tight box barely reaches past any side, while a wall behind
    it, or an occluder or a table in front of it, runs along a side."""
    lengths = sides.sum(axis=(1, 2))
    covered = (sides & mask).sum(axis=(1, 2))
    return float(np.max(covered / np.maximum(lengths, 1)))


def _groups_filling_box(labels: np.ndarray, groups: dict[int, int], inside: np.ndarray, sides: np.ndarray,
                        depth: np.ndarray) -> tuple[set[int], float]:
    """The 3D groups that make up the boxed object and their score (_layer_score): starting from the best
    group, add groups while that raises the score (an object seen in parts, e.g. a sofa whose arm hides
    where it joins the seat); a group lying within the others' extent (another object) adds nothing, one
    whose depth is apart from theirs (PART_DEPTH_RATIO) is not a part of them, nor is one
    that shows through something nearer (_behind_share over MAX_BEHIND_SHARE: the wall between a table's legs)."""
    members = {g: np.isin(labels, [label for label, of in groups.items() if of == g]) & inside
               for g in set(groups.values())}
    spread = {g: np.percentile(depth[mask], [5, 95]) for g, mask in members.items()}
    seen_behind = {g for g, mask in members.items() if _behind_share(mask, depth) > MAX_BEHIND_SHARE}
    remaining = set(members)
    chosen: set[int] = set()
    score = 0.0
    while remaining:
        if chosen:
            layer = depth[np.logical_or.reduce([members[g] for g in chosen])]
            at, (near, far) = float(np.median(layer)), np.percentile(layer, [5, 95])
            gap = max(PART_DEPTH_RATIO * at, PART_DEPTH_MIN_M)
            remaining = {g for g in remaining - seen_behind if spread[g][0] <= far + gap and spread[g][1] >= near - gap}
            if not remaining:
                break
        best = max(remaining, key=lambda g: _layer_score(labels, groups, chosen | {g}, inside, sides, depth))
        gain = _layer_score(labels, groups, chosen | {best}, inside, sides, depth) - score
        if chosen and gain < MIN_FIT_GAIN:
            break
        chosen.add(best)
        remaining.discard(best)
        score += gain
    return chosen, score


def _surfaces(view: ViewGeometry, crop: tuple[int, int, int, int], inside: np.ndarray, fg: np.ndarray,
              gravity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The crop cut into surfaces at depth edges and at support: (labels, 0 = none; support; fringe).

    Support is up-facing and lies below every foreground seed: the up-facing regions connected, anywhere
    in the frame, to at least NORMAL_WINDOW_PX**2 up-facing pixels well beyond ``inside`` (the floor, a
    table top), and the regions the objects on it cut off from those: level with the support pixels
    nearest to them or, where they run out of the image, not above the floor (_floor_level). Around it, up to
    NORMAL_WINDOW_PX away (where the normals blur), surface pixels within FRINGE_TOLERANCE_M of the
    nearest support pixel's height are support too, and those within the sensor's noise beyond that
    (three standard deviations of the support's height noise) are its fringe: there the support's edges
    and the foot of what stands on it cannot be told apart by depth. Cutting both away keeps everything
    on a table from joining into one surface. A remaining surface mostly level with its support (a patch
    of floor seen between chair legs) is support as well.
    """
    cx1, cy1, cx2, cy2 = crop
    surface_all = np.isfinite(view.depth) & ~depth_edges(view.depth)
    flat_all = surface_all & up_facing(view.points.astype(np.float64), view.T_world_camera[:3, 3], gravity)
    _, flats_all = cv2.connectedComponents(flat_all.astype(np.uint8), connectivity=4)
    near_box = np.zeros(view.depth.shape, dtype=bool)
    near_box[cy1:cy2, cx1:cx2] = _grown(inside, REGISTRATION_PX)
    reach = np.bincount(flats_all[flat_all & ~near_box], minlength=flats_all.max() + 1)
    flats = flats_all[cy1:cy2, cx1:cx2]
    surface = surface_all[cy1:cy2, cx1:cx2]
    heights = -(view.points[cy1:cy2, cx1:cx2].astype(np.float64) @ gravity)
    sizes = np.bincount(flats.ravel(), minlength=flats_all.max() + 1)
    regions = [int(f) for f in np.flatnonzero(sizes) if f and sizes[f] >= NORMAL_WINDOW_PX ** 2]
    seed_heights = heights[_pixels(fg, heights.shape)]
    seed_heights = seed_heights[np.isfinite(seed_heights)]
    if seed_heights.size:  # an object rests on what is below it: a surface at or above a seed is the object
        regions = [f for f in regions if np.median(heights[flats == f]) < seed_heights.min() - SUPPORT_TOLERANCE_M]
    support = np.isin(flats, [f for f in regions if reach[f] >= NORMAL_WINDOW_PX ** 2])
    at_image_border = np.zeros(flats.shape, dtype=bool)
    at_image_border[:, 0], at_image_border[0, :] = cx1 == 0, cy1 == 0
    at_image_border[:, -1], at_image_border[-1, :] = cx2 == view.depth.shape[1], cy2 == view.depth.shape[0]
    floor = _floor_level(view, flats_all, reach, gravity)
    for f in regions:  # floor that objects cut off from the rest where it runs out of the image
        region = flats == f
        if floor is not None and (region & at_image_border).any() and np.median(heights[region]) <= sum(floor):
            support |= region
    fringe = np.zeros(support.shape, dtype=bool)
    if not support.any():
        _, labels = cv2.connectedComponents(surface.astype(np.uint8), connectivity=4)
        return labels, support, fringe
    # heights are compared with the support pixel nearest to them, which follows a warped floor
    distance, nearest = cv2.distanceTransformWithLabels((~support).astype(np.uint8), cv2.DIST_L2, 5,
                                                        labelType=cv2.DIST_LABEL_PIXEL)
    with np.errstate(invalid="ignore"):
        rise = heights - heights[support][nearest - 1]
        tolerance = FRINGE_TOLERANCE_M + _height_noise(heights, support)
        level = np.abs(rise) <= tolerance
    for f in regions:  # support that objects cut off from the rest, level with it
        region = flats == f
        if not support[region].any() and np.median(level[region]):
            support |= region
    near = surface & (distance <= NORMAL_WINDOW_PX) & level
    _, nears = cv2.connectedComponents((near | support).astype(np.uint8), connectivity=4)
    fringe = np.isin(nears, np.unique(nears[support])) & near & ~support
    with np.errstate(invalid="ignore"):
        flush = fringe & (np.abs(rise) <= FRINGE_TOLERANCE_M)  # level with the support beyond doubt
    support, fringe = support | flush, fringe & ~flush
    _, labels = cv2.connectedComponents((surface & ~support & ~fringe).astype(np.uint8), connectivity=4)
    with np.errstate(invalid="ignore"):
        lying = np.abs(rise) <= tolerance
    for label in np.unique(labels[lying])[1:]:  # a patch of floor between chair legs, whatever its normals
        patch = labels == label
        if np.count_nonzero(lying & patch) > np.count_nonzero(patch) / 2:
            support |= patch
            labels[patch] = 0
    return labels, support, fringe


def _floor_level(view: ViewGeometry, flats: np.ndarray, reach: np.ndarray,
                 gravity: np.ndarray) -> tuple[float, float] | None:
    """(height, tolerance) in m of the lowest support in the frame (its up-facing regions ``flats`` that
    reach NORMAL_WINDOW_PX**2 pixels beyond the box, ``reach``): nothing stands below the floor. The
    tolerance is FRINGE_TOLERANCE_M plus its noise. None without support."""
    reaching = np.flatnonzero(reach >= NORMAL_WINDOW_PX ** 2)
    reaching = reaching[reaching > 0]
    if not reaching.size:
        return None
    heights = -(view.points.astype(np.float64) @ gravity)
    levels = [float(np.median(heights[flats == f])) for f in reaching]
    lowest = flats == reaching[int(np.argmin(levels))]
    return min(levels), FRINGE_TOLERANCE_M + _height_noise(heights, lowest)


def _height_noise(heights: np.ndarray, support: np.ndarray) -> float:
    """Three standard deviations (m) of the support's height noise, from the median absolute deviation of its
    pixels from their NORMAL_WINDOW_PX neighbourhood's mean: the sensor's noise at this range, measured."""
    mean, _ = _window_mean(heights, support)
    deviation = np.abs(heights[support] - mean[support])
    return 3.0 * 1.4826 * float(np.median(deviation))


def depth_prior(view: ViewGeometry, crop: tuple[int, int, int, int], inside: np.ndarray, fg: np.ndarray,
                bg: np.ndarray, gravity: np.ndarray) -> DepthPrior:
    """What depth says about the crop's pixels (see the module docstring).

    ``inside`` the box within the crop; ``fg``/``bg`` seed pixels in crop coordinates. A surface under a
    foreground seed is always the object's, one under a background seed never.
    """
    cx1, cy1, cx2, cy2 = crop
    labels, support, fringe = _surfaces(view, crop, inside, fg, gravity)
    depth = view.depth[cy1:cy2, cx1:cx2]
    kept = set(labels[_pixels(fg, labels.shape)].tolist()) - {0}
    refused = set(labels[_pixels(bg, labels.shape)].tolist()) - kept - {0}
    groups = _object_groups(labels, inside & (labels > 0) & ~np.isin(labels, sorted(refused)),
                            view.points[cy1:cy2, cx1:cx2], depth, float(view.K[0, 0]))
    in_box = np.bincount(labels[inside], minlength=labels.max() + 1)
    size = {g: sum(in_box[label] for label, of in groups.items() if of == g) for g in set(groups.values())}
    sides = _ring_sides(inside)
    wanted = ({groups[label] for label in kept if label in groups} if kept
              else _layer(labels, groups, size, inside, sides, depth))
    excluded = np.isin(labels, sorted(refused))
    nothing = np.zeros(inside.shape, dtype=bool)
    if not wanted and not kept:  # depth has not found the object: colour decides
        return DepthPrior(core=nothing, likely=nothing, unlikely=nothing, excluded=excluded)
    layer = np.isin(labels, sorted({label for label, g in groups.items() if g in wanted} | kept))
    others = {label for label, g in groups.items() if g not in wanted} - kept
    minor = MINOR_SHARE * sum(size[g] for g in wanted)
    small = {label for label in others if size[groups[label]] < minor}
    excluded |= np.isin(labels, sorted(small))
    if _exit_share(layer, sides) > MAX_EXIT_SHARE:  # joined to its surroundings: only colour can cut it out
        return DepthPrior(core=nothing, likely=layer & inside,
                          unlikely=(support | fringe | np.isin(labels, sorted(others))) & inside, excluded=excluded)
    near, far = np.percentile(depth[layer & inside], [5, 95])
    gap = LAYER_GAP_M + DEPTH_EDGE_RATIO * float(np.median(depth[layer & inside]))
    apart = {label for label in others - small
             if not near - gap <= np.median(depth[labels == label]) <= far + gap}
    touching = set(np.unique(labels[_grown(layer, 1) & ~layer]).tolist()) & (others - small - apart)
    in_layer = np.bincount(labels[layer & inside], minlength=labels.max() + 1)
    main_surfaces = np.isin(labels, np.flatnonzero(in_layer >= CORE_SURFACE_SHARE * in_layer.sum()))
    return DepthPrior(core=_core(main_surfaces, inside), likely=layer & inside,
                      unlikely=np.isin(labels, sorted(others - apart - touching)) | fringe | (labels == 0),
                      excluded=excluded | support | np.isin(labels, sorted(apart)))


def _layer(labels: np.ndarray, groups: dict[int, int], size: dict[int, int], inside: np.ndarray,
           sides: np.ndarray, depth: np.ndarray) -> set[int]:
    """The 3D groups of the object's depth layer. First those that score best (_groups_filling_box) among
    the groups that run along no side of the ring around the box for more than MAX_EXIT_SHARE of it (an
    occluder crossing the box is not the object behind it); they count when their score reaches
    MIN_LAYER_SCORE. Else the dominant surface in the box among those joined to what surrounds it (a dark
    ottoman against the dark sofa behind it), if it holds MIN_LAYER_COVER of the box's pixels: it is cut to
    the box. Groups under MIN_GROUP_SHARE of the box are not candidates."""
    box_px = np.count_nonzero(inside)
    sizable = {label: g for label, g in groups.items() if size[g] >= MIN_GROUP_SHARE * box_px}
    members = {g: np.isin(labels, [label for label, of in groups.items() if of == g]) for g in set(sizable.values())}
    joined = {g for g, mask in members.items() if _exit_share(mask, sides) > MAX_EXIT_SHARE}
    enclosed = {label: g for label, g in sizable.items() if g not in joined}
    wanted, score = _groups_filling_box(labels, enclosed, inside, sides, depth)
    if score >= MIN_LAYER_SCORE:
        return wanted
    dominant = max(joined, key=lambda g: size[g], default=None)
    return {dominant} if dominant is not None and size[dominant] >= MIN_LAYER_COVER * box_px else set()


def _ring_sides(inside: np.ndarray) -> np.ndarray:
    """(4, H, W) bool: the RING_PX wide ring that starts REGISTRATION_PX beyond the box, cut into its left,
    top, right and bottom sides (corners count for both of their sides)."""
    near = _grown(inside, REGISTRATION_PX)
    ring = _grown(near, RING_PX) & ~near
    rows, cols = np.nonzero(inside)
    r, c = np.mgrid[0:inside.shape[0], 0:inside.shape[1]]
    return np.stack([ring & (c < cols.min()), ring & (r < rows.min()), ring & (c > cols.max()),
                     ring & (r > rows.max())])


def _core(layer: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The layer's certain interior: REGISTRATION_PX in from its edges (in a part thinner than that, its
    middle), and away from where it runs on beyond the box (within EXIT_BAND of the box's shorter side),
    where a touching neighbour may begin."""
    depth_in = cv2.distanceTransform(np.pad(layer, 1, mode="edge").astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    count, parts = cv2.connectedComponents(layer.astype(np.uint8), connectivity=8)
    widest = np.zeros(count)
    np.maximum.at(widest, parts.ravel(), depth_in.ravel())
    interior = layer & inside & (depth_in > np.minimum(REGISTRATION_PX, widest[parts] / 2))
    exits = layer & ~_grown(inside, REGISTRATION_PX)
    if not exits.any():
        return interior
    rows, cols = np.nonzero(inside)
    band = EXIT_BAND * min(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    to_exit = cv2.distanceTransform((~exits).astype(np.uint8), cv2.DIST_L2, 3)
    return interior & (to_exit > band + REGISTRATION_PX)


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
