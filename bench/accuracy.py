"""Accuracy of tools.Reconstruct (sensor backend) + tools.SAM3 (classical segmenter) on generated scenes.

Each scene (spatialclaw_ros.scenes, objects 0.5-5 m from the camera, a robot turning left or right) is
rendered clean and with depth noise (Gaussian 1 % of range, 5 % dropouts). In every frame each object
whose ground-truth mask has at least MIN_AREA_PX pixels is segmented from a BOX prompt (its true mask's
bounding box); its 3D points (PerFrameMask.get_masked_points) are pooled over the frames. Measured, all
through the agent's tools:
- closest: tools.Geometry.closest_point_distance (default, robust) between every pair's pooled points,
  against the closest distance between the surfaces the frames really show (true masks, noise-free
  depth). For information: the same with robust=False ("closest min"), and the default against the
  exact mesh distance ("vs mesh"; the gap to "closest" is the sides no frame shows);
- centroid: PerFrameMask.get_centroid_3d (median of the visible surface) per object and frame, against
  the median of the true visible surface;
- masks: the IoU of each box prompt's mask with the true mask (for information);
- directions: left/right and front/behind of each pair in base_link at the last frame, from the centres
  of tools.Geometry.oriented_box of the pooled points, against the answer from the true object centres,
  in clear cases only (azimuth at least 10 deg outside tools.Geometry's 10 deg dead bands);
- turns: the sign of tools.Geometry.camera_motion between the first and last frames;
- counts: tools.Geometry.count_instances over every per-frame detection (with its label and the reconstruction),
  against the number of objects.
Targets: closest median <= 3 cm, centroid median <= 5 cm, every direction, turn and count right; with
noise the two medians at most 2x those targets.

Real data: the RGB-D frames in tests/data/rgbd (TUM RGB-D, see its README) with hand-drawn masks of their
objects; each object is segmented from a BOX prompt (the annotated mask's tight bounding box, no margin)
and its IoU with the annotation printed. Target: IoU >= REAL_IOU_TARGET for every object.

Exits 1 when a target is missed.

Usage (repo root, venv active): python bench/accuracy.py [--scenes 20] [--frames 8] [--width 320 --height 240]
[--real-only] [--overlays DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np

from scipy.spatial import cKDTree

from spatialclaw_ros.frames import Frame, FrameSet
from spatialclaw_ros.perception.backends import make_reconstruction_backend
from spatialclaw_ros.scenes.generator import generate_scene
from spatialclaw_ros.scenes.measure import compute_ground_truth
from spatialclaw_ros.scenes.render import DepthNoise, SceneRenderer, frame_set
from spatialclaw_ros.tools import build_toolbox

CLOSEST_TARGET_M = 0.03
CENTROID_TARGET_M = 0.05
NOISE_FACTOR = 2.0
MIN_AREA_PX = 200
DISTANCE_RANGE_M = (0.5, 5.0)
CLEAR_MARGIN_DEG = 10.0  # beyond tools.Geometry's 10 degree dead band
DEAD_BAND_DEG = 10.0
REAL_DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "rgbd"
REAL_IOU_TARGET = 0.7


@dataclass
class Tally:
    """Right answers out of the answers checked."""

    right: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.right += bool(ok)
        self.total += 1

    @property
    def all_right(self) -> bool:
        return self.right == self.total

    def __str__(self) -> str:
        return f"{self.right}/{self.total}"


@dataclass
class Condition:
    """Errors and tallies of one condition (clean or noisy depth) over all scenes."""

    name: str
    closest_errors: list[float] = field(default_factory=list)  # tool default (robust) vs the truly visible surfaces
    closest_exact_errors: list[float] = field(default_factory=list)  # robust=False (minimum) vs the visible surfaces
    closest_mesh_errors: list[float] = field(default_factory=list)  # tool default vs the exact mesh distance
    centroid_errors: list[float] = field(default_factory=list)
    mask_ious: list[float] = field(default_factory=list)  # each box prompt's mask vs the true mask
    directions: Tally = field(default_factory=Tally)
    turns: Tally = field(default_factory=Tally)
    counts: Tally = field(default_factory=Tally)
    seconds: float = 0.0

    @staticmethod
    def _stats(errors: list[float]) -> tuple[float, float]:
        return float(np.median(errors)), float(np.percentile(errors, 90))

    @property
    def closest(self) -> tuple[float, float]:
        return self._stats(self.closest_errors)

    @property
    def closest_exact(self) -> tuple[float, float]:
        return self._stats(self.closest_exact_errors)

    @property
    def closest_mesh(self) -> tuple[float, float]:
        return self._stats(self.closest_mesh_errors)

    @property
    def centroid(self) -> tuple[float, float]:
        return self._stats(self.centroid_errors)

    @property
    def mask_iou(self) -> tuple[float, float]:
        """(median, minimum) IoU of the box prompts' masks with the true masks."""
        return float(np.median(self.mask_ious)), float(np.min(self.mask_ious))


