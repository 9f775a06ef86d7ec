"""The reference kernel types in-process: FrameImage, InputImages, VisualFeedback, Metadata, LocateAnswer, show()'s budget."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from PIL import Image

from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.grounding import read_grounding, to_pixels
from spatialclaw_ros.image_types import FrameImage, InputImages, VisualFeedback
from spatialclaw_ros.kernel import namespace
from spatialclaw_ros.kernel.namespace import KernelServices, LocateAnswer, bind_services, metadata, show
from spatialclaw_ros.perception.backends import BackendChoice


def frame_image(index: int = 3, value: int = 40) -> FrameImage:
    return FrameImage(np.full((24, 32, 3), value, np.uint8), index, stamp=1.5, camera="front")


def test_a_frame_image_is_not_a_pil_image_but_acts_like_one():
    f = frame_image()
    assert not isinstance(f, Image.Image) and isinstance(f.image, Image.Image)
    assert (f.frame_index, f.width, f.height, f.size, f.mode) == (3, 32, 24, (32, 24), "RGB")
    assert f.resize((16, 12)).size == (16, 12) and type(f.convert("L")) is not FrameImage
    assert np.array(f).shape == (24, 32, 3) and Image.fromarray(np.asarray(f)).size == (32, 24)


def test_array_views_of_a_frame_cannot_change_it():
    f = frame_image()
    pixels = np.array(f)
    pixels[:] = 255
    np.asarray(f)[0, 0] = 0  # a fresh copy each time
    assert int(np.array(f).max()) == 40


def test_frame_image_loads_lazily_copies_and_refuses_paths():
    f = frame_image()
    assert not f.is_loaded
    f.image
    assert f.is_loaded
    twin = copy.deepcopy(f)
    assert twin.frame_index == 3 and np.array_equal(np.array(twin), np.array(f))
    assert FrameImage(f, 3, max_edge=16).size == (16, 12)
    with pytest.raises(TypeError, match="cells cannot read image files"):
        FrameImage("/tmp/x.png", 0)
    assert repr(f) == "FrameImage(frame_index=3, 32x24, camera=front, t=1.50 s)"


def test_input_images_index_by_position_and_keep_absolute_indices_in_slices():
    images = InputImages([frame_image(i, 10 * i) for i in (5, 9, 12)])
    assert images[1].frame_index == 9 and images.frame_indices == [5, 9, 12]
    assert isinstance(images[1:], InputImages) and images[1:].frame_indices == [9, 12]
    assert images.frame(12).frame_index == 12
    with pytest.raises(KeyError, match=r"Frame 4 not found in InputImages; valid indices: \[5, 9, 12\]"):
        images.frame(4)
    with pytest.raises(TypeError):
        images[[0, 1]]
    plain = InputImages([Image.new("RGB", (8, 6)), np.zeros((6, 8, 3), np.uint8)])
    assert plain.frame_indices == [0, 1] and all(isinstance(image, FrameImage) for image in plain)
    assert InputImages([Image.new("RGB", (8, 6))], frame_indices=[7]).frame_indices == [7]
    with pytest.raises(ValueError, match="2 images but 1 frame_indices"):
        InputImages([Image.new("RGB", (8, 6))] * 2, frame_indices=[1])
    with pytest.raises(ValueError, match="item 0 is frame 5 but frame_indices says 6"):
        InputImages([frame_image(5)], frame_indices=[6])
    assert copy.deepcopy(images).frame_indices == [5, 9, 12]


def test_visual_feedback_needs_a_pil_image_and_delegates_to_it():
    with pytest.raises(TypeError, match="VisualFeedback needs a PIL image, got ndarray"):
        VisualFeedback(np.zeros((4, 4, 3), np.uint8), "x", "y")
    vis = VisualFeedback(Image.new("RGB", (10, 5), "red"), "Graph.plot", "a chart")
    assert (vis.source, vis.description, vis.frame_index, vis.size) == ("Graph.plot", "a chart", None, (10, 5))
    assert tuple(np.array(vis)[0, 0]) == (255, 0, 0)


def frames_of(cameras: dict[str, list[int]], **frame_set) -> FrameSet:
    frames = [Frame(index=i, rgb=np.zeros((4, 6, 3), np.uint8), stamp=0.5 * i, camera=name)
              for name, indices in cameras.items() for i in indices]
    return FrameSet(sorted(frames, key=lambda f: f.stamp), **frame_set)


def test_metadata_of_one_video_several_cameras_and_an_image_set():
    one = metadata(frames_of({"front": [0, 1, 2]}, is_video=True, fps=30.0, total_frames=90), BackendChoice())
    assert (one.is_video, one.fps, one.total_frames, one.num_images, one.num_videos) == (True, 30.0, 90, 3, 1)
    assert one.videos == [{"name": "front", "fps": 30.0, "num_frames": 3, "total_frames": 90, "duration_sec": 1.0}]
    assert one.reconstruct_max_frames == 64 and one.to_dict()["num_images"] == 3 and json.dumps(one.to_dict())
    assert isinstance(one.video_source, str)
    two = metadata(frames_of({"rear": [0, 2], "front": [1, 3, 5]}, is_video=True, fps=12.0), BackendChoice())
    assert two.fps is None and two.num_videos == 2 and [v["name"] for v in two.videos] == ["front", "rear"]
    assert [v["num_frames"] for v in two.videos] == [3, 2] and two.videos[0]["duration_sec"] == 2.0
    still = metadata(frames_of({"images": [0, 1]}), BackendChoice())
    assert (still.is_video, still.fps, still.videos, still.num_videos, still.video_source) == (False, None, None, 0, None)
    with pytest.raises(AttributeError, match="Metadata has no 'frame_rate'; its keys are"):
        still.frame_rate


@pytest.mark.parametrize("text, visible, numbers, point, box", [
    ("834 357", True, (834, 357), (834, 357), None),
    ("381 248 668 582", True, (381, 248, 668, 582), (524.5, 415), (381, 248, 668, 582)),
    ("(120, 880)", True, (120, 880), (120, 880), None),
    ('```json\n[{"bbox_2d": [10, 20, 30, 40], "label": "chair_1"}]\n```', True, (10, 20, 30, 40), (20, 30),
     (10, 20, 30, 40)),
    ("x1: 5, y1: 6, x2: 7, y2: 8", True, (5, 6, 7, 8), (6, 7), (5, 6, 7, 8)),
    ("Not visible\nThere are 2 chairs.", False, (2,), None, None),
    ("The mug is not visible here.", False, (), None, None),
    ("1 2 3", True, (1, 2, 3), None, None),
])
def test_reading_grounding_answers(text, visible, numbers, point, box):
    grounding = read_grounding(text)
    assert (grounding.visible, grounding.numbers, grounding.point, grounding.box) == (visible, numbers, point, box)


def test_a_locate_answer_is_the_text_with_pixel_forms():
    answer = LocateAnswer("381 248 668 582", 640, 480)
    assert answer == "381 248 668 582" and isinstance(answer, str) and answer.split()[0] == "381"
    assert answer.box == pytest.approx((243.84, 119.04, 427.52, 279.36)) and answer.visible
    assert answer.point == pytest.approx(((243.84 + 427.52) / 2, (119.04 + 279.36) / 2))
    assert json.dumps({"a": answer}) == '{"a": "381 248 668 582"}'
    gone = LocateAnswer("Not visible", 640, 480)
    assert "Not visible" in gone and gone.point is None and gone.box is None and not gone.visible
    assert to_pixels([[500, 500], [1000, 0]], 200, 100).tolist() == [[100.0, 50.0], [200.0, 0.0]]


def test_show_sends_at_most_250_images_per_question_and_says_what_is_left(capsys):
    sent = []
    bind_services(KernelServices(host=None, emit_image=lambda label, png: sent.append(label), image_max_side=64))
    try:
        tiny = np.zeros((4, 4, 3), np.uint8)
        show([tiny] * 200, label="first")
        assert capsys.readouterr().out == "[show() budget] 50/250 images remaining\n"
        show([tiny] * 60)
        assert "EXHAUSTED - 0/250 images remaining: 10 image(s) not shown" in capsys.readouterr().out
        show(tiny)
        assert len(sent) == 250 and "EXHAUSTED" in capsys.readouterr().out
        with pytest.raises(TypeError, match=r"show\(\) got a float64 array with values 0..5"):
            show(np.linspace(0, 5, 16).reshape(4, 4))
        with pytest.raises(TypeError, match=r"show\(\) got str \(a caption goes in label='...'\)"):
            show(tiny, "caption")
        with pytest.raises(TypeError, match=r"show\(\) got tuple"):
            show([(tiny, tiny)])
    finally:
        namespace._services = None
