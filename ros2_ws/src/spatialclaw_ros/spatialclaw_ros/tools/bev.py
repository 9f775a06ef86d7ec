"""Bird's-eye view: a top-down picture of objects and cameras, in world axes or as seen from one camera.

Seen from a camera, that camera sits at the origin looking up the image: x is its right, y its forward
(horizontal, the world's z is up). Still objects are drawn as their footprint rectangle, objects whose
per-frame centre moves by more than MOVING_SHARE of their size as a red-to-blue track.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
from matplotlib.figure import Figure

from .graph import render_figure
from ..image_types import VisualFeedback
from .measures import Box3D, as_points

#: Per-object cap on scatter points drawn (evenly strided), to keep rendering fast.
MAX_POINTS_PER_OBJECT = 4000
#: An object tracked over frames "moves" when its per-frame centres lie further apart than this share of its
#: footprint diagonal (as in the reference kernel).
MOVING_SHARE = 0.15
#: Footprints leave out this percentile of points at each end (strays of a mask).
FOOTPRINT_PERCENTILE = 1.0
UP = np.array([0.0, 0.0, 1.0])


def nice_length(span_m: float) -> float:
    """A round scale-bar length (1, 2 or 5 x 10^k m) close to a fifth of ``span_m``."""
    target = max(span_m / 5.0, 1e-3)
    power = 10.0 ** np.floor(np.log10(target))
    return float(min((1.0, 2.0, 5.0, 10.0), key=lambda m: abs(m * power - target)) * power)


class PlotFrame:
    """Maps world points to the plot's 2D axes: world x/y, or a camera's (right, forward) from its position."""

    def __init__(self, reference: np.ndarray | None) -> None:
        if reference is None:
            self.origin, self.axes = np.zeros(3), np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
            self.names = ("world x (m)", "world y (m)")
            return
        T = np.asarray(reference, dtype=float).reshape(4, 4)
        forward = T[:3, 2] - (T[:3, 2] @ UP) * UP
        if np.linalg.norm(forward) < 1e-6:  # looking straight down: the image's up is forward
            forward = -T[:3, 1] + (T[:3, 1] @ UP) * UP
        forward /= np.linalg.norm(forward)
        self.origin, self.axes = T[:3, 3], np.array([np.cross(forward, UP), forward])
        self.names = ("left <-  x (m)  -> right", "forward (m)")

    def __call__(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, dtype=float).reshape(-1, 3) - self.origin) @ self.axes.T


def footprint(xy: np.ndarray) -> np.ndarray:
    """(5, 2) closed minimum-area rectangle around the plot points, strays (outer percentiles) left out."""
    if len(xy) >= 20:
        low, high = np.percentile(xy, [FOOTPRINT_PERCENTILE, 100 - FOOTPRINT_PERCENTILE], axis=0)
        xy = xy[np.all((xy >= low) & (xy <= high), axis=1)]
    corners = cv2.boxPoints(cv2.minAreaRect(xy.astype(np.float32))).astype(float)
    return np.vstack([corners, corners[:1]])


def box_outline(box: Box3D, frame: PlotFrame) -> np.ndarray:
    """(5, 2) closed outline of a box's bottom face in plot coordinates."""
    corners = frame(box.corners[[0, 2, 6, 4]])  # z = -size/2 corners, going round the rectangle
    return np.vstack([corners, corners[:1]])


def _side(value: float, positive: str, negative: str) -> str:
    return f"{positive if value >= 0 else negative} {abs(value):.2f} m"


def _where(xy: np.ndarray, frame: PlotFrame, reference: bool) -> str:
    x, y = (float(v) for v in xy)
    if reference:
        return f"{_side(x, 'right', 'left')}, {_side(y, 'forward', 'behind')} (distance {np.hypot(x, y):.2f} m)"
    return f"world x {x:.2f} m, y {y:.2f} m"


