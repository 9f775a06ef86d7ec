"""Ground truth of a scene (objects, surface samples, pairwise distances) and its JSON form, for tests to check answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .model import find_object


@dataclass(frozen=True, eq=False)
class ObjectTruth:
    """Where an object is: bounding-box centre (world), extents in its own frame, heading, surface samples (world)."""

    label: str
    instance_id: int
    centre: np.ndarray  # (3,)
    size: np.ndarray  # (3,)
    yaw: float
    colour: tuple[int, int, int]
    points: np.ndarray  # (N, 3)


@dataclass(frozen=True, eq=False)
class PairDistance:
    """Distances between two objects: closest surface points (0 if they touch) and bounding-box centres."""

    a: int  # instance ids
    b: int
    closest: float
    point_a: np.ndarray  # (3,) on a's surface, where ``closest`` is attained
    point_b: np.ndarray  # (3,) on b's surface
    centre_distance: float

    def swapped(self) -> "PairDistance":
        """The same distances seen from ``b``."""
        return replace(self, a=self.b, b=self.a, point_a=self.point_b, point_b=self.point_a)


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Everything a test needs to judge an answer about one scene."""

    scene: str
    world_frame: str
    objects: tuple[ObjectTruth, ...]
    pairs: tuple[PairDistance, ...]
    method: str  # how ``PairDistance.closest`` was computed

    def object(self, key: str | int) -> ObjectTruth:
        """The object with this label (must be unique) or instance id."""
        return find_object(self.objects, key, "the ground truth")

    def pair(self, first: str | int, second: str | int) -> PairDistance:
        """Distances between two objects (labels or instance ids), with ``a`` the first one."""
        a, b = self.object(first).instance_id, self.object(second).instance_id
        for pair in self.pairs:
            if (pair.a, pair.b) == (a, b):
                return pair
            if (pair.a, pair.b) == (b, a):
                return pair.swapped()
        raise KeyError(f"no distance between instances {a} and {b}")

    def to_dict(self) -> dict:
        """JSON-safe form; samples are rounded to 0.1 mm to keep the file small."""
        return {
            "scene": self.scene,
            "world_frame": self.world_frame,
            "method": self.method,
            "objects": [
                {"label": o.label, "instance_id": o.instance_id, "centre": o.centre.tolist(), "size": o.size.tolist(),
                 "yaw": o.yaw, "colour": list(o.colour), "points": np.round(o.points, 4).tolist()}
                for o in self.objects
            ],
            "pairs": [
                {"a": p.a, "b": p.b, "closest": p.closest, "point_a": p.point_a.tolist(), "point_b": p.point_b.tolist(),
                 "centre_distance": p.centre_distance}
                for p in self.pairs
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "GroundTruth":
        """Inverse of ``to_dict``."""
        objects = tuple(
            ObjectTruth(label=o["label"], instance_id=o["instance_id"], centre=np.array(o["centre"]), size=np.array(o["size"]),
                        yaw=o["yaw"], colour=tuple(o["colour"]), points=np.array(o["points"]).reshape(-1, 3))
            for o in data["objects"]
        )
        pairs = tuple(
            PairDistance(a=p["a"], b=p["b"], closest=p["closest"], point_a=np.array(p["point_a"]), point_b=np.array(p["point_b"]),
                         centre_distance=p["centre_distance"])
            for p in data["pairs"]
        )
        return cls(scene=data["scene"], world_frame=data["world_frame"], objects=objects, pairs=pairs, method=data["method"])

    def save(self, path: Path) -> None:
        """Write the JSON form to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: Path) -> "GroundTruth":
        """Read what ``save`` wrote."""
        return cls.from_dict(json.loads(Path(path).read_text()))
