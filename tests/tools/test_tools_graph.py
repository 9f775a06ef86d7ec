"""tools.Graph: the chart renders and its summary has the right numbers."""

from __future__ import annotations

import numpy as np
import pytest
from tool_scenes import make_context

from spatialclaw_ros.tools.graph import Graph


@pytest.fixture
def graph() -> Graph:
    return Graph(make_context())


def test_summary_numbers_and_image(graph):
    plot = graph.plot([1, 3, 2, 5, 4], title="distance", y_label="m")
    assert plot.source == "Graph.plot" and plot.frame_index is None
    assert plot.image.size == (640, 400) and plot.size == (640, 400)
    assert np.asarray(plot).std() > 0  # something was drawn
    assert plot.description == ("values: n=5, min=1 at x=0, max=5 at x=3, first=1, last=4, mean=3, "
                                "trend=increasing (slope 0.8 per x)")


def test_validity_marks_gaps(graph):
    plot = graph.plot([1.0, 50.0, 3.0, 4.0], validity=[True, False, True, True], x_label="frame", y_label="m")
    assert plot.description.startswith("values: n=3, min=1 at x=0, max=4 at x=3")
    with pytest.raises(ValueError, match="validity has 2 values but series 'values' has 4"):
        graph.plot([1, 2, 3, 4], validity=[True, False])
    with pytest.raises(ValueError, match="must be 1-D"):
        graph.plot(np.ones((3, 4)))


def test_trends_of_named_series_over_x(graph):
    x = [0.0, 0.5, 1.0, 1.5, 2.0]
    series = {"falling": [9, 7, 5, 3, 1], "wobble": [1, -1, 1, -1, 1], "gappy": [np.nan, 2, 2, 2, np.nan]}
    plot = graph.plot(series, x=x)
    falling, wobble, gappy = plot.description.splitlines()
    assert "min=1 at x=2, max=9 at x=0" in falling and "trend=decreasing (slope -4 per x)" in falling
    assert "trend=flat" in wobble
    assert gappy.startswith("gappy: n=3, min=2 at x=0.5") and "trend=flat" in gappy
    with pytest.raises(ValueError, match="x has 2 values but series 'a' has 3"):
        graph.plot({"a": [1, 2, 3]}, x=[0, 1])
    with pytest.raises(ValueError, match="series 'values' is empty"):
        graph.plot([])
