"""The perception cache: repeated calls reuse outputs, changed inputs never do, memory stays bounded."""

from __future__ import annotations

import numpy as np

from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.perception.backends import make_reconstruction_backend
from spatialclaw_ros.perception.cache import CachedReconstructor, PerceptionCache, frame_content_key
from spatialclaw_ros.tools import ToolContext
from spatialclaw_ros.tools.sam3 import SAM3

from analytic import panel_frame


def reconstructor(cache: PerceptionCache) -> CachedReconstructor:
    return CachedReconstructor(make_reconstruction_backend("sensor", host=None, world_frame="map"), cache)


def test_repeated_and_overlapping_calls_reuse_per_frame_outputs():
    cache = PerceptionCache()
    reconstruct = reconstructor(cache)
    frames = [panel_frame(index=i, yaw=0.1 * i)[0] for i in range(3)]
    first = reconstruct(frames[:2])
    assert (cache.hits, cache.misses) == (0, 2)
    again = reconstruct(frames[:2])
    assert (cache.hits, cache.misses) == (2, 2)
    assert again.views[0] is first.views[0] and again.views[1] is first.views[1]
    overlap = reconstruct(frames[1:])
    assert (cache.hits, cache.misses) == (3, 3)
    assert overlap.views[1] is first.views[1] and overlap.frame_indices == [1, 2]


def test_changed_frame_content_is_recomputed():
    cache = PerceptionCache()
    reconstruct = reconstructor(cache)
    frame, _ = panel_frame(index=5)
    before = reconstruct([frame])
    moved = Frame(index=5, rgb=frame.rgb, K=frame.K, depth=frame.depth + 1.0, T_world_camera=frame.T_world_camera)
    assert frame_content_key(moved) != frame_content_key(frame)
    after = reconstruct([moved])
    assert cache.misses == 2
    np.testing.assert_allclose(after.depth[5], before.depth[5] + 1.0, atol=1e-5)


def test_least_recently_used_entries_are_evicted_beyond_the_byte_bound():
    one_view = reconstructor(PerceptionCache())([panel_frame()[0]]).nbytes
    cache = PerceptionCache(max_bytes=int(2.5 * one_view))
    reconstruct = reconstructor(cache)
    frames = [panel_frame(index=i)[0] for i in range(3)]
    reconstruct(frames[:2])
    reconstruct(frames[:1])  # frame 0 becomes the most recently used
    reconstruct(frames[2:])  # evicts frame 1
    assert len(cache) == 2
    misses = cache.misses
    reconstruct(frames[:1])
    assert cache.misses == misses
    reconstruct(frames[1:2])
    assert cache.misses == misses + 1


def test_segmentation_results_are_cached_per_prompt():
    cache = PerceptionCache()
    frame, ids = panel_frame(index=0)
    sam3 = SAM3(ToolContext(frames=FrameSet([frame], world_frame="map"), host=None), cache=cache)
    rows, cols = np.nonzero(ids)
    box = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
    first = sam3.segment_image_by_box(0, box, label="panel")
    hits = cache.hits
    second = sam3.segment_image_by_box(0, box, label="panel")
    assert cache.hits == hits + 1
    np.testing.assert_array_equal(first.get_mask(0), second.get_mask(0))
    sam3.segment_image_by_box(0, [box[0] + 2, box[1], box[2], box[3]], label="panel")
    assert cache.hits == hits + 2  # the reconstruction is reused, the new box is segmented
