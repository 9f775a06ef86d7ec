"""The sample report of ``spatialclaw eval`` (docs/eval_sample/): the generated metric benchmark, all four action
interfaces, and a SCRIPTED model, not a vision-language model.

The scripted model plays what a model would do through each interface, with the real kernel, tools and scoring
behind it: ``code`` writes two cells (reconstruct and track the objects, then measure and ReturnAnswer),
``single-pass`` writes the same as one program, ``tool-call`` makes the same calls through the function-calling
API (a second turn reads a direction or turn off the printed result), and ``no-tool`` answers a fixed guess per
category (option A, 1 m, 80 cm, 5 objects, 20 deg). Its grounding is not a model's either: the box prompts come
from the scene's true instance masks, as in ``spatialclaw demo``. So the figures measure the tools on exact ground
truth behind each interface, not any model; a real model's run is ``spatialclaw eval`` against its endpoint.

Usage (repo root, venv active): python bench/eval_sample.py --questions 24 --out docs/eval_sample
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from spatialclaw_ros.evaluation.dataset import RowProblem, read_rows
from spatialclaw_ros.evaluation.interfaces import INTERFACES, NO_TOOL_ROLE, SINGLE_PASS_ROLE
from spatialclaw_ros.llm.scripted_server import ScriptedModelServer, ScriptedRequest, Turn
from spatialclaw_ros.scenes.generator import generate_scene
from spatialclaw_ros.scenes.render import render_scene

GUESS = {"closest_distance": 1.0, "centre_distance": 1.0, "height": 1.0, "size": 80, "count": 5, "camera_motion": 20}


@dataclass(frozen=True)
class Ref:
    """A stored name (``attr``: one of its attributes) inside an operation's arguments."""

    name: str
    attr: str = ""


@dataclass(frozen=True)
class Op:
    """``target = function(**args)``: ``function`` is ``tools.<Namespace>.<method>`` or ``<stored>.<method>``."""

    target: str
    function: str
    args: dict


def python(value) -> str:
    if isinstance(value, Ref):
        return f"{value.name}.{value.attr}" if value.attr else value.name
    if isinstance(value, list):
        return "[" + ", ".join(python(v) for v in value) + "]"
    return repr(value)


def as_json(value):
    if isinstance(value, Ref):
        return {"ref": value.name, **({"attr": value.attr} if value.attr else {})}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return value


def cell_lines(ops: list[Op]) -> str:
    return "\n".join(f"{op.target} = {op.function}({', '.join(f'{k}={python(v)}' for k, v in op.args.items())})\n"
                     f"print({op.target!r}, {op.target})" for op in ops)


def tool_call(op: Op) -> dict:
    if op.function.startswith("tools."):
        _, namespace, method = op.function.split(".")
        return {"name": f"{namespace}_{method}", "arguments": {**{k: as_json(v) for k, v in op.args.items()},
                                                              "save_as": op.target}}
    stored, method = op.function.split(".")
    return {"name": "call_method", "arguments": {"object": stored, "method": method, "save_as": op.target,
                                                 "kwargs": {k: as_json(v) for k, v in op.args.items()}}}


@lru_cache(maxsize=8)
def instance_masks(seed: int) -> list[np.ndarray]:
    """The true instance-id image of each frame of a generated scene (the scripted model's grounding)."""
    return [item.instance for item in render_scene(generate_scene(seed, n_frames=6, width=320, height=240))]


MIN_PIXELS = 30  # an object smaller than this in every frame is not prompted (a model would not see it)


def prompts(seed: int, labels: list[str], ids: dict[str, int]) -> list[tuple[str, int, list[int]]]:
    """(label, frame, box) for each object some frame shows: its box in the frame where it is largest."""
    masks = instance_masks(seed)
    found = []
    for label in labels:
        areas = [int((mask == ids[label]).sum()) for mask in masks]
        frame = int(np.argmax(areas))
        if areas[frame] >= MIN_PIXELS:
            rows, cols = np.nonzero(masks[frame] == ids[label])
            found.append((label, frame, [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]))
    return found