@dataclass
class AccuracyReport:
    """Both conditions, the scenes they ran on, and the targets they are held to."""

    scenes: list[int]
    clean: Condition
    noisy: Condition

    def failures(self) -> list[str]:
        """One line per missed target (empty when all are met)."""
        missed = []
        for condition, factor in ((self.clean, 1.0), (self.noisy, NOISE_FACTOR)):
            for what, (median, _), target in (("closest-point", condition.closest, CLOSEST_TARGET_M),
                                              ("centroid", condition.centroid, CENTROID_TARGET_M)):
                if median > factor * target:
                    missed.append(f"{condition.name}: {what} median {100 * median:.1f} cm > {100 * factor * target:.1f} cm")
            for what in ("directions", "turns", "counts"):
                tally = getattr(condition, what)
                if not tally.all_right:
                    missed.append(f"{condition.name}: {what} {tally} right")
        return missed

    def table(self) -> str:
        rows = [f"{len(self.scenes)} scenes (seeds {self.scenes[0]}-{self.scenes[-1]}), box prompts from true masks; "
                "errors in cm as median / p90",
                f"{'condition':<10} {'pairs':>5} {'closest':>13} {'views':>6} {'centroid':>13} {'directions':>10} "
                f"{'turns':>6} {'counts':>7} | {'closest min':>13} {'vs mesh':>13} {'mask IoU':>13} {'s/scene':>8}"]
        for c in (self.clean, self.noisy):
            cells = [f"{100 * m:5.1f} / {100 * p:<5.1f}" for m, p in (c.closest, c.centroid, c.closest_exact, c.closest_mesh)]
            iou = "{:.3f} / {:.3f}".format(*c.mask_iou)
            rows.append(f"{c.name:<10} {len(c.closest_errors):>5} {cells[0]:>13} {len(c.centroid_errors):>6} {cells[1]:>13} "
                        f"{str(c.directions):>10} {str(c.turns):>6} {str(c.counts):>7} | {cells[2]:>13} {cells[3]:>13} "
                        f"{iou:>13} {c.seconds / len(self.scenes):>8.1f}")
        rows.append(f"{'targets':<10} {'':>5} {f'<= {100 * CLOSEST_TARGET_M:.0f}':>13} {'':>6} "
                    f"{f'<= {100 * CENTROID_TARGET_M:.0f}':>13} {'all':>10} {'all':>6} {'all':>7} | (noisy: medians <= "
                    f"{NOISE_FACTOR:g}x the targets; the last columns are for information, mask IoU as median / min)")
        return "\n".join(rows)


