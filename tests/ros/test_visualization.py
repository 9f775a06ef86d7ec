"""Answer visualization specs (pure Python) and their messages built with rosbags' Jazzy classes."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from spatialclaw_ros.agent.result import AgentResult
from spatialclaw_ros.answers import Answer, AnswerKind
from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.kernel.host import HostRequest
from spatialclaw_ros.perception.backends import ReconstructionBackend
from spatialclaw_ros.perception.camera import backproject
from spatialclaw_ros.perception.model_service import SERVICE, reconstruction_handler
from spatialclaw_ros.perception.reconstruction import Reconstruction, ViewGeometry
from spatialclaw_ros.perception.service import PerceptionService
from spatialclaw_ros.ros import publishing
from spatialclaw_ros.tf_buffer import TransformBuffer, transform_matrix
from spatialclaw_ros.config import PerceptionConfig
from spatialclaw_ros.visualization import (ARROW, CUBE, LINE_LIST, OBJECTS, RECONSTRUCTION, SPHERE, TEXT,
                                           ReconstructionRecorder, build_markup, evidence_in, key_points,
                                           reconstruction_cloud, used_reconstruction)

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
K = np.array([[10.0, 0, 1.5], [0, 10.0, 1.5], [0, 0, 1]])
# The camera looks along map +x from 1 m up (optical z forward = map x, optical x right = map -y, optical y down = map -z).
T_MAP_CAMERA = transform_matrix((0, 0, 1.0), (-0.5, 0.5, -0.5, 0.5))
# base_link sits at the map origin turned 90 deg left: base x = map +y, base y = map -x.
T_MAP_BASE = transform_matrix((0, 0, 0), (0, 0, math.sqrt(0.5), math.sqrt(0.5)))


def frames() -> FrameSet:
    """One 4x4 frame seeing a wall 2 m ahead; pixel colours encode (row, column)."""
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0], rgb[..., 1] = np.arange(4)[:, None] * 10, np.arange(4)[None, :] * 10
    return FrameSet([Frame(index=7, rgb=rgb, stamp=5.0, camera="front", frame_id="front_optical", K=K,
                           depth=np.full((4, 4), 2.0, np.float32), T_world_camera=T_MAP_CAMERA)], world_frame="map")


def sensor():
    """The sensor backend's reconstruction of ``frames()``: what its cells would have used."""
    return used_reconstruction(frames(), PerceptionConfig())


def tf() -> TransformBuffer:
    buffer = TransformBuffer()
    buffer.set_transform("map", "base_link", 5.0, T_MAP_BASE, static=True)
    return buffer


def result(value=1.5, unit="m", points=(), low_confidence=False) -> AgentResult:
    kind = AnswerKind.NUMBER if unit else AnswerKind.TEXT
    answer = Answer(kind, f"{value:.2f} {unit}".strip() if unit else "left", value=value if unit else None, unit=unit,
                    points=list(points))
    return AgentResult("answered", answer, low_confidence, 2, "", "", Path("/tmp/session"), 1.0)


def by_kind(markup, kind):
    return [m for m in markup.markers if m.kind == kind]


def test_reconstruction_cloud_back_projects_colours_and_caps():
    points, colours = reconstruction_cloud(sensor(), frames(), np.eye(4), voxel_m=0.0, max_points=100)
    assert points.shape == (16, 3) and points.dtype == np.float32 and colours.dtype == np.uint8
    # pixel (u, v) at 2 m: map x = 2, y = -(u - 1.5) / 10 * 2, z = 1 - (v - 1.5) / 10 * 2
    first = np.flatnonzero((colours[:, 0] == 0) & (colours[:, 1] == 0))[0]
    np.testing.assert_allclose(points[first], [2.0, 0.3, 1.3], atol=1e-6)
    np.testing.assert_allclose(points[:, 0], 2.0, atol=1e-6)
    voxelled, _ = reconstruction_cloud(sensor(), frames(), np.eye(4), voxel_m=0.5, max_points=100)
    assert len(voxelled) == 4  # 0.2 m pixel spacing on a 0.6 m square: 2 x 2 cells of 0.5 m
    capped, _ = reconstruction_cloud(sensor(), frames(), np.eye(4), voxel_m=0.0, max_points=3)
    assert len(capped) == 3
    moved, _ = reconstruction_cloud(sensor(), frames(), np.linalg.inv(T_MAP_BASE), voxel_m=0.0, max_points=100)
    np.testing.assert_allclose(moved[first], [0.3, -2.0, 1.3], atol=1e-6)


