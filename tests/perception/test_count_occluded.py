"""tools.Geometry.count_instances on a rendered scene where a cabinet hides the middle of a sofa.

The detections are what an instance segmenter gives: each connected piece of an object's visible mask in a
frame, with its 3D points from the sensor reconstruction. The sofa shows only its two ends, 1.3 m apart, and
no detection spans both, so point overlap alone counts two sofas; the reconstruction's depth shows that no
view sees into the gap between them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from spatialclaw_ros.perception.backends import make_reconstruction_backend
from spatialclaw_ros.perception.reconstruction import Reconstruction
from spatialclaw_ros.scenes import furniture
from spatialclaw_ros.scenes.generator import room_slabs
from spatialclaw_ros.scenes.model import BasePose, Intrinsics, Scene, SceneObject
from spatialclaw_ros.scenes.render import DepthNoise, frame_set, render_scene
from spatialclaw_ros.tools import ToolContext
from spatialclaw_ros.tools.geometry import Geometry

MIN_PIECE_PX = 30
SOFA, CABINET, BOX_NEAR, BOX_FAR = 1, 2, 3, 4


def occluded_sofa_scene() -> Scene:
    """A 2.4 m sofa 3.5 m ahead behind a 0.6 m wide, 1.2 m tall cabinet, and two boxes 0.2 m apart on the right."""
    objects = (
        SceneObject("sofa", SOFA, (3.5, 0.0, 0.425), math.pi, (130, 60, 65), furniture.sofa(0.9, 2.4, 0.85)),
        SceneObject("cabinet", CABINET, (1.6, 0.0, 0.6), 0.0, (215, 205, 170), furniture.block(0.5, 0.6, 1.2)),
        SceneObject("box", BOX_NEAR, (2.2, -0.75, 0.15), 0.0, (185, 145, 95), furniture.block(0.3, 0.3, 0.3)),
        SceneObject("box", BOX_FAR, (2.2, -1.25, 0.15), 0.0, (185, 145, 95), furniture.block(0.3, 0.3, 0.3)),
    )
    path = tuple(BasePose(0.0, 0.05 * i, math.radians(-2.0 * i)) for i in range(3))
    return Scene(name="occluded-sofa", objects=objects, slabs=room_slabs((-1.0, -3.0), (5.0, 3.0), (165, 160, 150),
                                                                         (225, 220, 205), tile=0.5),
                 intrinsics=Intrinsics.from_fov(320, 240, hfov_deg=70.0), path=path, rate=2.0)


def detect(noise: DepthNoise | None):
    """(geometry, reconstruction, detections as {instance id: [(K, 3) points per visible piece]})."""
    scene = occluded_sofa_scene()
    rendered = render_scene(scene, noise)
    frames = frame_set(scene, rendered)
    recon = make_reconstruction_backend("sensor", host=None, world_frame=scene.world_frame).reconstruct(
        [r.frame for r in rendered])
    detections: dict[int, list[np.ndarray]] = {}
    for r in rendered:
        for obj in scene.objects:
            pieces, count = ndimage.label(r.instance == obj.instance_id)
            for piece in range(1, count + 1):
                mask = pieces == piece
                points = recon.points[r.frame.index][mask]
                points = points[np.isfinite(points).all(axis=1)]
                if mask.sum() >= MIN_PIECE_PX and len(points):
                    detections.setdefault(obj.instance_id, []).append(points)
    return Geometry(ToolContext(frames=frames, host=None)), recon, detections


@pytest.fixture(scope="module", params=[None, DepthNoise(relative_sigma=0.01, dropout=0.05, seed=3)],
                ids=["clean", "noisy"])
def scene(request):
    return detect(request.param)


def test_the_sofa_is_seen_only_in_two_separate_pieces(scene):
    geometry, _, detections = scene
    ends = [np.median(points[:, 1]) for points in detections[SOFA]]
    assert min(ends) < -0.6 and max(ends) > 0.6  # its two ends, right and left of the cabinet
    assert all(np.ptp(points[:, 1]) < 0.7 for points in detections[SOFA])  # none spans the hidden middle
    assert geometry.count_instances(detections[SOFA]).count == 2


def test_a_gap_no_view_sees_into_does_not_split_an_object(scene):
    geometry, recon, detections = scene
    count = geometry.count_instances(detections[SOFA], reconstruction=recon)
    assert count.count == 1 and count.groups == [list(range(len(detections[SOFA])))]


def test_objects_with_a_visible_gap_stay_apart(scene):
    """The floor between the two boxes (20 cm) is in view, so even with the reconstruction they are two."""
    geometry, recon, detections = scene
    boxes = detections[BOX_NEAR] + detections[BOX_FAR]
    count = geometry.count_instances(boxes, reconstruction=recon)
    assert count.count == 2
    assert sorted(count.groups) == [list(range(len(detections[BOX_NEAR]))),
                                    list(range(len(detections[BOX_NEAR]), len(boxes)))]


def test_labels_keep_categories_apart(scene):
    """Mixed categories: the cabinet's gap to the sofa is hidden too, so only labels keep them apart."""
    geometry, recon, detections = scene
    ids = [i for i in sorted(detections) for _ in detections[i]]
    points = [p for i in sorted(detections) for p in detections[i]]
    labels = ["sofa" if i == SOFA else "cabinet" if i == CABINET else "box" for i in ids]
    assert geometry.count_instances(points, labels=labels, reconstruction=recon).count == 4
    with pytest.raises(ValueError, match="labels has 1 entries for"):
        geometry.count_instances(points, labels=["sofa"])
    elsewhere = Reconstruction(list(recon.views.values()), world_frame="odom", source=recon.source)
    with pytest.raises(ValueError, match="the reconstruction is in 'odom', the points in 'map'"):
        geometry.count_instances(points, reconstruction=elsewhere)