def mask_iou(mask: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two (H, W) bool masks."""
    return float(np.count_nonzero(mask & truth) / np.count_nonzero(mask | truth))


def _clear(azimuth: float, centre: float) -> bool:
    """Whether an azimuth is at least CLEAR_MARGIN_DEG outside the dead band around +-``centre`` degrees."""
    return abs(abs(azimuth) - centre) >= DEAD_BAND_DEG + CLEAR_MARGIN_DEG


def evaluate_scene(seed: int, noise: DepthNoise | None, condition: Condition, *, frames: int, width: int,
                   height: int) -> None:
    """Add one scene's errors and answers to ``condition``."""
    started = time.perf_counter()
    scene = generate_scene(seed, n_frames=frames, width=width, height=height, distance_range=DISTANCE_RANGE_M)
    truth = compute_ground_truth(scene)
    renderer = SceneRenderer(scene)
    clean = [renderer.render_frame(i) for i in range(scene.n_frames)]
    rendered = clean if noise is None else [renderer.render_frame(i, noise) for i in range(scene.n_frames)]
    frame_set_ = frame_set(scene, rendered)
    tools = build_toolbox(frame_set_, None)
    indices = [f.index for f in frame_set_.frames]
    recon = tools.Reconstruct.Reconstruct(indices)
    true_recon = make_reconstruction_backend("sensor", host=None, world_frame=scene.world_frame).reconstruct(
        [r.frame for r in clean])

    pooled: dict[int, list[np.ndarray]] = {}
    truly_visible: dict[int, list[np.ndarray]] = {}
    detections: dict[int, list[np.ndarray]] = {}
    for r, true_view in zip(rendered, clean):
        index = r.frame.index
        for obj in scene.objects:
            true_mask = true_view.instance == obj.instance_id
            if true_mask.sum() < MIN_AREA_PX:
                continue
            rows, cols = np.nonzero(true_mask)
            box = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
            try:
                seg = tools.SAM3.segment_image_by_box(index, box, label=obj.label)
            except RuntimeError:  # "produced no usable mask": a miss
                condition.mask_ious.append(0.0)
                condition.centroid_errors.append(float("inf"))
                continue
            condition.mask_ious.append(mask_iou(seg.get_mask(index), true_mask))
            true_points = true_recon.points[index][true_mask]
            truly_visible.setdefault(obj.instance_id, []).append(true_points)
            true_centroid = np.median(true_points, axis=0)
            try:
                centroid = seg.get_centroid_3d(recon, index)
            except ValueError:
                condition.centroid_errors.append(float("inf"))
                continue
            condition.centroid_errors.append(float(np.linalg.norm(centroid - true_centroid)))
            points = seg.get_masked_points(recon, index)
            pooled.setdefault(obj.instance_id, []).append(points)

    geometry = tools.Geometry
    points = {i: np.concatenate(sets) for i, sets in pooled.items()}
    visible = {i: np.concatenate(sets) for i, sets in truly_visible.items()}
    for a, b in combinations(sorted(points), 2):
        measured = geometry.closest_point_distance(points[a], points[b]).value_m
        exact = geometry.closest_point_distance(points[a], points[b], robust=False).value_m
        seen = float(cKDTree(visible[b]).query(visible[a])[0].min())
        condition.closest_errors.append(abs(measured - seen))
        condition.closest_exact_errors.append(abs(exact - seen))
        condition.closest_mesh_errors.append(abs(measured - truth.pair(a, b).closest))
        expected = geometry.relative_direction(truth.object(a).centre, truth.object(b).centre, "base_link", indices[-1])
        found = geometry.relative_direction(geometry.oriented_box(points[a]).center,
                                            geometry.oriented_box(points[b]).center, "base_link", indices[-1])
        if _clear(expected.azimuth_deg, 0.0) and _clear(expected.azimuth_deg, 180.0):
            condition.directions.add(found.left_right == expected.left_right)
        if _clear(expected.azimuth_deg, 90.0):
            condition.directions.add(found.front_behind == expected.front_behind)

    turned = scene.path[-1].yaw - scene.path[0].yaw
    condition.turns.add(geometry.camera_motion(indices[0], indices[-1]).turn == ("left" if turned > 0 else "right"))
    detections = [p for sets in pooled.values() for p in sets]
    labels = [truth.object(i).label for i, sets in pooled.items() for _ in sets]
    counted = geometry.count_instances(detections, labels=labels, reconstruction=recon)
    condition.counts.add(counted.count == len(points))
    condition.seconds += time.perf_counter() - started


def run(seeds: list[int], *, frames: int = 8, width: int = 320, height: int = 240) -> AccuracyReport:
    """Evaluate every seed's scene clean and with depth noise."""
    report = AccuracyReport(seeds, Condition("clean"), Condition("noisy"))
    for seed in seeds:
        evaluate_scene(seed, None, report.clean, frames=frames, width=width, height=height)
        evaluate_scene(seed, DepthNoise(relative_sigma=0.01, dropout=0.05, seed=seed), report.noisy,
                       frames=frames, width=width, height=height)
    return report


@dataclass
class AnnotatedObject:
    """One hand-annotated object in the real frames (tests/data/rgbd/annotations.json)."""

    frame: str  # the frame's folder
    label: str
    box: list[int]  # the box prompt: the annotated mask's tight bounding box [x1, y1, x2, y2), no margin
    tags: list[str]  # e.g. dark_on_dark, touching, occluded, flat, transparent
    truth: np.ndarray  # (H, W) bool: the annotated polygon, rasterised


@dataclass
class RealResult:
    """An annotated object and the mask tools.SAM3.segment_image_by_box gave for its box."""

    object: AnnotatedObject
    mask: np.ndarray

    @property
    def iou(self) -> float:
        return mask_iou(self.mask, self.object.truth)


def real_frames(data: Path = REAL_DATA) -> FrameSet:
    """The real RGB-D frames, one per folder named in cameras.json (in its order), with their intrinsics,
    depth scale and gravity-aligned camera pose; Frame.camera is the folder's name."""
    frames = []
    for index, (name, camera) in enumerate(json.loads((data / "cameras.json").read_text()).items()):
        bgr = cv2.imread(str(data / name / "rgb.png"), cv2.IMREAD_COLOR)
        raw = cv2.imread(str(data / name / "depth.png"), cv2.IMREAD_UNCHANGED)
        depth = raw.astype(np.float32) / camera["depth_scale"]
        frames.append(Frame(index=index, rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), camera=name, K=camera["K"],
                            depth=depth, T_world_camera=camera["T_world_camera"]))
    return FrameSet(frames, world_frame="map")