def test_distance_answer_shows_both_points_the_segment_and_the_cloud():
    points = [{"label": "chair", "xyz": [3.0, -0.5, 0.45]}, {"label": "table", "xyz": [3.0, 0.0, 0.75]}]
    markup = build_markup(result(0.58, "m", points), frames(), tf(), "map", namespace="answer_1",
                          reconstruction=sensor())
    assert (markup.namespace, markup.frame_id, markup.stamp_s) == ("answer_1", "map", 5.0)
    spheres = by_kind(markup, SPHERE)
    assert [m.position for m in spheres] == [(3.0, -0.5, 0.45), (3.0, 0.0, 0.75)]
    (line,) = by_kind(markup, LINE_LIST)
    assert line.points == ((3.0, -0.5, 0.45), (3.0, 0.0, 0.75))
    texts = [m.text for m in by_kind(markup, TEXT)]
    assert texts == ["chair", "table", f"{math.hypot(0.5, 0.3):.2f} m", "0.58 m"]
    assert len({m.id for m in markup.markers}) == len(markup.markers)
    assert [c.name for c in markup.clouds] == [RECONSTRUCTION]
    assert len(markup.clouds[0].points) == 16  # 0.2 m pixels, 5 cm voxels: one point each


def test_points_go_to_the_target_frame():
    points = [{"label": "chair", "xyz": [3.0, -0.5, 0.45]}, {"label": "door", "xyz": [0.5, 1.0, 0.0], "frame": "base_link"}]
    answer = result(0.58, "m", points)
    groups = evidence_in(answer.answer, frames(), tf(), "base_link")
    # map (3, -0.5): base x = map y = -0.5, base y = -(map x) = -3
    assert key_points(groups)[0][0] == "chair"
    np.testing.assert_allclose(key_points(groups)[0][1], [-0.5, -3.0, 0.45], atol=1e-9)
    np.testing.assert_allclose(key_points(groups)[1][1], [0.5, 1.0, 0.0], atol=1e-9)
    markup = build_markup(answer, frames(), tf(), "base_link", namespace="n", reconstruction=sensor())
    assert markup.frame_id == "base_link"
    assert by_kind(markup, SPHERE)[1].position == pytest.approx((0.5, 1.0, 0.0))
    cloud = markup.clouds[0].points
    np.testing.assert_allclose(cloud[:, 1], -2.0, atol=1e-6)  # the wall 2 m ahead along map x = base_link -y


def test_object_points_become_a_box_and_the_objects_cloud():
    chair = np.array([[1.0, 1.0, 0.0], [1.5, 1.2, 0.9], [1.2, 1.1, 0.4], [1.3, 1.05, 0.2]])
    points = [{"label": "chair", "xyz": chair.tolist()}, {"label": "mug", "xyz": [0.0, 0.0, 1.0]}]
    markup = build_markup(result(3, "", points), frames(), tf(), "map", namespace="n")
    (box,) = by_kind(markup, CUBE)
    assert box.position == pytest.approx((1.25, 1.1, 0.45)) and box.scale == pytest.approx((0.5, 0.2, 0.9))
    assert box.colour[3] < 1.0
    assert [m.text for m in by_kind(markup, TEXT)][:2] == ["chair", "mug"]
    assert not by_kind(markup, LINE_LIST) and not by_kind(markup, ARROW)  # one object and one point: no segment
    objects = next(c for c in markup.clouds if c.name == OBJECTS)
    np.testing.assert_allclose(objects.points, chair)
    assert (objects.colours == objects.colours[0]).all()


def test_a_direction_is_an_arrow_and_no_evidence_anchors_the_text_ahead_of_the_camera():
    points = [{"label": "robot", "xyz": [0, 0, 0]}, {"label": "door", "xyz": [1, 1, 0]}]
    markup = build_markup(result(unit="", points=points), frames(), tf(), "map", namespace="n")
    (arrow,) = by_kind(markup, ARROW)
    assert arrow.points == ((0, 0, 0), (1, 1, 0))
    bare = build_markup(result(2.0, "m", low_confidence=True), frames(), tf(), "map", namespace="n")
    (text,) = by_kind(bare, TEXT)
    assert text.text == "2.00 m (low confidence)"
    assert text.position == pytest.approx((1.0, 0.0, 1.0))  # 1 m ahead of the camera


