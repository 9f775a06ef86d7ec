"""The compatibility corpus in a real sandboxed kernel, with the real vlm service in front of a grounding model.

Every cell of ``reference_cells.CELLS`` must run: none may fail, with AttributeError, TypeError, NameError or
anything else. ``COVERAGE`` maps every entry point and result member of the reference API table
(``spatialclaw-tool-api.md``) to the text that uses it; each must be used by at least one cell.
"""

from __future__ import annotations

import re

import pytest
from compat_support import GroundingModel, image_set, living_room_video, two_cameras
from reference_cells import CELLS, HELPERS, Cell

from spatialclaw_ros.agent.vlm_service import VlmService
from spatialclaw_ros.cancel import CancelToken
from spatialclaw_ros.config import KernelConfig, ModelConfig
from spatialclaw_ros.kernel.host import ANSWER_SERVICE, HostReply, HostRequest
from spatialclaw_ros.kernel.pool import KernelPool
from spatialclaw_ros.kernel.results import CellStatus
from spatialclaw_ros.llm.client import ChatModel
from spatialclaw_ros.llm.scripted_server import ScriptedModelServer
from spatialclaw_ros.session_log import SessionLog

#: Reference name -> a regular expression for its use in a cell. Sections follow the API table.
COVERAGE: dict[str, str] = {
    # 1 kernel namespace
    "InputImages": r"\bInputImages\b", "InputImages_1": r"\bInputImages_1\b", "InputImages_2": r"\bInputImages_2\b",
    "Metadata": r"\bMetadata\.", "tools": r"\btools\.", "Reconstruct (bare)": r"(?<![.\w])Reconstruct\.Reconstruct\(",
    "SAM3 (bare)": r"(?<![.\w])SAM3\.", "Graph (bare)": r"(?<![.\w])Graph\.", "Time (bare)": r"(?<![.\w])Time\.",
    "Mask (bare)": r"(?<![.\w])Mask\.", "Geometry (bare)": r"(?<![.\w])Geometry\.", "Draw (bare)": r"(?<![.\w])Draw\.",
    "vlm": r"\bvlm\.", "feedback": r"\bfeedback\.", "show": r"(?<![.\w])show\(", "ReturnAnswer": r"\bReturnAnswer\(",
    "np": r"\bnp\.", "math": r"\bmath\.", "collections": r"\bcollections\.", "itertools": r"\bitertools\.",
    "functools": r"\bfunctools\.", "matplotlib": r"\bmatplotlib\.", "plt": r"\bplt\.", "scipy": r"\bscipy\.",
    "ndimage": r"(?<!\.)\bndimage\.", "spatial": r"(?<!\.)\bspatial\.", "signal (scipy.signal)": r"(?<!\.)\bsignal\.",
    "optimize": r"(?<!\.)\boptimize\.",
    "import tools": r"^import tools$", "from tools import SAM3": r"from tools import SAM3",
    "from tools.Reconstruct import Reconstruct": r"from tools\.Reconstruct import Reconstruct",
    "import vlm": r"import vlm\b", "import feedback": r"import feedback\b", "cv2 importable": r"^import cv2$",
    "re, json, PIL imported": r"^import re$",
    # 1.1 FrameImage
    "FrameImage(image_or_path, frame_index, max_edge)": r"FrameType\(.*max_edge=", "FrameImage.frame_index": r"\.frame_index\b",
    "FrameImage.image": r"\.image\b", "FrameImage.is_loaded": r"\.is_loaded\b", "FrameImage.width": r"\.width\b",
    "FrameImage.height": r"\.height\b", "FrameImage.size": r"\.size\b", "FrameImage.convert": r"\.convert\(",
    "FrameImage.resize": r"\.resize\(", "np.array(FrameImage)": r"np\.array\(InputImages\[",
    # 1.2 InputImages
    "InputImages(images, frame_indices)": r"ImagesType\(\[.*frame_indices=", "InputImages[int]": r"InputImages\[-?\d\]",
    "InputImages[slice]": r"InputImages\[\d?:\d?:?\d?\]", "InputImages[list] TypeError": r"InputImages\[\[",
    "InputImages.frame_indices": r"InputImages(_\d)?\.frame_indices",
    # 1.3 Metadata
    "Metadata.is_video": r"Metadata\.is_video", "Metadata.fps": r"Metadata\.fps", "Metadata.total_frames":
        r"Metadata\.total_frames", "Metadata.duration_sec": r"Metadata\.duration_sec", "Metadata.num_images":
        r"Metadata\.num_images", "Metadata.video_source": r"Metadata\.video_source", "Metadata.videos":
        r"Metadata\.videos", "Metadata.num_videos": r"Metadata\.num_videos", "Metadata.reconstruct_max_frames":
        r"Metadata\.reconstruct_max_frames", "Metadata.to_dict()": r"Metadata\.to_dict\(\)",
    # 1.4 VisualFeedback
    "VisualFeedback(image, source, description, frame_index)": r"FeedbackType\(InputImages\[0\]\.image, .*frame_index=",
    "VisualFeedback.image": r"(bev|vis|fb)\.image\b", "VisualFeedback.source": r"\.source\b",
    "VisualFeedback.description": r"\.description\b", "VisualFeedback.frame_index": r"(bev|vis|fb)\.frame_index",
    # 2 GPU tools
    "Reconstruct.is_available": r"Reconstruct\.is_available", "SAM3.is_available": r"SAM3\.is_available",
    # 2.1 Reconstruct and Reconstruction
    "Reconstruct(frames)": r"Reconstruct\.Reconstruct\(InputImages\)", "Reconstruct(frames, frame_indices=)":
        r"Reconstruct\(\[.*frame_indices=", "Reconstruct 64-frame ValueError": r"at most 64 frames",
    "Reconstruct repeated frames": r"Reconstruct\(\[InputImages\[0\], InputImages\[0\]",
    "Reconstruct other types TypeError": r"Reconstruct\('", "Reconstruct single image": r"Reconstruct\(InputImages\[\d\]\)",
    "Reconstruction.frame_indices": r"recon\.frame_indices", "Reconstruction.num_frames": r"\.num_frames\b",
    "len(Reconstruction)": r"len\(recon\)", "Reconstruction.points[fi]": r"recon\.points\[",
    "Reconstruction.points.points": r"\.points\.points\b", "Reconstruction.points.confidence":
        r"\.points\.confidence\b", "Reconstruction.depth[fi]": r"recon\.depth\[", "Reconstruction.depth.depth":
        r"\.depth\.depth\b", "Reconstruction.depth.confidence": r"\.depth\.confidence\b",
    "Reconstruction.intrinsics[fi]": r"recon\.intrinsics\[", "Reconstruction.intrinsics.fx .fy .cx .cy":
        r"intrinsics\.(fx|fy|cx|cy)\b", "Reconstruction.extrinsics[fi]": r"recon\.extrinsics\[",
    "Reconstruction.extrinsics.camera_poses": r"\.camera_poses\b", "Reconstruction.metric_scale": r"\.metric_scale\b",
    "Reconstruction.gravity_direction": r"\.gravity_direction\b", "Reconstruction.get_by_frame_index":
        r"\.get_by_frame_index\(", "Reconstruction.validate_alignment": r"\.validate_alignment\(",
    "render_bev()": r"\.render_bev\(\)", "render_bev(masks=PerFrameMask, labels=)": r"render_bev\(masks=video, labels=",
    "render_bev(masks=(T,N,H,W) array)": r"render_bev\(masks=video\.masks", "render_bev(prompts=)":
        r"render_bev\(prompts=", "render_bev(conf_threshold=)": r"render_bev\(.*conf_threshold=",
    "render_bev(ref_frame=)": r"render_bev\(.*ref_frame=", "render_bev(ego_trajectory=)": r"ego_trajectory=",
    # 2.2 SAM3
    "SAM3.segment_image_by_text": r"segment_image_by_text\(", "segment_image_by_text(label positional)":
        r"segment_image_by_text\(\w+\[\d\], '\w+', '", "segment_image_by_text(confidence_threshold=)":
        r"segment_image_by_text\(.*confidence_threshold=", "SAM3.segment_image_by_points":
        r"segment_image_by_points\(", "SAM3.segment_image_by_box": r"segment_image_by_box\(",
    "SAM3.is_object_exist": r"is_object_exist\(", "is_object_exist exists/counts/summary":
        r"\['exists'\].*\n?.*\['counts'\]", "SAM3.segment_video_by_text": r"segment_video_by_text\(",
    "SAM3.segment_video_by_points(points_per_object=, point_labels_per_object=)":
        r"points_per_object=.*\n?.*point_labels_per_object=", "SAM3.segment_video_by_box": r"segment_video_by_box\(",
    "video prompt_frame_idx=": r"prompt_frame_idx=", "video frame_indices=": r"frame_indices=wanted",
    "video start_frame= / end_frame=": r"start_frame=.*end_frame=", "video video_index=": r"video_index=",
    "video 1000-frame window ValueError": r"at most 1000 frames", "SAM3.segment_image (disabled)":
        r"SAM3\.segment_image\b(?!_)", "SAM3.segment_video (disabled)": r"SAM3\.segment_video\b(?!_)",
    "no usable mask RuntimeError": r"no usable mask",
    # PerFrameMask
    "PerFrameMask.masks": r"\.masks\b", "PerFrameMask.labels": r"\.labels\b", "PerFrameMask.object_ids":
        r"\.object_ids\b", "PerFrameMask.frame_indices": r"seg\.frame_indices|video\.frame_indices",
    "PerFrameMask.num_frames": r"seg\.num_frames|one\.num_frames", "PerFrameMask.num_objects": r"\.num_objects\b",
    "len(PerFrameMask)": r"len\(seg\)", "PerFrameMask[fi]": r"(chair_b|video)\[fi\]", "PerFrameMask.get_mask":
        r"\.get_mask\(", "get_mask(frame=, object=)": r"get_mask\(frame=\w+, object=", "PerFrameMask.get_masked_points":
        r"\.get_masked_points\(", "PerFrameMask.get_centroid_3d": r"\.get_centroid_3d\(",
    "get_centroid_3d(conf_threshold=)": r"get_centroid_3d\(.*conf_threshold=", "PerFrameMask.visualize(frame_idx)":
        r"\.visualize\(\w+\)", "visualize(frame=)": r"visualize\(frame=", "visualize(background=)":
        r"visualize\(.*background=",
    # 2.3 CPU tools
    "Geometry.euclidean_distance": r"euclidean_distance\(", "Geometry.angle_between_vectors":
        r"angle_between_vectors\(", "Geometry.project_point_to_camera": r"project_point_to_camera\(",
    "Geometry.rotation_matrix_from_vectors": r"rotation_matrix_from_vectors\(", "Geometry.transform_points":
        r"transform_points\(", "Geometry.fit_ground_plane_ransac(points, confidence)":
        r"fit_ground_plane_ransac\(recon\.points\[fi\], recon\.points\.confidence", "fit_ground_plane_ransac keywords":
        r"conf_threshold=0\.5,\s*\n?\s*n_iterations=200, inlier_threshold=", "Geometry.normalized_to_pixel":
        r"normalized_to_pixel\(", "normalized_to_pixel str TypeError": r"normalized_to_pixel\('",
    "Mask.centroid": r"Mask\.centroid\(", "Mask.centroids": r"Mask\.centroids\(", "Mask.area": r"Mask\.area\(",
    "Mask.bounding_box": r"Mask\.bounding_box\(", "Mask.iou": r"Mask\.iou\(", "Mask.intersection":
        r"Mask\.intersection\(", "Mask.mask_to_bbox": r"Mask\.mask_to_bbox\(",
    "Time.frame_to_seconds": r"Time\.frame_to_seconds\(", "Time.seconds_to_frame": r"Time\.seconds_to_frame\(",
    "Time.frame_range_to_seconds": r"Time\.frame_range_to_seconds\(", "Time.get_frame_at_time":
        r"Time\.get_frame_at_time\(",
    "Graph.plot(values)": r"Graph\.plot\(\[", "Graph.plot(validity=, y_label=, title=)":
        r"Graph\.plot\(.*validity=.*y_label=.*title=", "Graph.plot(x_label=)": r"x_label=",
    "Draw.draw_bbox(image, bboxes, colors, thickness)": r"draw_bbox\(.*colors=.*thickness=",
    "Draw.draw_line(image, lines, colors, thickness)": r"draw_line\(.*colors=.*thickness=",
    "Draw.draw_point(image, points, colors, radius)": r"draw_point\(.*colors=.*radius=",
    "Draw colors list": r"colors=\['red', \(0, 255, 0\)\]",
    # 3 vlm
    "vlm.locate": r"vlm\.locate\(", "vlm.ask_with_thinking": r"vlm\.ask_with_thinking\(",
    "vlm visual_input PIL": r"vlm\.locate\(InputImages\[0\]\.image", "vlm visual_input uint8 ndarray":
        r"vlm\.locate\(np\.array\(", "vlm visual_input list": r"vlm\.locate\(\[InputImages", "vlm visual_input VisualFeedback":
        r"ask_with_thinking\(\[vis", "vlm visual_input str TypeError": r"'the chair', \[\[InputImages\[0\]\]\]",
    "vlm 8-image limit": r"list\(InputImages\) \* 2", "[VLM Q | locate] / [VLM A | locate] lines": r"Locate the chair\.", "'Not visible' check": r"'Not visible' in answer",
    "parse by split": r"answer\.split\(\)", "parse by regex": r"re\.findall\(", "parse fenced JSON": r"split\('```'\)",
    # 4 show and ReturnAnswer
    "show(*args)": r"show\(InputImages\[0\], InputImages\[1\]", "show(list)": r"show\(InputImages\[:3\]\)",
    "show(label=)": r"show\(.*label=", "show uint8 array": r"show\(np\.zeros", "show TypeError": r"show\(\) got",
    "show(img, 'caption') TypeError": r"\(InputImages\[0\], 'caption'\)", "show() no arguments": r"^show\(\)$",
    "plt.show()": r"plt\.show\(\)", "feedback.show": r"feedback\.show\(", "feedback.log_visual":
        r"feedback\.log_visual\(", "ReturnAnswer(str)": r"ReturnAnswer\('", "ReturnAnswer(int)": r"ReturnAnswer\(\d",
    "ReturnAnswer(bool)": r"ReturnAnswer\(True\)", "ReturnAnswer(np.float64)": r"ReturnAnswer\(np\.float64",
    "ReturnAnswer(np.str_)": r"ReturnAnswer\(np\.str_", "ReturnAnswer(None) TypeError": r"\(None, TypeError\)",
    "ReturnAnswer('') ValueError": r"\('   ', ValueError\)",
    # 5 frame indexing
    "KeyError listing the frames": r"Frame 999 not found", "np.integer index": r"np\.int64\(fi\)",
    "non-int index TypeError": r"recon\.depth\[1\.5\]", "extrinsics columns right/forward":
        r"extrinsics\[\w+\]\[:3, 0\]",
}

