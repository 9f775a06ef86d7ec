"""Evaluation rows: the JSONL format every benchmark is read into, and the frames of one row.

One JSON object per line: ``id``, ``question``, ``answer``, exactly one source (``images`` [paths], ``video``
or ``bag``), and optionally ``choices``, ``question_type`` (the category scores are grouped by), ``unit`` (of a
numeric answer; default: the unit the question names, else SI), ``tolerance`` (absolute, in ``unit``: a
numeric answer this close scores 1), and for images with metric geometry ``depth`` (16-bit PNG millimetres,
one per image), ``intrinsics`` (3x3, one for all or one per image), ``poses`` (4x4 camera optical frame ->
world per image), ``base_poses`` (4x4 ``base_link`` -> world per image), ``stamps`` (s) and ``world_frame``.
Relative paths are relative to the JSONL file's folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..frames import Frame, FrameSet
from .scoring import BadAnswer, Truth, read_truth

IMAGE_CAMERA = "image"
SOURCES = ("images", "video", "bag")
KNOWN_KEYS = {"id", "question", "choices", "answer", "question_type", "unit", "tolerance", "benchmark", *SOURCES,
              "depth", "intrinsics", "poses", "base_poses", "stamps", "world_frame", "extra"}
DEFAULT_CATEGORY = "all"


class BadRow(ValueError):
    """A row that cannot be evaluated (missing field or file, unreadable answer); the message says why."""


@dataclass
class EvalRow:
    """One benchmark question in the evaluation format (paths absolute)."""

    id: str
    question: str
    answer: str | float
    choices: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    video: str | None = None
    bag: str | None = None
    question_type: str = DEFAULT_CATEGORY
    unit: str | None = None
    tolerance: float | None = None
    benchmark: str = ""
    depth: list[str] = field(default_factory=list)
    intrinsics: list | None = None
    poses: list | None = None
    base_poses: list | None = None
    stamps: list[float] | None = None
    world_frame: str = "world"
    extra: dict = field(default_factory=dict)

    def truth(self) -> Truth:
        """The ground truth (a letter or an SI number); BadRow when it cannot be read."""
        try:
            return read_truth(self.question, self.choices, self.answer, self.unit, self.tolerance)
        except BadAnswer as error:
            raise BadRow(f"row {self.id}: {error}") from None

    def to_json(self) -> dict:
        """The row as one JSONL object (empty optional fields left out)."""
        return {key: value for key, value in asdict(self).items() if value not in (None, [], {}, "")}


@dataclass
class RowProblem:
    """A row that was reported and skipped: where it is and why."""

    id: str
    where: str
    reason: str


def parse_row(data: dict, base: Path, where: str) -> EvalRow:
    """An EvalRow from one decoded JSON object; BadRow naming the first problem."""
    if not isinstance(data, dict):
        raise BadRow(f"{where}: a row must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise BadRow(f"{where}: unknown keys {unknown} (known: {', '.join(sorted(KNOWN_KEYS))})")
    for key in ("id", "question", "answer"):
        if data.get(key) in (None, ""):
            raise BadRow(f"{where}: the row has no '{key}'")
    given = [key for key in SOURCES if data.get(key)]
    if len(given) != 1:
        raise BadRow(f"{where}: a row needs exactly one of images, video, bag; got {given or 'none'}")
    images = data.get("images") or []
    if not isinstance(images, list) or not all(isinstance(path, str) for path in images):
        raise BadRow(f"{where}: 'images' must be a list of paths")
    choices = data.get("choices") or []
    if not isinstance(choices, list) or not all(isinstance(choice, str) for choice in choices):
        raise BadRow(f"{where}: 'choices' must be a list of strings")
    row = EvalRow(
        id=str(data["id"]), question=str(data["question"]), answer=data["answer"], choices=choices,
        images=[_resolve(base, path) for path in images],
        video=_resolve(base, data["video"]) if data.get("video") else None,
        bag=_resolve(base, data["bag"]) if data.get("bag") else None,
        question_type=str(data.get("question_type") or DEFAULT_CATEGORY), unit=data.get("unit") or None,
        tolerance=_optional_float(data.get("tolerance"), "tolerance", where), benchmark=str(data.get("benchmark", "")),
        depth=[_resolve(base, path) for path in data.get("depth") or []], intrinsics=data.get("intrinsics"),
        poses=data.get("poses"), base_poses=data.get("base_poses"), stamps=data.get("stamps"),
        world_frame=str(data.get("world_frame") or "world"), extra=dict(data.get("extra") or {}))
    row.truth()
    return row


def read_rows(path: str | Path) -> Iterator[EvalRow | RowProblem]:
    """The rows of a JSONL file in order; a line that cannot be used comes back as a RowProblem."""
    path = Path(path)
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                data = json.loads(line)
            except ValueError as error:
                yield RowProblem(f"line {number}", where, f"not JSON: {error}")
                continue
            try:
                yield parse_row(data, path.parent, where)
            except BadRow as error:
                row_id = str(data.get("id", f"line {number}")) if isinstance(data, dict) else f"line {number}"
                yield RowProblem(row_id, where, str(error))


def write_rows(rows: list[EvalRow], path: str | Path) -> Path:
    """Write rows as JSONL (paths relative to the file's folder where they are inside it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            data = row.to_json()
            for key in ("images", "depth"):
                if key in data:
                    data[key] = [_relative(path.parent, item) for item in data[key]]
            for key in ("video", "bag"):
                if key in data:
                    data[key] = _relative(path.parent, data[key])
            out.write(json.dumps(data, ensure_ascii=False) + "\n")
    return path


def load_frames(row: EvalRow, max_frames: int) -> FrameSet:
    """The FrameSet of a row (key frames of a video or bag); BadRow when a file is missing or unreadable."""
    try:
        if row.video:
            from ..video import load_video

            return load_video(_existing(row.video), max_frames)
        if row.bag:
            from ..bag_reader import read_bag

            return read_bag(_existing(row.bag), max_frames=max_frames)
        return _image_frames(row)
    except (OSError, ValueError, LookupError, UnidentifiedImageError) as error:
        raise BadRow(f"row {row.id}: {error}") from None


def _image_frames(row: EvalRow) -> FrameSet:
    """One frame per image, with depth, intrinsics and poses where the row gives them."""
    count = len(row.images)
    depth = _per_image(row.depth, count, "depth")
    intrinsics = row.intrinsics
    if intrinsics is not None and np.asarray(intrinsics, dtype=float).shape == (3, 3):
        intrinsics = [intrinsics] * count
    intrinsics = _per_image(intrinsics, count, "intrinsics")
    poses = _per_image(row.poses, count, "poses")
    base_poses = _per_image(row.base_poses, count, "base_poses")
    stamps = _per_image(row.stamps, count, "stamps")
    frames = []
    for index, path in enumerate(row.images):
        with Image.open(_existing(path)) as image:
            rgb = np.asarray(image.convert("RGB"))
        depth_mm = None
        if depth[index] is not None:
            with Image.open(_existing(depth[index])) as image:
                depth_mm = np.asarray(image).astype(np.uint16)
        frames.append(Frame(index=index, rgb=rgb, stamp=float(stamps[index] or 0.0), camera=IMAGE_CAMERA,
                            K=intrinsics[index], depth=depth_mm, T_world_camera=poses[index],
                            poses={"base_link": base_poses[index]} if base_poses[index] is not None else {}))
    return FrameSet(frames=frames, world_frame=row.world_frame,
                    extra={"sources": [Path(path).name for path in row.images]})


def _per_image(values, count: int, name: str) -> list:
    if values is None or values == []:
        return [None] * count
    if len(values) != count:
        raise ValueError(f"'{name}' has {len(values)} entries for {count} images")
    return list(values)


def _existing(path: str) -> Path:
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} does not exist")
    return Path(path)


def _resolve(base: Path, path: str) -> str:
    return str(Path(path) if Path(path).is_absolute() else (base / path).resolve())


def _relative(folder: Path, path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(folder.resolve()))
    except ValueError:
        return path


def _optional_float(value, name: str, where: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BadRow(f"{where}: '{name}' must be a number, got {value!r}") from None