def test_markup_messages_round_trip_through_cdr():
    points = [{"label": "chair", "xyz": [3.0, -0.5, 0.45]}, {"label": "table", "xyz": [3.0, 0.0, 0.75]}]
    markup = build_markup(result(0.58, "m", points), frames(), tf(), "map", namespace="answer_1",
                          reconstruction=sensor())
    types = publishing.rosbags_types(TYPESTORE)
    array = publishing.marker_array(types, markup, clear=["answer_0"])
    name = "visualization_msgs/msg/MarkerArray"
    back = TYPESTORE.deserialize_cdr(TYPESTORE.serialize_cdr(array, name), name)
    assert [(m.ns, m.action) for m in back.markers[:2]] == [("answer_0", 3), ("answer_1", 3)]
    assert len(back.markers) == 2 + len(markup.markers)
    line = next(m for m in back.markers if m.type == LINE_LIST)
    assert (line.header.frame_id, line.header.stamp.sec, line.action) == ("map", 5, 0)
    assert [(p.x, p.y, p.z) for p in line.points] == [(3.0, -0.5, 0.45), (3.0, 0.0, 0.75)]
    cloud_name = "sensor_msgs/msg/PointCloud2"
    cloud = TYPESTORE.deserialize_cdr(TYPESTORE.serialize_cdr(
        publishing.point_cloud(types, markup.clouds[0], "map", 5.0), cloud_name), cloud_name)
    assert (cloud.width, cloud.point_step, cloud.row_step) == (16, 16, 256)
    x, y, z, packed = struct.unpack_from("<fffI", bytes(cloud.data), 0)
    assert (x, packed >> 16, (packed >> 8) & 255) == (pytest.approx(2.0), 0, 0)
    image = publishing.rgb_image(types, frames().frames[0].rgb, "", 5.0)
    assert (image.encoding, image.step, bytes(image.data)) == ("rgb8", 12, frames().frames[0].rgb.tobytes())


def test_an_answer_bag_holds_what_the_node_would_publish(tmp_path):
    import json

    from rosbags.highlevel import AnyReader

    from spatialclaw_ros.offline import write_answer_bag

    points = [{"label": "chair", "xyz": [3.0, -0.5, 0.45]}, {"label": "table", "xyz": [3.0, 0.0, 0.75]}]
    answered = result(0.58, "m", points)
    path = write_answer_bag(tmp_path / "answer", answered, frames(), "how far?", tf=tf(), target_frame="base_link")
    with AnyReader([path], default_typestore=TYPESTORE) as reader:
        messages = {c.topic: reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages()}
        stamps = {t for _, t, _ in reader.messages()}
    assert set(messages) == {"/spatialclaw/markers", "/spatialclaw/answer", "/spatialclaw/cloud/reconstruction"}
    assert stamps == {5_000_000_000}  # the newest frame's stamp
    record = json.loads(messages["/spatialclaw/answer"].data)
    assert (record["question"], record["answer"], record["value"], record["frame"]) == ("how far?", "0.58 m", 0.58, "base_link")
    assert {m.header.frame_id for m in messages["/spatialclaw/markers"].markers} == {"base_link"}
    assert messages["/spatialclaw/cloud/reconstruction"].width == 16
    failed = AgentResult("failed", None, False, 1, "model_error", "HTTP 500", Path("/tmp/session"), 1.0)
    with pytest.raises(ValueError, match="not answered .model_error: HTTP 500."):
        write_answer_bag(tmp_path / "nothing", failed, frames(), "how far?")


class NearerWall(ReconstructionBackend):
    """A model backend (its interface exactly): it sees the wall 1.5 m ahead instead of the sensor's 2 m, and keeps
    one of its 2x2 pixels unconfident."""

    name = "nearer-wall"
    per_frame = False

    def reconstruct(self, chosen):
        views = []
        for frame in chosen:
            depth = np.full((2, 2), 1.5, np.float32)
            K = frame.K / 2
            K[2, 2] = 1.0
            points = backproject(depth, K, frame.T_world_camera).astype(np.float32)
            confidence = np.array([[1.0, 1.0], [1.0, 0.1]], np.float32)
            views.append(ViewGeometry(frame.index, depth, points, confidence, K, frame.T_world_camera))
        return Reconstruction(views, world_frame=self.world_frame, source=self.name)


class ModelPerception(PerceptionService):
    """The perception service with the model backend above behind its host service."""

    def handlers(self, question_frames):
        return {SERVICE: reconstruction_handler(question_frames, NearerWall(host=None, world_frame="map"))}


def test_the_cloud_is_the_reconstruction_the_cells_were_served():
    recorder = ReconstructionRecorder(ModelPerception(PerceptionConfig(reconstruction="da3")))
    config = PerceptionConfig(reconstruction="da3")
    assert used_reconstruction(frames(), config, recorder.served()) is None  # nothing served: no cloud at all
    handlers = recorder.handlers(frames())
    handlers[SERVICE](HostRequest(SERVICE, {"frame_indices": [7]}))  # what a cell's Reconstruct asks for
    served = used_reconstruction(frames(), config, recorder.served())
    markup = build_markup(result(), frames(), tf(), "map", namespace="n", reconstruction=served)
    cloud = markup.clouds[0]
    assert cloud.name == RECONSTRUCTION and len(cloud.points) == 3  # the unconfident point stays out
    np.testing.assert_allclose(cloud.points[:, 0], 1.5, atol=1e-6)  # the model's wall, not the sensor's at 2 m
    # its pixels coloured by the frame's image at the model's resolution (nearest): rows/columns 0 and 2
    assert sorted(map(tuple, cloud.colours[:, :2].tolist())) == [(0, 0), (0, 20), (20, 0)]
    recorder.handlers(frames())  # the next question starts afresh
    assert recorder.served() is None