def _draw_object(axes, label: str, item, frame: PlotFrame, colour: str, reference: bool) -> tuple[np.ndarray, str]:
    """Draw one object; returns its plot points (for the limits) and its line of the description."""
    if isinstance(item, Box3D):
        outline = box_outline(item, frame)
        axes.fill(outline[:, 0], outline[:, 1], color=colour, alpha=0.35, label=label)
        axes.plot(outline[:, 0], outline[:, 1], color=colour, linewidth=2)
        centre = frame(item.center)[0]
        axes.annotate(label, centre, ha="center", va="center", fontsize=9,
                      bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.7})
        return outline, f"{label}: box at {_where(centre, frame, reference)}, {item.size[0]:.2f} x {item.size[1]:.2f} m"
    per_frame = dict(item) if isinstance(item, Mapping) else {None: item}
    clouds = {fi: frame(points) for fi, points in per_frame.items()
              if np.isfinite(np.asarray(points, dtype=float)).all(axis=-1).any()}
    if not clouds:
        return np.zeros((0, 2)), f"{label}: no 3D points (empty masks or no depth under them)"
    xy = np.vstack([frame(as_points(per_frame[fi], f"object {label!r}")) for fi in clouds])
    centres = np.array([np.median(frame(as_points(per_frame[fi])), axis=0) for fi in clouds])
    outline = footprint(xy)
    diagonal = float(np.linalg.norm(outline[0] - outline[2]))
    moved = float(np.max(np.linalg.norm(centres[:, None] - centres[None], axis=2)))
    if len(centres) > 1 and moved > MOVING_SHARE * max(diagonal, 1e-6):
        colours = np.linspace(0.0, 1.0, len(centres))
        axes.plot(centres[:, 0], centres[:, 1], color="gray", linewidth=1)
        axes.scatter(centres[:, 0], centres[:, 1], c=colours, cmap="coolwarm_r", s=40, zorder=3, label=label)
        axes.annotate(label, centres[-1], fontsize=9, xytext=(4, 4), textcoords="offset points")
        frames = [fi for fi in clouds if fi is not None]
        return xy, (f"{label}: MOVING {moved:.2f} m over frames {frames} (red first, blue last), from "
                    f"{_where(centres[0], frame, reference)} to {_where(centres[-1], frame, reference)}")
    shown = xy[:: max(1, len(xy) // MAX_POINTS_PER_OBJECT)]
    axes.scatter(shown[:, 0], shown[:, 1], s=1, color=colour, alpha=0.3)
    axes.fill(outline[:, 0], outline[:, 1], color=colour, alpha=0.35, label=label)
    axes.plot(outline[:, 0], outline[:, 1], color=colour, linewidth=2)
    centre = np.median(xy, axis=0)
    axes.annotate(label, centre, ha="center", va="center", fontsize=9,
                  bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.7})
    sides = sorted((np.linalg.norm(outline[1] - outline[0]), np.linalg.norm(outline[2] - outline[1])), reverse=True)
    return xy, f"{label}: at {_where(centre, frame, reference)}, footprint {sides[0]:.2f} x {sides[1]:.2f} m"


def _draw_cameras(axes, poses: dict[int, np.ndarray], frame: PlotFrame, span: float, path: bool) -> str:
    """Heading arrows and frame numbers of the cameras, joined by a dashed path if ``path``."""
    positions = frame(np.array([T[:3, 3] for T in poses.values()]))
    if path and len(poses) > 1:
        axes.plot(positions[:, 0], positions[:, 1], "--", color="gray", linewidth=1, label="camera path")
    for (index, T), position in zip(poses.items(), positions):
        heading = frame(T[:3, 3] + T[:3, 2])[0] - position  # optical z = viewing direction
        heading /= max(np.linalg.norm(heading), 1e-9)
        axes.annotate("", position + 0.06 * span * heading, position, arrowprops={"arrowstyle": "-|>", "color": "black"})
        axes.text(position[0], position[1], f" {index}", fontsize=7, color="black", va="top")
    travelled = float(np.sum(np.linalg.norm(np.diff(positions, axis=0), axis=1))) if len(positions) > 1 else 0.0
    return f"cameras: frames {list(poses)}, path {travelled:.2f} m"


def render_bev(objects: Mapping[str, object] | None = None, camera_poses: Mapping[int, np.ndarray] | None = None,
               *, reference: np.ndarray | None = None, reference_label: str = "", ego_trajectory: bool = True,
               title: str = "", size_px: int = 800, source: str = "tools.Geometry.render_bev") -> VisualFeedback:
    """Top-down VisualFeedback of labelled objects and cameras, in metres, with a scale bar and a text description.

    ``objects`` maps a label to an (N, 3) / (H, W, 3) world point set, a ``Box3D`` or ``{frame index: points}``
    (tracked: still or moving); ``camera_poses`` maps absolute frame indices to 4x4 camera-to-world (OpenCV
    optical) poses. ``reference``: a camera pose to view from (None: world x/y); ``ego_trajectory``: draw
    every camera and their path (else only the reference camera).
    """
    objects = dict(objects or {})
    poses = {int(i): np.asarray(T, dtype=float).reshape(4, 4) for i, T in sorted((camera_poses or {}).items())}
    if not ego_trajectory:
        poses = {}
    if not objects and not poses and reference is None:
        raise ValueError("render_bev needs at least one object or one camera pose")
    frame = PlotFrame(reference)
    figure = Figure(figsize=(size_px / 100.0, size_px / 100.0), dpi=100)
    axes = figure.add_subplot()
    lines, extents = [], [np.zeros((1, 2))] if reference is not None else []
    for n, (label, item) in enumerate(objects.items()):
        xy, line = _draw_object(axes, str(label), item, frame, f"C{n % 10}", reference is not None)
        extents.append(xy)
        lines.append(line)
    if poses:
        extents.append(frame(np.array([T[:3, 3] for T in poses.values()])))
    all_xy = np.vstack(extents)
    low, high = all_xy.min(axis=0), all_xy.max(axis=0)
    span = float(max(np.max(high - low), 0.5))
    if poses:
        lines.append(_draw_cameras(axes, poses, frame, span, path=True))
    if reference is not None:
        axes.plot([0.0], [0.0], marker="^", markersize=12, color="black", label=reference_label or "reference camera")
    margin = 0.1 * span
    axes.set_xlim(low[0] - margin, low[0] + span + margin)
    axes.set_ylim(low[1] - margin, low[1] + span + margin)
    axes.set_aspect("equal")
    bar = nice_length(span)
    x0, y0 = low[0], low[1] - 0.6 * margin
    axes.plot([x0, x0 + bar], [y0, y0], color="black", linewidth=4)
    axes.text(x0 + bar / 2, y0, f"{bar:g} m", ha="center", va="bottom", fontsize=9)
    axes.set_xlabel(frame.names[0])
    axes.set_ylabel(frame.names[1])
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper right", fontsize=8)
    view = f"seen from the {reference_label or 'reference camera'} (x right, y forward)" if reference is not None \
        else "world x/y (z up)"
    axes.set_title(title or f"top-down view, {view}")
    figure.tight_layout()
    description = "\n".join([f"Top-down view, {view}, metres:", *lines])
    return VisualFeedback(render_figure(figure), source, description)
