"""``tools.Graph``: line charts of numeric series rendered off-screen, with a text summary for the model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from ..image_types import VisualFeedback
from .shared import Shared

if TYPE_CHECKING:
    from . import ToolContext

#: A series is "flat" when its least-squares line changes by less than this share of its value range.
FLAT_SHARE = 0.2


def as_series(values) -> dict[str, np.ndarray]:
    """``{name: 1-D float array}`` from one sequence (named "values") or a dict of named sequences."""
    named = values if isinstance(values, dict) else {"values": values}
    series = {}
    for name, seq in named.items():
        array = np.asarray(seq, dtype=float)
        if array.ndim > 1 and array.size != max(array.shape):
            raise ValueError(f"series {name!r} must be 1-D, got shape {array.shape}")
        array = array.ravel()
        if array.size == 0:
            raise ValueError(f"series {name!r} is empty")
        series[str(name)] = array
    return series


def trend(x: np.ndarray, y: np.ndarray) -> tuple[str, float]:
    """("increasing" | "decreasing" | "flat", least-squares slope in y per x) of the finite points."""
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 or np.ptp(y) == 0.0:
        return "flat", 0.0
    slope = float(np.polyfit(x, y, 1)[0])
    change = slope * float(np.ptp(x))
    if abs(change) < FLAT_SHARE * float(np.ptp(y)):
        return "flat", slope
    return ("increasing" if change > 0 else "decreasing"), slope


def summarise(name: str, x: np.ndarray, y: np.ndarray) -> str:
    """One line: count, min/max with their x, first/last, mean and trend of a series (NaNs skipped)."""
    ok = np.isfinite(y)
    if not ok.any():
        return f"{name}: n={y.size}, no finite values"
    xs, ys = x[ok], y[ok]
    lo, hi = int(np.argmin(ys)), int(np.argmax(ys))
    direction, slope = trend(x, y)
    return (f"{name}: n={ys.size}, min={ys[lo]:.4g} at x={xs[lo]:.4g}, max={ys[hi]:.4g} at x={xs[hi]:.4g}, "
            f"first={ys[0]:.4g}, last={ys[-1]:.4g}, mean={ys.mean():.4g}, trend={direction} (slope {slope:.4g} per x)")


def render_figure(figure: Figure) -> Image.Image:
    """Rasterise a matplotlib figure with the Agg backend into an RGB PIL image."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[:, :, :3].copy())


class Graph(Shared):
    """Charts of numbers over frames or time (e.g. a distance per frame)."""

    def __init__(self, context: ToolContext) -> None:
        self._context = context

    def plot(self, values, validity=None, x_label: str = "Frame", y_label: str = "Value", title: str | None = None,
             *, x=None) -> VisualFeedback:
        """Line chart of a 1-D sequence (or {name: sequence}) over x (default 0..n-1); validity False = a gap.
        .description: per series min/max (with x), first, last, mean, trend (flat if change < 20% of range)."""
        series = as_series(values)
        figure = Figure(figsize=(6.4, 4.0), dpi=100)
        axes = figure.add_subplot()
        lines = []
        for name, y in series.items():
            xs = np.arange(y.size, dtype=float) if x is None else np.asarray(x, dtype=float).ravel()
            if xs.size != y.size:
                raise ValueError(f"x has {xs.size} values but series {name!r} has {y.size}")
            if validity is not None:
                valid = np.asarray(validity, dtype=bool).ravel()
                if valid.size != y.size:
                    raise ValueError(f"validity has {valid.size} values but series {name!r} has {y.size}")
                y = np.where(valid, y, np.nan)
            axes.plot(xs, y, marker="o", markersize=3, label=name)
            lines.append(summarise(name, xs, y))
        axes.set_title(title or "")
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        axes.grid(True, alpha=0.3)
        if len(series) > 1:
            axes.legend()
        figure.tight_layout()
        return VisualFeedback(render_figure(figure), "Graph.plot", "\n".join(lines))
