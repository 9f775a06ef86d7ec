"""Loaders for the public layouts of spatial benchmarks, read from a downloaded copy into evaluation rows.

The data are not bundled. Point a loader at the folder (or file) as its dataset card ships it:

- ``vsi-bench`` (nyu-visionx/VSI-Bench): ``test.jsonl`` (or the ``test-*.parquet``) with ``id, dataset,
  scene_name, question_type, question, options, ground_truth``; videos unzipped to ``<dataset>/<scene_name>.mp4``.
- ``mmsi-bench`` (RunsenXu/MMSI-Bench): ``MMSI_Bench.parquet`` with ``id, images`` (encoded image bytes),
  ``question_type, question`` (options inline), ``answer``.
- ``spbench`` (hongxingli/SPBench): ``SPBench-SI.parquet`` / ``SPBench-MV.parquet`` with ``id, scene_name,
  images`` (file names), ``question, options, question_type, ground_truth``; images in ``images/<scene_name>/``.
- ``viewspatial-bench`` (lidingm/ViewSpatial-Bench): ``ViewSpatial-Bench.json`` (a list) with ``question_type,
  image_path`` (``ViewSpatial-Bench/...``, relative to the folder holding ``scannetv2_val/`` and ``val2017/``),
  ``question, answer`` ("A. right"), ``choices`` (one option per line).
- ``cv-bench`` (nyu-visionx/CV-Bench): ``test_2d.jsonl`` and ``test_3d.jsonl`` (or ``test.jsonl``) with ``idx,
  type, task, image`` (``img/...``), ``question, choices, answer`` ("(A)"), ``source``.
- ``blink`` (BLINK-Benchmark/BLINK): one folder per subtask with ``val-*.parquet`` (``test`` answers are
  hidden) holding ``idx, question, sub_task, image_1..image_4`` ({bytes, path}), ``choices, answer`` ("(A)").

Parquet files need ``pyarrow`` (``pip install pyarrow``). Embedded images are written once under ``cache``.
Each source record that cannot be converted becomes a RowProblem; the others are returned as rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from ..answers import analyse_question
from .dataset import BadRow, EvalRow, RowProblem, read_rows

#: VSI-Bench's units for its numeric question types, used where the question itself names none.
VSI_UNITS = {"object_abs_distance": "m", "object_size_estimation": "cm", "room_size_estimation": "m^2"}
BLINK_IMAGE_KEYS = ("image_1", "image_2", "image_3", "image_4")

Loaded = tuple[list[EvalRow], list[RowProblem]]


def load_benchmark(name: str, path: str | Path, cache: str | Path, split: str = "") -> Loaded:
    """Rows (and skipped records) of benchmark ``name`` (one of BENCHMARKS) from the downloaded copy at ``path``."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    return BENCHMARKS[name](path, Path(cache), split)


def _jsonl(path: Path, cache: Path, split: str) -> Loaded:
    rows, problems = [], []
    for item in read_rows(path):
        (problems if isinstance(item, RowProblem) else rows).append(item)
    return rows, problems


def _convert(records: Iterable[tuple[str, dict]], make: Callable[[dict], EvalRow], where: str) -> Loaded:
    """Apply ``make`` to each (id, record); a failure becomes a RowProblem naming the record."""
    rows, problems = [], []
    for record_id, record in records:
        try:
            row = make(record)
            row.truth()
            rows.append(row)
        except (BadRow, KeyError, TypeError, ValueError) as error:
            problems.append(RowProblem(record_id, where, f"{type(error).__name__}: {error}"))
    return rows, problems


