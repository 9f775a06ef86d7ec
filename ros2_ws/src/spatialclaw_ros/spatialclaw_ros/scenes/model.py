"""Scene description: floor and walls, labelled objects made of primitives, the camera and the robot's path.

Conventions: world frame z up (REP 103), metres, radians; the robot body (``base_link``) is x forward,
y left, z up; the camera's optical frame is x right, y down, z forward; ``T_a_b`` maps points from
frame ``b`` into frame ``a``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SHAPES = ("box", "cylinder", "sphere")

#: Rotation from a camera link frame (x forward, y left, z up) to its optical frame (x right, y down, z forward).
R_LINK_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])

Vec3 = tuple[float, float, float]


def rotation_z(yaw: float) -> np.ndarray:
    """3x3 rotation by ``yaw`` about z."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_y(pitch: float) -> np.ndarray:
    """3x3 rotation by ``pitch`` about y (positive tilts the x axis down towards -z)."""
    c, s = math.cos(pitch), math.sin(pitch)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def transform(rotation: np.ndarray, translation) -> np.ndarray:
    """4x4 homogeneous transform from a 3x3 rotation and a translation."""
    T = np.eye(4)
    T[:3, :3] = rotation
    T[:3, 3] = translation
    return T


@dataclass(frozen=True)
class Part:
    """One primitive of an object, axis-aligned in the object's frame; it spans ``offset +- size / 2``.

    A cylinder stands on its axis (z) with diameter ``size[0] == size[1]``; a sphere has equal sizes.
    """

    shape: str
    size: Vec3
    offset: Vec3 = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"part shape must be one of {SHAPES}, got {self.shape!r}")
        if min(self.size) <= 0:
            raise ValueError(f"part sizes must be positive, got {self.size}")
        if self.shape == "cylinder" and not math.isclose(self.size[0], self.size[1]):
            raise ValueError(f"a cylinder needs equal x and y sizes (its diameter), got {self.size}")
        if self.shape == "sphere" and not (math.isclose(self.size[0], self.size[1]) and math.isclose(self.size[0], self.size[2])):
            raise ValueError(f"a sphere needs three equal sizes (its diameter), got {self.size}")


def find_object(objects, key: str | int, owner: str):
    """The one object in ``objects`` whose label or instance id is ``key``; KeyError naming all of ``owner``'s."""
    found = [o for o in objects if key in (o.label, o.instance_id)]
    if len(found) != 1:
        known = ", ".join(f"{o.instance_id}:{o.label}" for o in objects)
        raise KeyError(f"{len(found)} objects match {key!r}; {owner} has {known}")
    return found[0]


@dataclass(frozen=True)
class SceneObject:
    """A labelled object: primitives around its bounding-box centre ``centre`` (world), turned by ``yaw`` about z."""

    label: str
    instance_id: int  # >= 1; 0 is the background in instance images
    centre: Vec3
    yaw: float
    colour: tuple[int, int, int]  # RGB 0-255
    parts: tuple[Part, ...]

    def __post_init__(self) -> None:
        if self.instance_id < 1:
            raise ValueError(f"{self.label}: instance ids start at 1 (0 is the background), got {self.instance_id}")
        if not self.parts:
            raise ValueError(f"{self.label}: an object needs at least one part")
        if any(not 0 <= c <= 255 for c in self.colour):
            raise ValueError(f"{self.label}: colour must be RGB in 0-255, got {self.colour}")
        low, high = self._bounds()
        if not np.allclose((low + high) / 2, 0.0, atol=1e-9):
            middle = (low + high) / 2
            raise ValueError(f"{self.label}: parts must be centred on the object's origin; their box centre is {middle}")

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        offsets = np.array([p.offset for p in self.parts])
        halves = np.array([p.size for p in self.parts]) / 2
        return (offsets - halves).min(axis=0), (offsets + halves).max(axis=0)

    @property
    def size(self) -> np.ndarray:
        """Bounding-box extents (x, y, z) in the object's frame."""
        low, high = self._bounds()
        return high - low

    @property
    def pose(self) -> np.ndarray:
        """``T_world_object`` (4x4)."""
        return transform(rotation_z(self.yaw), self.centre)

    def corners(self) -> np.ndarray:
        """(8, 3) world corners of the bounding box."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
        local = signs * self.size / 2
        return local @ rotation_z(self.yaw).T + np.asarray(self.centre)


@dataclass(frozen=True)
class Slab:
    """An axis-aligned box of the room (floor or wall); it is background in instance images."""

    name: str
    centre: Vec3
    size: Vec3
    colour: tuple[int, int, int]
    tile: float = 0.0  # side of a checkerboard pattern on it, metres; 0 = none


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels; pixel (u, v) has its centre at integer coordinates (ROS/OpenCV)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float = 70.0) -> "Intrinsics":
        """Square pixels, principal point at the image centre, horizontal field of view ``hfov_deg``."""
        f = width / (2 * math.tan(math.radians(hfov_deg) / 2))
        return cls(fx=f, fy=f, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)

    @property
    def K(self) -> np.ndarray:
        """3x3 camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def hfov(self) -> float:
        """Horizontal field of view in radians."""
        return 2 * math.atan(self.width / (2 * self.fx))