def annotated_objects(frames: FrameSet, data: Path = REAL_DATA) -> list[AnnotatedObject]:
    """The annotations, each polygon rasterised (cv2.fillPoly, vertices at pixel centres) at its frame's size."""
    shapes = {f.camera: (f.height, f.width) for f in frames.frames}
    objects = []
    for entry in json.loads((data / "annotations.json").read_text())["objects"]:
        truth = np.zeros(shapes[entry["frame"]], dtype=np.uint8)
        cv2.fillPoly(truth, [np.array(entry["polygon"], dtype=np.int32)], 1)
        objects.append(AnnotatedObject(entry["frame"], entry["label"], entry["box"], entry["tags"], truth.astype(bool)))
    return objects


def run_real(data: Path = REAL_DATA) -> list[RealResult]:
    """Segment every annotated object from its box prompt through tools.SAM3 (sensor + classical)."""
    frames = real_frames(data)
    index = {f.camera: f.index for f in frames.frames}
    tools = build_toolbox(frames, None)
    results = []
    for obj in annotated_objects(frames, data):
        seg = tools.SAM3.segment_image_by_box(index[obj.frame], obj.box, label=obj.label)
        results.append(RealResult(obj, seg.get_mask(index[obj.frame], obj.label)))
    return results


def real_table(results: list[RealResult]) -> str:
    """Per-object IoU with the annotation, then min / median and the target."""
    rows = ["real RGB-D frames (tests/data/rgbd), box prompts = the annotated masks' tight boxes",
            f"{'frame':<9} {'object':<15} {'tags':<28} {'box px':>7} {'IoU':>6}"]
    for r in results:
        x1, y1, x2, y2 = r.object.box
        rows.append(f"{r.object.frame:<9} {r.object.label:<15} {','.join(r.object.tags):<28} "
                    f"{(x2 - x1) * (y2 - y1):>7} {r.iou:>6.3f}")
    ious = [r.iou for r in results]
    rows.append(f"{len(results)} objects: IoU min {min(ious):.3f}, median {np.median(ious):.3f} "
                f"(target >= {REAL_IOU_TARGET} for every object)")
    return "\n".join(rows)


def real_failures(results: list[RealResult]) -> list[str]:
    """One line per object under REAL_IOU_TARGET."""
    return [f"real: {r.object.frame}/{r.object.label} IoU {r.iou:.3f} < {REAL_IOU_TARGET}"
            for r in results if r.iou < REAL_IOU_TARGET]


def write_overlays(results: list[RealResult], frames: FrameSet, directory: Path) -> None:
    """One PNG per object for checking by eye: the annotation's outline (green), the mask (red tint) and the
    box prompt (cyan), cropped around the box and enlarged 3x."""
    directory.mkdir(parents=True, exist_ok=True)
    images = {f.camera: cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR) for f in frames.frames}
    for r in results:
        image = images[r.object.frame].copy()
        image[r.mask] = (0.5 * image[r.mask] + (0, 0, 127)).astype(np.uint8)
        outline = cv2.findContours(r.object.truth.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[0]
        cv2.drawContours(image, outline, -1, (0, 255, 0), 1)
        x1, y1, x2, y2 = r.object.box
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), (255, 255, 0), 1)
        pad = 10
        crop = image[max(0, y1 - pad):y2 + pad, max(0, x1 - pad):x2 + pad]
        cv2.imwrite(str(directory / f"{r.object.frame}_{r.object.label}.png"),
                    cv2.resize(crop, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=20, help="number of scenes (seeds 0..N-1 after --first)")
    parser.add_argument("--first", type=int, default=0, help="first scene seed")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--real-only", action="store_true", help="only the real RGB-D frames (a few seconds)")
    parser.add_argument("--overlays", type=Path, help="write an overlay PNG per real object into this folder")
    args = parser.parse_args()
    failures = []
    if not args.real_only:
        report = run(list(range(args.first, args.first + args.scenes)), frames=args.frames, width=args.width,
                     height=args.height)
        print(report.table())
        failures += report.failures()
    results = run_real()
    print(real_table(results))
    failures += real_failures(results)
    if args.overlays:
        write_overlays(results, real_frames(), args.overlays)
    for line in failures:
        print(f"MISSED {line}")
    print("all targets met" if not failures else f"{len(failures)} target(s) missed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