def _read_parquet(path: Path) -> list[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(f"reading {path.name} needs pyarrow: pip install pyarrow") from None
    return pq.read_table(path).to_pylist()


def _read_json_records(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    except ValueError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def _find(path: Path, *patterns: str) -> list[Path]:
    """``path`` itself if it is a file, else the files in it matching the first pattern that matches any."""
    if path.is_file():
        return [path]
    for pattern in patterns:
        found = sorted(path.glob(pattern))
        if found:
            return found
    raise FileNotFoundError(f"{path} holds none of {', '.join(patterns)}")


def _unit(question: str, question_type: str) -> str | None:
    """VSI-Bench's unit for a numeric type, unless the question names its own unit."""
    return None if analyse_question(question).unit_hint else VSI_UNITS.get(question_type)


def _save_image(data: bytes, cache: Path, name: str) -> str:
    """Write encoded image bytes once as ``cache/name.<png|jpg>``; returns the path."""
    suffix = ".png" if data[:8] == b"\x89PNG\r\n\x1a\n" else ".jpg"
    target = cache / f"{name}{suffix}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return str(target)


def _vsi_bench(path: Path, cache: Path, split: str) -> Loaded:
    [source] = _find(path, "test.jsonl", "test-*.parquet", "*.parquet")[:1]
    root = source.parent
    records = _read_parquet(source) if source.suffix == ".parquet" else _read_json_records(source)

    def make(r: dict) -> EvalRow:
        return EvalRow(id=str(r["id"]), question=r["question"], answer=r["ground_truth"],
                       choices=list(r.get("options") or []), video=str(root / r["dataset"] / f"{r['scene_name']}.mp4"),
                       question_type=r["question_type"], unit=_unit(r["question"], r["question_type"]),
                       benchmark="VSI-Bench")

    return _convert(((str(r.get("id")), r) for r in records), make, source.name)


def _mmsi_bench(path: Path, cache: Path, split: str) -> Loaded:
    [source] = _find(path, "MMSI_Bench.parquet", "*.parquet")[:1]

    def make(r: dict) -> EvalRow:
        images = [_save_image(data, cache / "mmsi-bench", f"{r['id']}_{n}") for n, data in enumerate(r["images"] or [])]
        return EvalRow(id=str(r["id"]), question=r["question"], answer=r["answer"], images=images,
                       question_type=r["question_type"], benchmark="MMSI-Bench")

    return _convert(((str(r.get("id")), r) for r in _read_parquet(source)), make, source.name)


def _spbench(path: Path, cache: Path, split: str) -> Loaded:
    rows, problems = [], []
    for source in _find(path, "SPBench-*.parquet", "*.parquet"):
        images = source.parent / "images"
        name = source.stem

        def make(r: dict, images=images, name=name) -> EvalRow:
            return EvalRow(id=f"{name}-{r['id']}", question=r["question"], answer=r["ground_truth"],
                           choices=list(r.get("options") or []),
                           images=[str(images / r["scene_name"] / frame) for frame in r["images"]],
                           question_type=r["question_type"], unit=_unit(r["question"], r["question_type"]),
                           benchmark=name)

        found = _convert(((f"{name}-{r.get('id')}", r) for r in _read_parquet(source)), make, source.name)
        rows += found[0]
        problems += found[1]
    return rows, problems


def _viewspatial_bench(path: Path, cache: Path, split: str) -> Loaded:
    [source] = _find(path, "ViewSpatial-Bench.json", "*.json", "*.jsonl")[:1]
    root = source.parent

    def make(r: dict) -> EvalRow:
        choices = r["choices"].splitlines() if isinstance(r["choices"], str) else list(r["choices"])
        images = [str(root.joinpath(*Path(p).parts[1:])) if Path(p).parts[0] == "ViewSpatial-Bench" else str(root / p)
                  for p in r["image_path"]]
        return EvalRow(id=r["id"], question=r["question"], answer=r["answer"], choices=choices, images=images,
                       question_type=r["question_type"], benchmark="ViewSpatial-Bench")

    records = [{**r, "id": f"viewspatial-{i}"} for i, r in enumerate(_read_json_records(source))]
    return _convert(((r["id"], r) for r in records), make, source.name)


def _cv_bench(path: Path, cache: Path, split: str) -> Loaded:
    rows, problems = [], []
    for source in _find(path, "test_2d.jsonl", "test.jsonl") + (
            [] if path.is_file() else sorted(path.glob("test_3d.jsonl"))):
        root = source.parent

        def make(r: dict, root=root) -> EvalRow:
            return EvalRow(id=f"cvbench-{r['type']}-{r['idx']}", question=r["question"], answer=r["answer"],
                           choices=list(r["choices"]), images=[str(root / r["image"])],
                           question_type=f"{r['type']} {r['task']}", benchmark="CV-Bench",
                           extra={"source": r.get("source", "")})

        found = _convert(((f"cvbench-{r.get('type')}-{r.get('idx')}", r) for r in _read_json_records(source)), make,
                         source.name)
        rows += found[0]
        problems += found[1]
    return rows, problems


def _blink(path: Path, cache: Path, split: str) -> Loaded:
    split = split or "val"
    rows, problems = [], []
    for source in _find(path, f"*/{split}-*.parquet", f"{split}-*.parquet"):
        def make(r: dict) -> EvalRow:
            images = [_save_image(r[key]["bytes"], cache / "blink", f"{r['idx']}_{n}")
                      for n, key in enumerate(BLINK_IMAGE_KEYS) if r.get(key)]
            return EvalRow(id=str(r["idx"]), question=r["question"], answer=r["answer"], choices=list(r["choices"]),
                           images=images, question_type=r["sub_task"], benchmark="BLINK")

        found = _convert(((str(r.get("idx")), r) for r in _read_parquet(source)), make, str(source.relative_to(path)))
        rows += found[0]
        problems += found[1]
    return rows, problems


BENCHMARKS: dict[str, Callable[[Path, Path, str], Loaded]] = {
    "jsonl": _jsonl, "vsi-bench": _vsi_bench, "mmsi-bench": _mmsi_bench, "spbench": _spbench,
    "viewspatial-bench": _viewspatial_bench, "cv-bench": _cv_bench, "blink": _blink,
}
