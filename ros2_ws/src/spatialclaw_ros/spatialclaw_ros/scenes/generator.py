"""Random scenes (deterministic per seed), the fixed ``living_room`` scene, and a CLI that renders them to disk.

CLI: ``python -m spatialclaw_ros.scenes.generator --seed 3 --out DIR [--bag] [--frames N]`` writes the
frames (``FrameSet.save`` in DIR/frames), instance images and ground truth, optionally a rosbag2 in DIR/bag.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import furniture
from .bag import ground_truth_path, write_bag
from .measure import compute_ground_truth
from .model import BasePose, CameraMount, Intrinsics, Part, Scene, SceneObject, Slab
from .render import DepthNoise, frame_set, render_scene
from .truth import GroundTruth

Colour = tuple[int, int, int]

#: label -> (builder of its parts from a random generator, base colour)
CATALOGUE: dict[str, tuple[Callable[[np.random.Generator], tuple[Part, ...]], Colour]] = {
    "table": (lambda r: furniture.table(length=r.uniform(0.9, 1.6), width=r.uniform(0.6, 0.9), height=r.uniform(0.7, 0.78)),
              (150, 100, 60)),
    "chair": (lambda r: furniture.chair(depth=r.uniform(0.42, 0.5), width=r.uniform(0.42, 0.5),
                                        seat_height=r.uniform(0.42, 0.48), height=r.uniform(0.8, 0.95)),
              (60, 90, 160)),
    "cabinet": (lambda r: furniture.block(length=r.uniform(0.5, 1.0), width=r.uniform(0.4, 0.6), height=r.uniform(0.8, 1.8)),
                (215, 205, 170)),
    "trash can": (lambda r: furniture.trash_can(radius=r.uniform(0.15, 0.25), height=r.uniform(0.4, 0.7)),
                  (90, 95, 100)),
    "sofa": (lambda r: furniture.sofa(depth=r.uniform(0.8, 1.0), width=r.uniform(1.5, 2.2), height=r.uniform(0.75, 0.9)),
             (130, 60, 65)),
    "box": (lambda r: furniture.block(length=r.uniform(0.3, 0.6), width=r.uniform(0.3, 0.6), height=r.uniform(0.25, 0.5)),
            (185, 145, 95)),
    "potted plant": (lambda r: furniture.potted_plant(pot_radius=r.uniform(0.12, 0.2), pot_height=r.uniform(0.25, 0.4),
                                                      crown_radius=r.uniform(0.25, 0.4)),
                     (60, 140, 60)),
}

OBJECT_CLEARANCE = 0.1  # metres between footprint circles of two objects
PATH_CLEARANCE = 0.4  # metres between the robot's path and an object's footprint circle
WALL_HEIGHT, WALL_THICKNESS = 2.6, 0.1
PLACEMENT_TRIES = 200  # positions tried per object
LAYOUT_TRIES = 20  # fresh draws of the objects before giving up


def generate_scene(seed: int, *, n_objects: int | None = None, n_frames: int = 8, width: int = 320, height: int = 240,
                   rate: float = 2.0, distance_range: tuple[float, float] = (1.0, 4.5)) -> Scene:
    """A random room: ``n_objects`` (default 2-6) distinct labelled objects, not overlapping, whose centres are
    ``distance_range`` metres from the first camera position and within its field of view, seen by a robot that
    drives forward while turning left or right over ``n_frames`` frames at ``rate`` Hz."""
    if n_objects is not None and not 1 <= n_objects <= len(CATALOGUE):
        raise ValueError(f"n_objects must be 1-{len(CATALOGUE)} (the catalogue has {sorted(CATALOGUE)}), got {n_objects}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    rng = np.random.default_rng(seed)
    count = int(rng.integers(2, 7)) if n_objects is None else n_objects
    intrinsics = Intrinsics.from_fov(width, height, hfov_deg=70.0)
    mount = CameraMount()
    path = _drive(rng, n_frames, rate)
    camera = path[0].T_world_base @ mount.T_base_optical
    for _ in range(LAYOUT_TRIES):
        objects = _layout(rng, count, path, camera[:2, 3], path[0].yaw, intrinsics.hfov, distance_range)
        if objects is not None:
            return Scene(name=f"random-{seed}", objects=objects, slabs=_room(rng, objects, path), intrinsics=intrinsics,
                         path=path, mount=mount, rate=rate)
    raise RuntimeError(f"seed {seed}: found no layout of {count} objects {distance_range} m from the camera "
                       f"in {LAYOUT_TRIES} tries")


def _drive(rng: np.random.Generator, n_frames: int, rate: float) -> tuple[BasePose, ...]:
    """A path that goes forward at a steady speed while turning steadily left or right."""
    x, y = rng.uniform(-1.0, 1.0, size=2)
    yaw = rng.uniform(-math.pi, math.pi)
    speed = rng.uniform(0.1, 0.25)
    turn = rng.choice([-1.0, 1.0]) * math.radians(rng.uniform(15.0, 45.0))
    step = turn / max(n_frames - 1, 1)
    poses = [BasePose(float(x), float(y), float(yaw))]
    for _ in range(n_frames - 1):
        heading = yaw + step / 2
        x, y, yaw = x + speed / rate * math.cos(heading), y + speed / rate * math.sin(heading), yaw + step
        poses.append(BasePose(float(x), float(y), float(yaw)))
    return tuple(poses)


def _layout(rng: np.random.Generator, count: int, path: tuple[BasePose, ...], camera_xy: np.ndarray, camera_yaw: float,
            hfov: float, distance_range: tuple[float, float]) -> tuple[SceneObject, ...] | None:
    """``count`` distinct objects in view of the first camera, clear of the robot's path and of each other, or None.

    Largest first; clearances use each object's footprint circle (radius: half its bounding box's diagonal)."""
    templates = []
    for instance_id, label in enumerate(rng.choice(sorted(CATALOGUE), size=count, replace=False), start=1):
        build, base_colour = CATALOGUE[str(label)]
        colour = tuple(int(c) for c in np.clip(np.array(base_colour) + rng.integers(-25, 26, size=3), 0, 255))
        yaw = float(rng.uniform(-math.pi, math.pi))
        templates.append(SceneObject(str(label), instance_id, (0.0, 0.0, 0.0), yaw, colour, build(rng)))
    robot = np.array([[p.x, p.y] for p in path])
    placed: list[SceneObject] = []
    for template in sorted(templates, key=_footprint_radius, reverse=True):
        radius = _footprint_radius(template)
        for _ in range(PLACEMENT_TRIES):
            bearing = camera_yaw + rng.uniform(-0.45, 0.45) * hfov
            xy = camera_xy + rng.uniform(*distance_range) * np.array([math.cos(bearing), math.sin(bearing)])
            clear_of_path = np.linalg.norm(robot - xy, axis=1).min() >= radius + PATH_CLEARANCE
            clear_of_objects = all(np.hypot(*(xy - o.centre[:2])) >= radius + _footprint_radius(o) + OBJECT_CLEARANCE
                                   for o in placed)
            if clear_of_path and clear_of_objects:
                placed.append(replace(template, centre=(float(xy[0]), float(xy[1]), float(template.size[2] / 2))))
                break
        else:
            return None
    return tuple(sorted(placed, key=lambda o: o.instance_id))


def _footprint_radius(obj: SceneObject) -> float:
    return float(np.hypot(*obj.size[:2]) / 2)


def _room(rng: np.random.Generator, objects: tuple[SceneObject, ...], path: tuple[BasePose, ...]) -> tuple[Slab, ...]:
    """A checkered floor and four walls around everything, with a random margin on each side."""
    points = np.concatenate([o.corners()[:, :2] for o in objects] + [np.array([[p.x, p.y] for p in path])])
    low = points.min(axis=0) - rng.uniform(0.6, 2.0, size=2)
    high = points.max(axis=0) + rng.uniform(0.6, 2.0, size=2)
    floor_colour = tuple(int(c) for c in rng.integers(120, 200, size=3))
    wall_colour = tuple(int(c) for c in rng.integers(170, 240, size=3))
    return room_slabs(low, high, floor_colour, wall_colour, tile=float(rng.uniform(0.4, 0.8)))


def room_slabs(low, high, floor_colour: Colour, wall_colour: Colour, tile: float) -> tuple[Slab, ...]:
    """Floor (top at z = 0) and four walls enclosing the rectangle ``low``-``high`` (x, y)."""
    (x0, y0), (x1, y1) = low, high
    cx, cy, lx, ly, t = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, WALL_THICKNESS
    z = WALL_HEIGHT / 2
    return (
        Slab("floor", (cx, cy, -t / 2), (lx + 2 * t, ly + 2 * t, t), floor_colour, tile=tile),
        Slab("wall +x", (x1 + t / 2, cy, z), (t, ly, WALL_HEIGHT), wall_colour),
        Slab("wall -x", (x0 - t / 2, cy, z), (t, ly, WALL_HEIGHT), wall_colour),
        Slab("wall +y", (cx, y1 + t / 2, z), (lx + 2 * t, t, WALL_HEIGHT), wall_colour),
        Slab("wall -y", (cx, y0 - t / 2, z), (lx + 2 * t, t, WALL_HEIGHT), wall_colour),
    )


def living_room(*, n_frames: int = 10, width: int = 320, height: int = 240, rate: float = 2.0) -> Scene:
    """A fixed room: a table with a chair facing it 0.5 m from its edge, a sofa, a trash can and a cabinet;
    the robot starts at the origin looking along +x and drives forward slowly while turning left."""
    objects = (
        SceneObject("table", 1, (3.0, 0.4, 0.375), 0.0, (150, 100, 60), furniture.table(1.2, 0.8, 0.75)),
        SceneObject("chair", 2, (3.0, -0.75, 0.45), math.pi / 2, (60, 90, 160), furniture.chair(0.5, 0.45, 0.45, 0.9)),
        SceneObject("sofa", 3, (4.3, 1.6, 0.425), -math.pi / 2, (130, 60, 65), furniture.sofa(0.9, 1.8, 0.85)),
        SceneObject("trash can", 4, (2.2, -1.0, 0.3), 0.0, (90, 95, 100), furniture.trash_can(0.18, 0.6)),
        SceneObject("cabinet", 5, (4.6, -1.6, 0.6), math.pi, (215, 205, 170), furniture.block(0.5, 0.8, 1.2)),
    )
    turn = math.radians(12.0) / max(n_frames - 1, 1)
    path = tuple(BasePose(0.05 * i, 0.0, turn * i) for i in range(n_frames))
    slabs = room_slabs((-1.0, -2.5), (5.5, 2.8), floor_colour=(165, 160, 150), wall_colour=(225, 220, 205), tile=0.5)
    return Scene(name="living_room", objects=objects, slabs=slabs, intrinsics=Intrinsics.from_fov(width, height, hfov_deg=70.0),
                 path=path, rate=rate)


def living_room_side_view(*, n_frames: int = 6, width: int = 320, height: int = 240, rate: float = 2.0) -> Scene:
    """The living room seen from beside the chair, so the gap between the chair's seat and the table top's
    lower edge is in view (from living_room's own path that edge is hidden, which alone costs 2 cm)."""
    path = tuple(BasePose(1.6 + 0.08 * i, -1.2, 0.5 + math.radians(2.0) * i) for i in range(n_frames))
    return replace(living_room(n_frames=n_frames, width=width, height=height, rate=rate), path=path)


def describe(scene: Scene, truth: GroundTruth) -> str:
    """A readable summary of a scene's objects and their distances."""
    lines = [f"scene {scene.name}: {scene.n_frames} frames at {scene.rate:g} Hz, "
             f"{scene.intrinsics.width}x{scene.intrinsics.height}, world frame {scene.world_frame}"]
    for o in truth.objects:
        lines.append(f"  [{o.instance_id}] {o.label}: centre ({o.centre[0]:.3f}, {o.centre[1]:.3f}, {o.centre[2]:.3f}) m, "
                     f"size {o.size[0]:.2f} x {o.size[1]:.2f} x {o.size[2]:.2f} m, yaw {math.degrees(o.yaw):.1f} deg")
    for p in truth.pairs:
        lines.append(f"  {truth.object(p.a).label} <-> {truth.object(p.b).label}: closest {p.closest:.3f} m, "
                     f"centres {p.centre_distance:.3f} m")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Render a scene to ``--out``: frames/ (FrameSet), instances.npz, ground_truth.json and, with ``--bag``, bag/."""
    parser = argparse.ArgumentParser(prog="python -m spatialclaw_ros.scenes.generator", description=main.__doc__)
    parser.add_argument("--seed", type=int, default=0, help="random scene seed (ignored with --living-room)")
    parser.add_argument("--living-room", action="store_true", help="the fixed living_room scene instead of a random one")
    parser.add_argument("--out", type=Path, required=True, help="output directory (must not hold a previous bag)")
    parser.add_argument("--frames", type=int, default=8, help="number of frames")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--noise", action="store_true", help="add depth noise (1%% of range) and 5%% dropouts")
    parser.add_argument("--bag", action="store_true", help="also write a rosbag2 (MCAP) with a ground-truth sidecar")
    parser.add_argument("--compressed", action="store_true", help="JPEG images in the bag")
    args = parser.parse_args(argv)

    size = {"n_frames": args.frames, "width": args.width, "height": args.height}
    scene = living_room(**size) if args.living_room else generate_scene(args.seed, **size)
    rendered = render_scene(scene, DepthNoise() if args.noise else None)
    truth = compute_ground_truth(scene)
    args.out.mkdir(parents=True, exist_ok=True)
    frame_set(scene, rendered).save(args.out / "frames")
    np.savez_compressed(args.out / "instances.npz", **{f"instance_{r.frame.index}": r.instance for r in rendered})
    truth.save(args.out / "ground_truth.json")
    print(describe(scene, truth))
    print(f"wrote {args.out / 'frames'}, {args.out / 'instances.npz'}, {args.out / 'ground_truth.json'}")
    if args.bag:
        bag = write_bag(scene, [r.frame for r in rendered], args.out / "bag", camera=scene.mount.name,
                        compressed=args.compressed, truth=truth)
        print(f"wrote {bag} and {ground_truth_path(bag)}")


if __name__ == "__main__":
    main()
