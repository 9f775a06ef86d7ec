"""Frames: the input of one question (RGB, optional metric depth, intrinsics, pose, stamp).

Conventions (REP 103 / OpenCV): camera optical frame x right, y down, z forward; metres;
``T_world_camera`` maps points from the camera optical frame into the world frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FRAMES_JSON = "frames.json"
FRAMES_NPZ = "frames.npz"


@dataclass
class Frame:
    """One camera frame. ``index`` is the absolute frame index tools address it by."""

    index: int
    rgb: np.ndarray  # (H, W, 3) uint8
    stamp: float = 0.0  # seconds
    camera: str = "camera"
    frame_id: str = ""  # the camera's optical TF frame
    K: np.ndarray | None = None  # (3, 3) pinhole intrinsics in pixels at this resolution
    distortion: np.ndarray | None = None  # plumb_bob coefficients, if any
    depth: np.ndarray | None = None  # (H, W) float32 metres, 0 or NaN = invalid
    T_world_camera: np.ndarray | None = None  # (4, 4) camera optical frame -> world
    poses: dict[str, np.ndarray] = field(default_factory=dict)  # other TF frames (e.g. base_link) -> world, at this stamp

    def __post_init__(self) -> None:
        rgb = np.asarray(self.rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"frame {self.index}: rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        self.rgb = rgb
        if self.depth is not None:
            self.depth = depth_to_metres(self.depth)
            if self.depth.shape != rgb.shape[:2]:
                raise ValueError(f"frame {self.index}: depth {self.depth.shape} does not match rgb {rgb.shape[:2]}")
        if self.K is not None:
            self.K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        if self.T_world_camera is not None:
            self.T_world_camera = np.asarray(self.T_world_camera, dtype=np.float64).reshape(4, 4)
        self.poses = {name: np.asarray(T, dtype=np.float64).reshape(4, 4) for name, T in self.poses.items()}

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


def depth_to_metres(depth: np.ndarray) -> np.ndarray:
    """REP 118: uint16 depth is millimetres with 0 invalid; float depth is metres."""
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.dtype == np.uint16:
        out = depth.astype(np.float32) / 1000.0
        out[depth == 0] = np.nan
        return out
    if np.issubdtype(depth.dtype, np.floating):
        out = depth.astype(np.float32, copy=False)
        return np.where(out > 0, out, np.nan).astype(np.float32)
    raise ValueError(f"depth must be uint16 millimetres or float metres, got {depth.dtype}")


@dataclass
class FrameSet:
    """The frames of one question plus what the agent is told about them."""

    frames: list[Frame]
    world_frame: str = "world"
    body_frame: str = "base_link"  # the robot's body frame (REP 105) whose pose Frame.poses may carry; "" = none
    is_video: bool = False
    fps: float = 0.0
    total_frames: int = 0  # frames in the source (video) before key-frame sampling
    extra: dict = field(default_factory=dict)  # JSON-safe extra metadata

    def __post_init__(self) -> None:
        if not self.frames:
            raise ValueError("a question needs at least one frame")
        indices = [f.index for f in self.frames]
        if len(set(indices)) != len(indices):
            raise ValueError(f"frame indices must be unique, got {indices}")
        if not self.total_frames:
            self.total_frames = len(self.frames)

    def metadata(self) -> dict:
        """The ``Metadata`` dictionary the agent's code sees (JSON-safe)."""
        stamps = [f.stamp for f in self.frames]
        return {
            "is_video": self.is_video,
            "fps": self.fps,
            "total_frames": self.total_frames,
            "duration_sec": float(max(stamps) - min(stamps)),
            "num_images": len(self.frames),
            "frame_indices": [f.index for f in self.frames],
            "cameras": sorted({f.camera for f in self.frames}),
            "world_frame": self.world_frame,
            "body_frame": self.body_frame,
            "has_depth": all(f.depth is not None for f in self.frames),
            "has_poses": all(f.T_world_camera is not None for f in self.frames),
            "has_intrinsics": all(f.K is not None for f in self.frames),
            **self.extra,
        }

    def save(self, directory: Path) -> None:
        """Write ``frames.json`` and ``frames.npz`` (no pickle) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        records = []
        for f in self.frames:
            arrays[f"rgb_{f.index}"] = f.rgb
            if f.depth is not None:
                arrays[f"depth_{f.index}"] = f.depth
            records.append({
                "index": f.index, "stamp": f.stamp, "camera": f.camera, "frame_id": f.frame_id,
                "K": None if f.K is None else f.K.tolist(),
                "distortion": None if f.distortion is None else np.asarray(f.distortion).tolist(),
                "T_world_camera": None if f.T_world_camera is None else f.T_world_camera.tolist(),
                "poses": {name: T.tolist() for name, T in f.poses.items()},
            })
        np.savez(directory / FRAMES_NPZ, **arrays)
        meta = {"world_frame": self.world_frame, "body_frame": self.body_frame, "is_video": self.is_video,
                "fps": self.fps, "total_frames": self.total_frames, "extra": self.extra, "frames": records}
        (directory / FRAMES_JSON).write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path) -> "FrameSet":
        directory = Path(directory)
        meta = json.loads((directory / FRAMES_JSON).read_text())
        with np.load(directory / FRAMES_NPZ, allow_pickle=False) as arrays:
            frames = [
                Frame(
                    index=r["index"], rgb=arrays[f"rgb_{r['index']}"], stamp=r["stamp"], camera=r["camera"],
                    frame_id=r["frame_id"], K=r["K"], distortion=None if r["distortion"] is None else np.asarray(r["distortion"]),
                    depth=arrays[f"depth_{r['index']}"] if f"depth_{r['index']}" in arrays else None,
                    T_world_camera=r["T_world_camera"], poses=r["poses"],
                )
                for r in meta["frames"]
            ]
        return cls(frames=frames, world_frame=meta["world_frame"], body_frame=meta["body_frame"],
                   is_video=meta["is_video"], fps=meta["fps"],
                   total_frames=meta["total_frames"], extra=meta["extra"])
