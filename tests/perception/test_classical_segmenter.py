"""The weight-free classical segmenter through tools.SAM3: masks against ground truth, prompts, tracking, errors."""

from __future__ import annotations

import numpy as np
import pytest

from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.scenes.generator import generate_scene, living_room, living_room_side_view
from spatialclaw_ros.scenes.render import frame_set, render_scene
from spatialclaw_ros.tools import build_toolbox

from analytic import PANEL_HALF, PANEL_RGB, PANEL_X, panel_frame


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a & b) / np.count_nonzero(a | b))


def true_box(instance: np.ndarray, instance_id: int) -> list[int]:
    rows, cols = np.nonzero(instance == instance_id)
    return [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]


def panel_tools(*frames: Frame):
    return build_toolbox(FrameSet(list(frames), world_frame="map"), None)


@pytest.fixture(scope="module")
def random_scenes():
    scenes = [generate_scene(seed, n_frames=1) for seed in (1, 2)]
    return [(scene, render_scene(scene)) for scene in scenes]


def test_box_prompt_masks_match_the_true_instance_masks(random_scenes):
    checked = 0
    for scene, rendered in random_scenes:
        tools = build_toolbox(frame_set(scene, rendered), None)
        instance = rendered[0].instance
        for obj in scene.objects:
            if np.count_nonzero(instance == obj.instance_id) < 300:
                continue
            seg = tools.SAM3.segment_image_by_box(0, true_box(instance, obj.instance_id), label=obj.label)
            assert seg.labels == [obj.label] and seg.frame_indices == [0]
            assert iou(seg.get_mask(0, obj.label), instance == obj.instance_id) >= 0.9, obj.label
            checked += 1
    assert checked >= 6


def test_depth_removes_the_floor_that_colour_alone_keeps():
    """A cabinet on the floor: with depth the box gives the cabinet; without depth the box is coloured alike."""
    scene = living_room(n_frames=1)
    rendered = render_scene(scene)
    cabinet = rendered[0].instance == scene.object("cabinet").instance_id
    box = true_box(rendered[0].instance, scene.object("cabinet").instance_id)
    with_depth = build_toolbox(frame_set(scene, rendered), None).SAM3.segment_image_by_box(0, box).get_mask(0)
    assert iou(with_depth, cabinet) >= 0.95
    colour_only = panel_tools(Frame(index=0, rgb=rendered[0].frame.rgb)).SAM3.segment_image_by_box(0, box).get_mask(0)
    assert iou(colour_only, cabinet) < iou(with_depth, cabinet)


def test_a_loose_box_from_a_projected_3d_box_gives_a_close_chair_whole():
    """A chair seen from close by (the side view's last frames), boxed by projecting its 3D box as a planner
    would: its back is well nearer than its seat, and the box holds floor and wall too. The mask is the chair,
    not the wall behind it nor the table beside it."""
    scene = living_room_side_view()
    rendered = render_scene(scene)
    sam3 = build_toolbox(frame_set(scene, rendered), None).SAM3
    chair = scene.object("chair")
    for r in rendered[2:]:
        T, K = r.frame.T_world_camera, r.frame.K
        camera = (chair.corners() - T[:3, 3]) @ T[:3, :3]
        u = K[0, 0] * camera[:, 0] / camera[:, 2] + K[0, 2]
        v = K[1, 1] * camera[:, 1] / camera[:, 2] + K[1, 2]
        box = [max(0.0, u.min()), max(0.0, v.min()), min(r.frame.width, u.max() + 1), min(r.frame.height, v.max() + 1)]
        mask = sam3.segment_image_by_box(r.frame.index, box).get_mask(r.frame.index)
        assert iou(mask, r.instance == chair.instance_id) >= 0.9, r.frame.index


def test_depth_separates_an_object_from_a_background_of_its_colour():
    frame, ids = panel_frame(wall_rgb=PANEL_RGB)
    rows, cols = np.nonzero(ids)
    loose_box = [cols.min() - 12, rows.min() - 12, cols.max() + 13, rows.max() + 13]
    assert iou(panel_tools(frame).SAM3.segment_image_by_box(0, loose_box).get_mask(0), ids == 1) >= 0.95


