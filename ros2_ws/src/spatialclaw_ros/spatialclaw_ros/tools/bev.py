"""Bird's-eye view: a top-down picture (world x right, y up, z toward the viewer) of objects and cameras."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from .graph import render_figure
from .measures import Box3D, as_points

#: Per-object cap on scatter points drawn (evenly strided), to keep rendering fast.
MAX_POINTS_PER_OBJECT = 4000


def nice_length(span_m: float) -> float:
    """A round scale-bar length (1, 2 or 5 x 10^k m) close to a fifth of ``span_m``."""
    target = max(span_m / 5.0, 1e-3)
    power = 10.0 ** np.floor(np.log10(target))
    return float(min((1.0, 2.0, 5.0, 10.0), key=lambda m: abs(m * power - target)) * power)


def footprint(box: Box3D) -> np.ndarray:
    """(5, 2) closed xy outline of a box's bottom face."""
    corners = box.corners[[0, 2, 6, 4], :2]  # z = -size/2 corners, going round the rectangle
    return np.vstack([corners, corners[:1]])


def render_bev(objects: Mapping[str, object] | None = None, camera_poses: Mapping[int, np.ndarray] | None = None,
               *, title: str = "", size_px: int = 800) -> Image.Image:
    """Top-down PIL image of labelled objects and cameras, in metres, with a metric scale bar.

    ``objects`` maps a label to an (N, 3) / (H, W, 3) world point set or a ``Box3D``; ``camera_poses`` maps absolute
    frame indices to 4x4 camera-to-world (OpenCV optical) poses, drawn as heading arrows joined by the camera path
    in index order.
    """
    objects = dict(objects or {})
    poses = {int(i): np.asarray(T, dtype=float).reshape(4, 4) for i, T in sorted((camera_poses or {}).items())}
    if not objects and not poses:
        raise ValueError("render_bev needs at least one object or one camera pose")
    figure = Figure(figsize=(size_px / 100.0, size_px / 100.0), dpi=100)
    axes = figure.add_subplot()
    colours = [f"C{i % 10}" for i in range(len(objects))]
    extents = []
    for (label, item), colour in zip(objects.items(), colours):
        if isinstance(item, Box3D):
            outline = footprint(item)
            axes.fill(outline[:, 0], outline[:, 1], color=colour, alpha=0.35, label=str(label))
            axes.plot(outline[:, 0], outline[:, 1], color=colour, linewidth=2)
            centre, extents_xy = item.center[:2], outline
        else:
            points = as_points(item, f"object {label!r}")
            shown = points[:: max(1, len(points) // MAX_POINTS_PER_OBJECT)]
            axes.scatter(shown[:, 0], shown[:, 1], s=2, color=colour, alpha=0.6, label=str(label))
            centre, extents_xy = np.median(points[:, :2], axis=0), points[:, :2]
        axes.annotate(str(label), centre, color="black", fontsize=9, ha="center", va="center",
                      bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.7})
        extents.append(extents_xy)
    positions = np.array([T[:3, 3] for T in poses.values()]).reshape(-1, 3)
    if poses:
        extents.append(positions[:, :2])
    all_xy = np.vstack(extents)
    low, high = all_xy.min(axis=0), all_xy.max(axis=0)
    span = float(max(np.max(high - low), 0.5))
    if poses:
        axes.plot(positions[:, 0], positions[:, 1], "-", color="gray", linewidth=1, label="camera path")
        for (index, T), position in zip(poses.items(), positions):
            heading = T[:2, 2] / max(np.linalg.norm(T[:2, 2]), 1e-9)  # optical z = viewing direction
            axes.annotate("", position[:2] + 0.06 * span * heading, position[:2],
                          arrowprops={"arrowstyle": "-|>", "color": "black"})
            axes.text(position[0], position[1], f" {index}", fontsize=7, color="black", va="top")
    margin = 0.1 * span
    axes.set_xlim(low[0] - margin, low[0] + span + margin)
    axes.set_ylim(low[1] - margin, low[1] + span + margin)
    axes.set_aspect("equal")
    bar = nice_length(span)
    x0, y0 = low[0], low[1] - 0.6 * margin
    axes.plot([x0, x0 + bar], [y0, y0], color="black", linewidth=4)
    axes.text(x0 + bar / 2, y0, f"{bar:g} m", ha="center", va="bottom", fontsize=9)
    axes.set_xlabel("world x (m)")
    axes.set_ylabel("world y (m)")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper right", fontsize=8)
    axes.set_title(title or "top-down view (z up)")
    figure.tight_layout()
    return render_figure(figure)
