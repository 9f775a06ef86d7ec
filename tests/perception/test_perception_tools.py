"""tools.Reconstruct and tools.SAM3 as the agent calls them: frame arguments, limits, and the active backends."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.perception.backends import BackendChoice
from spatialclaw_ros.tools import build_toolbox

from analytic import PANEL_X, panel_frame


def input_image(frame: Frame) -> Image.Image:
    """What InputImages holds: a PIL image carrying its absolute frame index."""
    image = Image.fromarray(frame.rgb)
    image.frame_index = frame.index
    return image


@pytest.fixture
def question():
    frames = [panel_frame(index=10 * (k + 1), yaw=0.05 * k)[0] for k in range(3)]
    return frames, build_toolbox(FrameSet(frames, world_frame="map"), None)


def test_reconstruct_takes_input_images_slices_items_and_indices(question):
    frames, tools = question
    images = [input_image(f) for f in frames]
    assert tools.Reconstruct.Reconstruct(images).frame_indices == [10, 20, 30]
    assert tools.Reconstruct.Reconstruct(images[1:]).frame_indices == [20, 30]
    assert tools.Reconstruct.Reconstruct(images[0]).frame_indices == [10]
    assert tools.Reconstruct.Reconstruct([30, 10]).frame_indices == [30, 10]
    recon = tools.Reconstruct.Reconstruct([frames[1].rgb], frame_indices=[20])
    assert recon.frame_indices == [20] and recon.world_frame == "map" and tools.Reconstruct.backend == "sensor"
    assert recon.views[20] is tools.Reconstruct.Reconstruct(20).views[20]  # the same frame, served from the cache


def test_reconstruct_argument_errors_say_what_to_pass(question):
    frames, tools = question
    with pytest.raises(ValueError, match="carries no .frame_index: pass InputImages items"):
        tools.Reconstruct.Reconstruct([frames[0].rgb])
    with pytest.raises(ValueError, match="item 0 is frame 10 but frame_indices says 20"):
        tools.Reconstruct.Reconstruct([input_image(frames[0])], frame_indices=[20])
    with pytest.raises(KeyError, match=r"no frame with index 5; valid frame indices: \[10, 20, 30\]"):
        tools.Reconstruct.Reconstruct([5])
    with pytest.raises(ValueError, match=r"item 0 is \(80, 60\) \(w, h\) but frame 10 is \(160, 120\)"):
        small = input_image(frames[0]).resize((80, 60))
        small.frame_index = 10
        tools.Reconstruct.Reconstruct([small])


def test_reconstruct_takes_at_most_64_frames():
    frames = [Frame(index=i, rgb=np.zeros((4, 4, 3), np.uint8), K=np.eye(3), depth=np.ones((4, 4), np.float32),
                    T_world_camera=np.eye(4)) for i in range(65)]
    tools = build_toolbox(FrameSet(frames), None)
    assert tools.Reconstruct.Reconstruct(list(range(64))).num_frames == 64
    with pytest.raises(ValueError, match=r"takes at most 64 frames, got 65; pass a slice such as InputImages\[::2\]"):
        tools.Reconstruct.Reconstruct(list(range(65)))


def test_sam3_names_its_backend_and_what_it_cannot_do(question):
    _, tools = question
    assert tools.SAM3.backend == "classical"
    assert "one object per prompt" in tools.SAM3.capabilities
    with pytest.raises(RuntimeError, match="vlm.ask_with_thinking service, which is not connected"):
        tools.SAM3.is_object_exist([10, 20], "panel")


def test_sam3_segments_an_input_image_in_its_own_frame(question):
    frames, tools = question
    _, ids = panel_frame(index=20, yaw=0.05)
    rows, cols = np.nonzero(ids)
    seg = tools.SAM3.segment_image_by_box(input_image(frames[1]), [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1],
                                          label="panel")
    assert seg.frame_indices == [20] and seg.source == "classical"
    recon = tools.Reconstruct.Reconstruct(20)
    assert abs(seg.get_centroid_3d(recon, 20, "panel")[0] - PANEL_X) < 0.01


def test_render_bev_draws_objects_from_a_mask(question):
    frames, tools = question
    recon = tools.Reconstruct.Reconstruct([10, 20, 30])
    seg = tools.SAM3.segment_video_by_box([50, 35, 110, 85], labels=["panel"], prompt_frame_idx=10)
    image = recon.render_bev(seg)
    assert image.size[0] > 100 and image.size[1] > 100
    assert len(np.unique(np.asarray(image).reshape(-1, 3), axis=0)) > 10
    with pytest.raises(ValueError, match="2 point sets but 1 labels"):
        recon.render_bev([np.zeros((3, 3)), np.ones((3, 3))], labels=["a"])


def test_backends_follow_metadata_perception():
    frame, _ = panel_frame()
    chosen = build_toolbox(FrameSet([frame]), None, BackendChoice("sensor", "classical"))
    assert (chosen.Reconstruct.backend, chosen.SAM3.backend) == ("sensor", "classical")
    with pytest.raises(ValueError, match="unknown reconstruction backend 'vggt'; available: da3, da3-onnx, sensor"):
        build_toolbox(FrameSet([frame]), None, BackendChoice(reconstruction="vggt"))
    with pytest.raises(ValueError, match="needs a host connection"):
        build_toolbox(FrameSet([frame]), None, BackendChoice(reconstruction="da3"))
