"""Each public benchmark's loader on a tiny copy written in that benchmark's own layout (from its dataset card)."""

import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from spatialclaw_ros.evaluation.dataset import load_frames
from spatialclaw_ros.evaluation.loaders import load_benchmark


def png_bytes(colour=(10, 200, 30), size=(24, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((*size, 3), colour, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_file(path, colour=(90, 60, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((24, 32, 3), colour, np.uint8)).save(path, format="JPEG")


def write_parquet(path, records):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records), path)


def by_id(rows):
    return {row.id: row for row in rows}


def test_vsi_bench(tmp_path):
    records = [
        {"id": 1, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "object_counting",
         "question": "How many chair(s) are in this room?", "options": None, "ground_truth": "4"},
        {"id": 2, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "object_size_estimation",
         "question": "What is the length of the longest dimension (length, width, or height) of the table, measured "
                     "in centimeters?", "options": None, "ground_truth": "150"},
        {"id": 3, "dataset": "arkitscenes", "scene_name": "41069025", "question_type": "object_rel_distance",
         "question": "Which of these objects (sofa, tv, bed) is the closest to the lamp?",
         "options": ["A. sofa", "B. tv", "C. bed"], "ground_truth": "C"},
        {"id": 4, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "room_size_estimation",
         "question": "What is the size of this room (in square meters)?", "options": None, "ground_truth": "not known"},
    ]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    video = tmp_path / "scannet" / "scene0011_00.mp4"
    video.parent.mkdir()
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (32, 24))
    for i in range(20):
        writer.write(np.full((24, 32, 3), 10 * i, np.uint8))
    writer.release()
    rows, problems = load_benchmark("vsi-bench", tmp_path, tmp_path / "cache")
    rows = by_id(rows)
    assert rows["1"].truth().value == 4 and rows["1"].question_type == "object_counting"
    assert rows["2"].truth().value == pytest.approx(1.5)  # 150 cm, the unit the question names
    assert rows["3"].truth().letter == "C" and rows["3"].choices == ["A. sofa", "B. tv", "C. bed"]
    assert rows["1"].video == str(video) and rows["3"].video.endswith("arkitscenes/41069025.mp4")
    assert [p.id for p in problems] == ["4"]
    frames = load_frames(rows["1"], 8)
    assert frames.is_video and len(frames.frames) == 8


def test_mmsi_bench(tmp_path):
    write_parquet(tmp_path / "MMSI_Bench.parquet", [
        {"id": 7, "images": [png_bytes(), png_bytes((200, 0, 0))], "question_type": "Positional Relationship (Cam.-Obj.)",
         "question": "Where is the lamp relative to the camera in the second image? Options: A: left, B: right, "
                     "C: above, D: behind", "answer": "B", "thought": "..."}])
    [row], problems = load_benchmark("mmsi-bench", tmp_path, tmp_path / "cache")
    assert problems == [] and row.truth().letter == "B"
    frames = load_frames(row, 8)
    assert len(frames.frames) == 2 and tuple(frames.frames[1].rgb[0, 0]) == (200, 0, 0)


def test_spbench(tmp_path):
    for frame in ("0.jpg", "20.jpg"):
        jpeg_file(tmp_path / "images" / "scene0050_00" / frame)
    write_parquet(tmp_path / "SPBench-MV.parquet", [
        {"id": 5, "dataset": "scannet", "scene_name": "scene0050_00", "images": ["0.jpg", "20.jpg"],
         "question": "Measuring from the closest point of each object, what is the distance between the chair and "
                     "the desk (in meters)?", "options": None, "question_type": "object_abs_distance",
         "ground_truth": "1.2"},
        {"id": 6, "dataset": "scannet", "scene_name": "scene0050_00", "images": ["0.jpg"],
         "question": "Which is closer to the camera?", "options": ["A. chair", "B. desk"],
         "question_type": "object_rel_distance", "ground_truth": "A"}])
    rows, problems = load_benchmark("spbench", tmp_path, tmp_path / "cache")
    rows = by_id(rows)
    assert problems == []
    assert rows["SPBench-MV-5"].truth().value == pytest.approx(1.2)
    assert rows["SPBench-MV-6"].truth().letter == "A"
    assert len(load_frames(rows["SPBench-MV-5"], 8).frames) == 2


def test_viewspatial_bench(tmp_path):
    jpeg_file(tmp_path / "scannetv2_val" / "scene0011_00" / "original_images" / "280.jpg")
    (tmp_path / "ViewSpatial-Bench.json").write_text(json.dumps([
        {"question_type": "Camera perspective - Relative Direction",
         "image_path": ["ViewSpatial-Bench/scannetv2_val/scene0011_00/original_images/280.jpg"],
         "question": "Could you tell me the location of the counter in comparison to the refrigerator?",
         "answer": "A. right", "choices": "A. right\nB. front-up\nC. back-left\nD. front"}]))
    [row], problems = load_benchmark("viewspatial-bench", tmp_path, tmp_path / "cache")
    assert problems == [] and row.truth().letter == "A" and len(row.choices) == 4
    assert row.question_type == "Camera perspective - Relative Direction"
    assert load_frames(row, 8).frames[0].width == 32


def test_cv_bench(tmp_path):
    for name in ("img/2D/count/ade20k_10.png", "img/3D/depth/omni3d_1.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(png_bytes())
    common = {"prompt": "...", "filename": "", "source_dataset": "", "source_filename": "", "target_class": None,
              "target_size": None, "bbox": None}
    (tmp_path / "test_2d.jsonl").write_text(json.dumps({
        "idx": 0, "type": "2D", "task": "Count", "image": "img/2D/count/ade20k_10.png",
        "question": "How many pictures are in the image?", "choices": ["0", "3", "2", "1"], "answer": "(C)",
        "source": "ADE20K", **common}) + "\n")
    (tmp_path / "test_3d.jsonl").write_text(json.dumps({
        "idx": 1, "type": "3D", "task": "Depth", "image": "img/3D/depth/omni3d_1.png",
        "question": "Which object is closer to the camera taking this photo, the lamp or the table?",
        "choices": ["lamp", "table"], "answer": "(B)", "source": "Omni3D", **common}) + "\n")
    rows, problems = load_benchmark("cv-bench", tmp_path, tmp_path / "cache")
    rows = by_id(rows)
    assert problems == []
    assert rows["cvbench-2D-0"].truth().letter == "C" and rows["cvbench-2D-0"].question_type == "2D Count"
    assert rows["cvbench-3D-1"].truth().letter == "B" and rows["cvbench-3D-1"].extra["source"] == "Omni3D"
    assert load_frames(rows["cvbench-3D-1"], 8).frames[0].height == 24


def test_blink(tmp_path):
    image = {"bytes": png_bytes(), "path": None}
    write_parquet(tmp_path / "Multi-view_Reasoning" / "val-00000-of-00001.parquet", [
        {"idx": "val_Multi-view_Reasoning_1", "question": "The first image is from the beginning of the video and the "
         "second image is from the end. Is the camera moving left or right when shooting the video?",
         "sub_task": "Multi-view_Reasoning", "image_1": image, "image_2": image, "image_3": None, "image_4": None,
         "choices": ["left", "right"], "answer": "(A)", "prompt": "...", "explanation": ""}])
    write_parquet(tmp_path / "Multi-view_Reasoning" / "test-00000-of-00001.parquet", [
        {"idx": "test_Multi-view_Reasoning_1", "question": "q", "sub_task": "Multi-view_Reasoning", "image_1": image,
         "image_2": None, "image_3": None, "image_4": None, "choices": ["left", "right"], "answer": "hidden",
         "prompt": "...", "explanation": ""}])
    [row], problems = load_benchmark("blink", tmp_path, tmp_path / "cache")
    assert problems == [] and row.id == "val_Multi-view_Reasoning_1" and row.truth().letter == "A"
    assert len(load_frames(row, 8).frames) == 2
    rows, problems = load_benchmark("blink", tmp_path, tmp_path / "cache", split="test")
    assert rows == [] and "not one of the option labels" in problems[0].reason  # test answers are hidden


def test_unknown_benchmark_and_missing_copy(tmp_path):
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("nope", tmp_path, tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_benchmark("cv-bench", tmp_path / "absent", tmp_path)
    with pytest.raises(FileNotFoundError, match="holds none of"):
        load_benchmark("cv-bench", tmp_path, tmp_path)