class ScriptedSolver:
    """Decides each request of each interface for the generated benchmark's questions."""

    def __init__(self, rows) -> None:
        self.rows = {row.question: row for row in rows}

    def __call__(self, request: ScriptedRequest) -> Turn:
        row = next(row for question, row in self.rows.items() if question in request.text())
        system = request.messages[0]["content"]
        if NO_TOOL_ROLE.splitlines()[0] in system:
            guess = "A" if row.choices else GUESS[row.question_type]
            return Turn(text=f"A typical value, without measuring.\nANSWER: {guess}")
        measure, answer = self.plan(row)
        if request.tools:
            done = [m for m in request.messages if m["role"] == "tool"]
            if not done:
                calls = [tool_call(op) for op in measure]
                if not isinstance(answer, str):
                    calls.append({"name": "ReturnAnswer", "arguments": {"answer": as_json(answer[0]), "unit": answer[1]}})
                return Turn(tool_calls=tuple(calls))
            return Turn(tool_calls=({"name": "ReturnAnswer", "arguments": {"answer": self.read(row, done)}},))
        final = (f"ReturnAnswer({answer})" if isinstance(answer, str)
                 else f"ReturnAnswer({python(answer[0])}, unit={answer[1]!r})")
        steps = sum(1 for m in request.messages if m["role"] == "assistant")
        if SINGLE_PASS_ROLE.splitlines()[0] in system:
            return Turn(text=f"The whole measurement at once.\n```python\n{cell_lines(measure)}\n{final}\n```")
        tracking = [op for op in measure if not op.function.startswith(("tools.Geometry", "m"))]
        if steps == 0:
            return Turn(text=f"Reconstruct and track the objects first.\n```python\n{cell_lines(tracking)}\n```")
        rest = [op for op in measure if op not in tracking]
        return Turn(text=f"Now measure and answer.\n```python\n{cell_lines(rest)}\n{final}\n```")

    def plan(self, row):
        """The measuring operations and the answer: (Ref, unit) for numbers, a Python expression for choices."""
        seed, category, q = row.extra["seed"], row.question_type, row.question
        scene = generate_scene(seed, n_frames=6, width=320, height=240)
        ids = {o.label: o.instance_id for o in scene.objects}
        named = [label for _, label in sorted((q.index(f"the {l}"), l) for l in ids if f"the {l}" in q)]
        if category == "camera_motion":
            ops = [Op("recon", "tools.Reconstruct.Reconstruct", {"frames": Ref("InputImages")}),
                   Op("moved", "tools.Geometry.camera_motion", {"frame_a": 0, "frame_b": 5})]
            if "left or right" in q:
                return ops, "moved.turn"
            return ops, ((Ref("moved", "distance_m"), "m") if "metres" in q else (Ref("moved", "yaw_deg"), "deg"))
        seen = prompts(seed, list(ids) if category in ("count", "closest_object") else named, ids)
        objects = [label for label, _, _ in seen]
        ops = [Op("recon", "tools.Reconstruct.Reconstruct", {"frames": Ref("InputImages")})]
        ops += [Op(f"m{i}", "tools.SAM3.segment_video_by_box", {"boxes": [box], "labels": [label],
                                                                  "prompt_frame_idx": frame})
                for i, (label, frame, box) in enumerate(seen)]
        points = [Op(f"p{i}", f"m{i}.get_all_masked_points", {"recon": Ref("recon"), "object": label})
                  for i, label in enumerate(objects)]
        if category == "count":
            return ops + points + [Op("counted", "tools.Geometry.count_instances", {
                "point_sets": [Ref(p.target) for p in points], "labels": objects, "reconstruction": Ref("recon")})], \
                (Ref("counted", "count"), None)
        if category == "closest_object":
            target = objects.index(named[0]) if named[0] in objects else 0
            gaps = [Op(f"d{i}", "tools.Geometry.closest_point_distance",
                       {"points_a": Ref(f"p{target}"), "points_b": Ref(f"p{i}")}) for i in range(len(objects)) if i != target]
            table = ", ".join(f"{label!r}: d{i}.value_m" for i, label in enumerate(objects) if i != target)
            return ops + points + gaps, f"min({{{table}}}.items(), key=lambda kv: kv[1])[0]"
        if category in ("closest_distance", "centre_distance"):
            function = "closest_point_distance" if category == "closest_distance" else "centroid_distance"
            return ops + points + [Op("d", f"tools.Geometry.{function}", {"points_a": Ref("p0"), "points_b": Ref("p1")})], \
                (Ref("d", "value_m"), "m")
        if category == "height":
            return ops + points + [Op("h", "tools.Geometry.height_above_floor", {"points": Ref("p0")})], (Ref("h", "top_m"), "m")
        if category == "size":
            return ops + points + [Op("dims", "tools.Geometry.dimensions", {"points": Ref("p0")})], \
                (Ref("dims", "length_m"), "m")
        centres = [Op(f"c{i}", f"m{i}.get_centroid_3d", {"recon": Ref("recon"), "frame": frame, "object": label})
                   for i, (label, frame, _) in enumerate(seen)]  # [subject, reference]
        ops += centres + [Op("where", "tools.Geometry.relative_direction", {
            "point_a": Ref("c1"), "point_b": Ref("c0"), "frame": "base_link", "frame_index": 0})]
        if "left or to the right" in q:
            return ops, "'left' if where.offset[1] > 0 else 'right'"
        return ops, "'in front of' if where.offset[0] > 0 else 'behind'"

    def read(self, row, tool_messages) -> str:
        """The choice a tool-call model reads off its last printed result (a turn, a direction or distances)."""
        text = "\n".join(m["content"] for m in tool_messages)
        q = row.question
        if "turn left or right" in q:
            return re.search(r"turn (left|right|none)", text).group(1)
        if "closest to" in q:
            gaps = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"d(\d+) = Distance\(([\d.]+) m", text)}
            scene = generate_scene(row.extra["seed"], n_frames=6, width=320, height=240)
            ids = {o.label: o.instance_id for o in scene.objects}
            objects = [label for label, _, _ in prompts(row.extra["seed"], list(ids), ids)]  # as the calls were made
            return objects[min(gaps, key=gaps.get)]
        azimuth = float(re.search(r"azimuth=(-?[\d.]+) deg", text).group(1))
        if "left or to the right" in q:
            return "left" if azimuth > 0 else "right"
        return "in front of" if abs(azimuth) < 90 else "behind"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--out", type=Path, default=Path("docs/eval_sample"))
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    from spatialclaw_ros.cli import main as spatialclaw

    work = Path(tempfile.mkdtemp(prefix="eval_sample_"))
    spatialclaw(["eval", "--generate", str(args.questions), "--out", str(work / "bench")])
    items = list(read_rows(work / "bench" / "benchmark_images.jsonl"))
    rows = [item for item in items if not isinstance(item, RowProblem)]
    config = work / "config.yaml"
    config.write_text("agent: {plan: false}\nmodel: {max_retries: 0}\n")
    with ScriptedModelServer(ScriptedSolver(rows)) as server:
        os.environ["SPATIALCLAW_BASE_URL"] = server.url
        status = spatialclaw(["eval", "--dataset", str(work / "bench" / "benchmark_images.jsonl"),
                              "--out", str(work / "run"), "--interface", *INTERFACES,
                              "--concurrency", str(args.concurrency), "--config", str(config)])
    # The sample keeps the report, plots and results; the session directories (frames, images) stay out.
    shutil.rmtree(args.out, ignore_errors=True)
    shutil.copytree(work / "run" / "plots", args.out / "plots")
    for name in ("summary.md", "report.html", "results.jsonl", "bad_rows.jsonl"):
        shutil.copy(work / "run" / name, args.out / name)
    shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