@dataclass(frozen=True)
class CameraMount:
    """A camera fixed on the robot: ``base_link -> <name>_link`` (translation, pitch) -> ``<name>_optical_frame``."""

    name: str = "front"
    xyz: Vec3 = (0.2, 0.0, 1.2)
    pitch: float = math.radians(10.0)  # positive looks down

    @property
    def link_frame(self) -> str:
        """TF name of the camera body (x forward, y left, z up)."""
        return f"{self.name}_link"

    @property
    def optical_frame(self) -> str:
        """TF name of the optical frame (x right, y down, z forward); the frame_id of images."""
        return f"{self.name}_optical_frame"

    @property
    def T_base_link(self) -> np.ndarray:
        """Camera body -> base_link: the mount position and pitch."""
        return transform(rotation_y(self.pitch), self.xyz)

    @property
    def T_link_optical(self) -> np.ndarray:
        """Optical frame -> camera body: the fixed optical rotation."""
        return transform(R_LINK_OPTICAL, (0.0, 0.0, 0.0))

    @property
    def T_base_optical(self) -> np.ndarray:
        """Optical frame -> base_link."""
        return self.T_base_link @ self.T_link_optical


@dataclass(frozen=True)
class BasePose:
    """The robot on the floor: position (x, y) in the world and heading ``yaw``."""

    x: float
    y: float
    yaw: float

    @property
    def T_world_base(self) -> np.ndarray:
        """base_link -> world."""
        return transform(rotation_z(self.yaw), (self.x, self.y, 0.0))


@dataclass(frozen=True)
class Scene:
    """A room with objects and a robot driving a camera through it at ``rate`` Hz from ``start_stamp``."""

    name: str
    objects: tuple[SceneObject, ...]
    slabs: tuple[Slab, ...]
    intrinsics: Intrinsics
    path: tuple[BasePose, ...]
    mount: CameraMount = CameraMount()
    rate: float = 2.0  # Hz
    start_stamp: float = 1_700_000_000.0  # seconds
    world_frame: str = "map"

    def __post_init__(self) -> None:
        ids = [o.instance_id for o in self.objects]
        if len(set(ids)) != len(ids):
            raise ValueError(f"instance ids must be unique, got {ids}")
        if not self.path:
            raise ValueError("a scene needs at least one camera pose")
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, got {self.rate}")

    @property
    def n_frames(self) -> int:
        """Number of frames (poses on the path)."""
        return len(self.path)

    def stamp(self, index: int) -> float:
        """Seconds at frame ``index``."""
        return self.start_stamp + index / self.rate

    def T_world_base(self, index: int) -> np.ndarray:
        """base_link -> world at frame ``index``."""
        return self.path[index].T_world_base

    def T_world_camera(self, index: int) -> np.ndarray:
        """Optical frame -> world at frame ``index``."""
        return self.T_world_base(index) @ self.mount.T_base_optical

    def object(self, key: str | int) -> SceneObject:
        """The object with this label (must be unique) or instance id."""
        return find_object(self.objects, key, "the scene")