def test_point_prompt_finds_the_object_under_the_point():
    frame, ids = panel_frame()
    rows, cols = np.nonzero(ids)
    seg = panel_tools(frame).SAM3.segment_image_by_points(0, [[cols.mean(), rows.mean()]], [1], label="panel")
    assert iou(seg.get_mask(0, "panel"), ids == 1) >= 0.95


def test_a_point_selects_its_colour_where_depth_joins_two_objects():
    """Two touching objects on one depth surface, told apart only by colour (a chair against the cabinet
    behind it): a point on the left one gives the left one, with or without a background point on the right."""
    frame, ids = panel_frame(split_panel=True)
    sam3 = panel_tools(frame).SAM3
    left = np.argwhere(ids == 1).mean(axis=0)[::-1]
    right = np.argwhere(ids == 2).mean(axis=0)[::-1]
    for points, labels in (([left], [1]), ([left, right], [1, 0])):
        mask = sam3.segment_image_by_points(0, points, labels).get_mask(0)
        assert iou(mask, ids == 1) >= 0.95, labels
        assert np.count_nonzero(mask & (ids == 2)) == 0, labels


def test_colour_only_segmentation_of_a_bare_image():
    frame, ids = panel_frame()
    rows, cols = np.nonzero(ids)
    sam3 = panel_tools(frame).SAM3
    seg = sam3.segment_image_by_box(frame.rgb, [cols.min() - 3, rows.min() - 3, cols.max() + 4, rows.max() + 4])
    assert seg.frame_indices == [-1]
    assert iou(seg.get_mask(-1), ids == 1) >= 0.9


def test_masked_points_and_centroid_are_metric_world_coordinates():
    frame, ids = panel_frame()
    tools = panel_tools(frame)
    recon = tools.Reconstruct.Reconstruct(0)
    rows, cols = np.nonzero(ids)
    seg = tools.SAM3.segment_image_by_box(0, [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], label="panel")
    points = seg.get_masked_points(recon, 0, "panel")
    assert np.abs(points[:, 0] - PANEL_X).max() < 1e-4
    assert len(points) < np.count_nonzero(ids)  # the eroded border is left out
    assert np.abs(points[:, 1]).max() < PANEL_HALF
    np.testing.assert_allclose(seg.get_centroid_3d(recon, 0, "panel"), [PANEL_X, 0.0, 1.0], atol=0.01)


def test_empty_mask_raises_a_clear_error_instead_of_nan():
    frame, _ = panel_frame()
    tools = panel_tools(frame)
    recon = tools.Reconstruct.Reconstruct(0)
    seg = tools.SAM3.segment_image_by_box(0, [2, 2, 30, 20], label="wall corner")
    seg_empty = type(seg)([np.zeros((1, 120, 160), bool)], ["ghost"], [0], images=[frame.rgb])
    with pytest.raises(ValueError, match=r"object 'ghost' has no 3D points in frame 0: its mask has 0 px"):
        seg_empty.get_centroid_3d(recon, 0, "ghost")
    assert len(seg_empty.get_masked_points(recon, 0)) == 0


def test_frames_and_objects_are_addressed_with_helpful_errors():
    frame, ids = panel_frame(index=4)
    tools = panel_tools(frame)
    seg = tools.SAM3.segment_image_by_box(4, [40, 30, 120, 90], label="panel")
    with pytest.raises(KeyError, match=r"frame index 0; valid frame indices .*\[4\]"):
        seg.get_mask(0)
    with pytest.raises(KeyError, match=r"0 objects are labelled 'chair'; labels: \['panel'\]"):
        seg.get_mask(4, "chair")
    with pytest.raises(IndexError, match="object index 3 out of range: 1 objects"):
        seg.get_mask(4, 3)
    assert seg[4].shape == (1, 120, 160) and seg.masks.shape == (1, 1, 120, 160)
    with pytest.raises(ValueError, match="lies outside the 160x120 image"):
        tools.SAM3.segment_image_by_box(4, [200, 10, 260, 50])
    with pytest.raises(ValueError, match="needs at least one foreground point"):
        tools.SAM3.segment_image_by_points(4, [[10, 10]], [0])
    with pytest.raises(RuntimeError, match="vlm.locate service, which is not connected"):
        tools.SAM3.segment_image_by_text(4, "panel")