SESSIONS = {"living": living_room_video, "cameras": two_cameras, "images": image_set}


class AnswerDesk:
    """The answer host service: accepts every answer and keeps what each cell submitted."""

    def __init__(self) -> None:
        self.answers: list[dict] = []

    def __call__(self, request: HostRequest) -> HostReply:
        self.answers.append(dict(request.payload))
        return HostReply({"accepted": True, "reason": "", "answer": dict(request.payload)})


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, tuple]:
    """Run every session's cells in order; (CellResult, the answer it submitted) per cell name."""
    questions = {name: build() for name, build in SESSIONS.items()}
    results = {}
    with ScriptedModelServer(GroundingModel(list(questions.values()))) as server, \
            KernelPool(KernelConfig(pool_size=1, memory_limit_mb=4096)) as pool:
        model = ChatModel(ModelConfig(base_url=server.url, max_retries=0))
        for name, question in questions.items():
            log = SessionLog(tmp_path_factory.mktemp(name))
            vlm = VlmService(model, log, CancelToken(), image_max_side=1024, on_reply=lambda reply: None)
            desk = AnswerDesk()
            with pool.session(question.frames, {**vlm.handlers(), ANSWER_SERVICE: desk}) as session:
                setup = session.execute(f"TRUTH = {question.truth!r}\n{HELPERS}", timeout_s=60)
                assert setup.status is CellStatus.OK, setup.error
                for step, cell in enumerate(c for c in CELLS if c.session == name):
                    vlm.step = step + 1
                    before = len(desk.answers)
                    result = session.execute(cell.code, timeout_s=120)
                    results[cell.name] = (result, desk.answers[before:])
            log.close()
        model.close()
    return results


