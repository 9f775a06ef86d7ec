"""The JSONL row format: parsing, bad rows with reasons, and frames with depth and poses."""

import json

import numpy as np
import pytest
from PIL import Image

from eval_support import write_image, write_jsonl
from spatialclaw_ros.evaluation.dataset import BadRow, RowProblem, load_frames, read_rows, write_rows


def test_rows_and_bad_rows_with_reasons(tmp_path):
    image = write_image(tmp_path / "a.png")
    path = write_jsonl(tmp_path / "bench.jsonl", [
        {"id": "ok", "question": "Which is closer? A. chair B. table", "answer": "B", "images": [image]},
        {"id": "no-answer", "question": "How many chairs are there?", "images": [image]},
        {"id": "two-sources", "question": "How many chairs are there?", "answer": 2, "images": [image], "video": "v.mp4"},
        {"id": "bad-letter", "question": "Which?", "choices": ["x", "y"], "answer": "E", "images": [image]},
        {"id": "typo", "question": "How many?", "answer": 2, "images": [image], "answr": 3},
    ])
    with path.open("a") as out:
        out.write("{not json\n")
    items = list(read_rows(path))
    assert [item.id for item in items if not isinstance(item, RowProblem)] == ["ok"]
    problems = {item.id: item.reason for item in items if isinstance(item, RowProblem)}
    assert "no 'answer'" in problems["no-answer"]
    assert "exactly one of images, video, bag" in problems["two-sources"]
    assert "not one of the option labels A, B" in problems["bad-letter"]
    assert "unknown keys ['answr']" in problems["typo"]
    assert "not JSON" in problems["line 6"]


def test_missing_image_is_a_bad_row(tmp_path):
    write_jsonl(tmp_path / "b.jsonl", [{"id": "x", "question": "How many chairs are there?", "answer": 1,
                                        "images": ["gone.png"]}])
    [row] = read_rows(tmp_path / "b.jsonl")
    with pytest.raises(BadRow, match="gone.png does not exist"):
        load_frames(row, 8)


def test_images_with_depth_intrinsics_and_poses_round_trip(tmp_path):
    depth_mm = np.array([[1000, 2500], [0, 65535]], np.uint16)
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(depth_mm).save(tmp_path / "depth.png")
    pose = np.eye(4)
    pose[:3, 3] = [1.0, 2.0, 0.5]
    K = [[100.0, 0, 1.0], [0, 100.0, 1.0], [0, 0, 1]]
    write_jsonl(tmp_path / "c.jsonl", [{"id": "g", "question": "How many chairs are there?", "answer": 1,
                                        "images": ["rgb.png"], "depth": ["depth.png"], "intrinsics": K,
                                        "poses": [pose.tolist()], "base_poses": [np.eye(4).tolist()], "stamps": [3.5],
                                        "world_frame": "map"}])
    [row] = read_rows(tmp_path / "c.jsonl")
    frames = load_frames(row, 8)
    frame = frames.frames[0]
    assert frames.world_frame == "map" and frame.stamp == 3.5
    np.testing.assert_allclose(frame.depth, [[1.0, 2.5], [np.nan, 65.535]])
    np.testing.assert_allclose(frame.T_world_camera, pose)
    np.testing.assert_allclose(frame.K, K)
    assert "base_link" in frame.poses
    write_rows([row], tmp_path / "copy" / "rows.jsonl")
    copied = json.loads((tmp_path / "copy" / "rows.jsonl").read_text())
    assert copied["images"] == [str(tmp_path / "rgb.png")]  # outside the folder: kept absolute
