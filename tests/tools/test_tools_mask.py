"""tools.Mask: pixel statistics of boolean masks."""

from __future__ import annotations

import numpy as np
import pytest
from tool_scenes import make_context

from spatialclaw_ros.tools.mask import Mask


def rect(top: int, left: int, bottom: int, right: int, shape=(10, 12)) -> np.ndarray:
    """Bool mask with rows top..bottom-1 and columns left..right-1 set."""
    mask = np.zeros(shape, bool)
    mask[top:bottom, left:right] = True
    return mask


@pytest.fixture
def masks() -> Mask:
    return Mask(make_context())


def test_area_centroid_and_box(masks):
    m = rect(2, 3, 5, 8)  # 3 rows x 5 columns
    assert masks.area(m) == 15
    assert masks.centroid(m) == (5.0, 3.0)
    assert masks.bounding_box(m) == (3, 2, 8, 5)
    box = masks.mask_to_bbox(m[None])  # a (1, H, W) mask is accepted
    assert box.dtype == np.float64 and box.tolist() == [3.0, 2.0, 8.0, 5.0]
    skewed = rect(0, 0, 1, 10) | rect(0, 0, 10, 1)  # an L: the median is robust, the mean would be (2.4, 2.4)
    assert masks.centroid(skewed) == (0.0, 0.0)


def test_centroids_mark_empty_masks(masks):
    stack = np.stack([rect(0, 0, 2, 2), np.zeros((10, 12), bool), rect(8, 10, 10, 12)])
    assert masks.centroids(stack) == [(0.5, 0.5), None, (10.5, 8.5)]


def test_iou_and_intersection(masks):
    a, b = rect(0, 0, 4, 4), rect(2, 2, 6, 6)  # 16 px each, 4 px shared
    assert masks.iou(a, b) == pytest.approx(4 / 28)
    assert masks.iou(a, a) == 1.0
    both = masks.intersection(a, b)
    assert both.dtype == bool and both.sum() == 4 and both[2:4, 2:4].all()


def test_errors_are_specific(masks):
    empty = np.zeros((10, 12), bool)
    with pytest.raises(ValueError, match="empty mask"):
        masks.centroid(empty)
    with pytest.raises(ValueError, match="empty mask"):
        masks.bounding_box(empty)
    with pytest.raises(ValueError, match="two empty masks"):
        masks.iou(empty, empty)
    with pytest.raises(ValueError, match=r"differ in shape: \(10, 12\) vs \(5, 5\)"):
        masks.iou(rect(0, 0, 2, 2), np.ones((5, 5), bool))
    with pytest.raises(ValueError, match=r"one \(H, W\) mask"):
        masks.area(np.ones((2, 3, 4), bool))