@pytest.mark.parametrize("cell", CELLS, ids=lambda cell: f"{cell.session}-{cell.name}")
def test_reference_cell_runs(cell: Cell, outcomes):
    result, answers = outcomes[cell.name]
    expected = CellStatus.ANSWERED if cell.answer is not None else CellStatus.OK
    assert result.status is expected, f"{result.status.value}: {result.error}\n{result.stdout[-2000:]}"
    assert not re.match(r"(AttributeError|TypeError|NameError)\b", result.error), result.error
    output = result.stdout + result.stderr
    for text in cell.output:
        assert text in output, f"{text!r} not in the output:\n{output[-2000:]}"
    if cell.images is not None:
        assert len(result.images) == cell.images, [image.label for image in result.images]
    if cell.answer is not None:
        value = answers[-1]["value"]
        assert isinstance(value, float) if cell.answer == "number" else value == cell.answer, answers


def test_the_corpus_is_large_and_names_are_unique():
    assert len(CELLS) >= 150
    assert len({cell.name for cell in CELLS}) == len(CELLS)


def test_every_reference_name_is_used_by_a_cell():
    used = {name: [cell.name for cell in CELLS if re.search(pattern, cell.code, re.MULTILINE)]
            for name, pattern in COVERAGE.items()}
    unused = [name for name, cells in used.items() if not cells]
    assert not unused, f"reference names no cell uses: {unused}"