def test_visualize_tints_the_masked_pixels():
    frame, ids = panel_frame()
    rows, cols = np.nonzero(ids)
    seg = panel_tools(frame).SAM3.segment_image_by_box(0, [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
    image = np.asarray(seg.visualize(0))
    assert image.shape == frame.rgb.shape
    inner = (slice(rows.min() + 5, rows.max() - 5), slice(cols.min() + 5, cols.max() - 5))
    changed = np.any(image[inner] != frame.rgb[inner], axis=-1)
    assert changed.mean() > 0.95
    np.testing.assert_array_equal(image[:5, :5], frame.rgb[:5, :5])


@pytest.fixture(scope="module")
def living_room_video():
    scene = living_room(n_frames=6)
    rendered = render_scene(scene)
    return scene, rendered, build_toolbox(frame_set(scene, rendered), None)


@pytest.mark.parametrize("prompt_frame", [0, 3])
def test_tracking_follows_objects_forwards_and_backwards(living_room_video, prompt_frame):
    scene, rendered, tools = living_room_video
    names = ["chair", "cabinet", "trash can"]
    boxes = [true_box(rendered[prompt_frame].instance, scene.object(n).instance_id) for n in names]
    seg = tools.SAM3.segment_video_by_box(boxes, labels=names, prompt_frame_idx=prompt_frame)
    assert seg.masks.shape == (6, 3, 240, 320) and seg.frame_indices == list(range(6))
    for name in names:
        for r in rendered:
            truth = r.instance == scene.object(name).instance_id
            if np.count_nonzero(truth) >= 300:
                assert iou(seg.get_mask(r.frame.index, name), truth) >= 0.8, (name, r.frame.index)


def test_tracking_gives_an_empty_mask_where_the_object_is_out_of_view():
    ahead, ids = panel_frame(index=0)
    away, away_ids = panel_frame(index=1, yaw=np.radians(80.0))
    assert not away_ids.any()
    rows, cols = np.nonzero(ids)
    seg = panel_tools(ahead, away).SAM3.segment_video_by_box([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
    assert iou(seg.get_mask(0), ids == 1) >= 0.95
    assert not seg.get_mask(1).any()


def test_video_prompt_errors_name_what_to_change():
    frames = [panel_frame(index=i)[0] for i in (2, 3)]
    sam3 = panel_tools(*frames).SAM3
    with pytest.raises(ValueError, match=r"prompt_frame_idx 3 is not among the frames this call follows \[2\]"):
        sam3.segment_video_by_box([40, 30, 120, 90], prompt_frame_idx=3, end_frame=3)  # end_frame is exclusive
    with pytest.raises(ValueError, match="2 labels for 1 prompts: give one label per prompt"):
        sam3.segment_video_by_text("chair", labels=["chair 1", "chair 2"], prompt_frame_idx=2)
    with pytest.raises(ValueError, match="2 labels for 1 prompts"):
        sam3.segment_video_by_box([40, 30, 120, 90], labels=["a", "b"], prompt_frame_idx=2)
    seg = sam3.segment_video_by_points([[[80, 60]], [[20, 20]]], [[1], [1]], labels=["panel", "wall"], prompt_frame_idx=2)
    assert seg.labels == ["panel", "wall"] and seg.masks.shape == (2, 2, 120, 160)


def test_tracking_needs_depth_and_poses():
    frame, _ = panel_frame(index=0)
    no_depth = Frame(index=1, rgb=frame.rgb, K=frame.K, T_world_camera=frame.T_world_camera)
    with pytest.raises(ValueError, match="follows objects between frames with depth and camera poses.*frame 1: no depth"):
        panel_tools(frame, no_depth).SAM3.segment_video_by_box([40, 30, 120, 90])
