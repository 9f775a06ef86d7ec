"""The evaluation runner with a real scripted endpoint and real kernels: the four interfaces, resume,
concurrency, bad rows and a dying endpoint."""

import threading
from pathlib import Path

import pytest

from eval_support import QUESTIONS, at, cell, interface_of, oracle, write_image, write_jsonl
from spatialclaw_ros.evaluation.dataset import RowProblem, read_rows
from spatialclaw_ros.evaluation.interfaces import INTERFACES
from spatialclaw_ros.evaluation.report import write_report
from spatialclaw_ros.evaluation.runner import RESULTS_FILE, Evaluation, read_results
from spatialclaw_ros.llm.scripted_server import ScriptedModelServer, Turn
from spatialclaw_ros.session_log.log import read_trace


def split(path):
    items = list(read_rows(path))
    return ([i for i in items if not isinstance(i, RowProblem)], [i for i in items if isinstance(i, RowProblem)])


def test_four_interfaces_scored_the_same_way(config, bench, replies, tmp_path):
    rows, problems = split(bench)
    out = tmp_path / "out"
    with ScriptedModelServer(oracle(replies, wrong={"How far is the chair"})) as server:
        outcome = Evaluation(at(config, server.url), out, list(INTERFACES)).run(rows, problems)
        asked = {interface_of(r) for r in server.requests_for("main")}
    assert asked == set(INTERFACES) and outcome.recorded == 16
    records = read_results(out / RESULTS_FILE)
    scores = {(r["id"], r["interface"]): r["score"] for r in records}
    for interface in INTERFACES:
        assert scores[("q-choice", interface)] == 1.0
        assert scores[("q-size", interface)] == 1.0  # a bare 180 in the question's centimetres
        assert scores[("q-count", interface)] == 1.0
        assert scores[("q-distance", interface)] == 0.0  # 0.5 m against 2 m: 75 % off
    code = next(r for r in records if r["interface"] == "code")
    assert code["kernel_pids"] and code["cells"] == 1 and code["tokens"]["total_tokens"] > 0
    assert next(r for r in records if r["interface"] == "no-tool")["kernel_pids"] == []  # no kernel at all
    assert (out / code["session_dir"] / "report.html").is_file()
    summary, page = write_report(out, records, outcome.bad_rows, order=INTERFACES)
    text = summary.read_text()
    assert "| code | 4 | 75.0 | 75.0 | 100.0 (1) | 0.0 (1) | 100.0 (1) | 100.0 (1) |" in text
    assert text.index("| code |") < text.index("| single-pass |") < text.index("| tool-call |") < text.index("| no-tool |")
    assert "data:image/png;base64," in page.read_text() and (out / "plots" / "accuracy.png").is_file()


def test_resume_skips_finished_rows(config, bench, replies, tmp_path):
    rows, problems = split(bench)
    out = tmp_path / "out"
    with ScriptedModelServer(oracle(replies)) as server:
        Evaluation(at(config, server.url), out, ["code"]).run(rows[:2], problems)
    with pytest.raises(FileExistsError, match="--resume"):
        Evaluation(at(config, "http://127.0.0.1:9/v1"), out, ["code"]).run(rows, problems)
    with ScriptedModelServer(oracle(replies)) as server:
        outcome = Evaluation(at(config, server.url), out, ["code"]).run(rows, problems, resume=True)
        asked = [r.text() for r in server.requests_for("main")]
    assert outcome.resumed == 2 and outcome.recorded == 2
    assert len(asked) == 2 and not any(QUESTIONS[key][0] in text for text in asked for key in ("q-choice", "q-distance"))
    assert sorted(r["id"] for r in read_results(out / RESULTS_FILE)) == sorted(QUESTIONS)


def test_concurrency_three_runs_three_kernels_at_once(config, bench, replies, tmp_path):
    rows, problems = split(bench)
    out = tmp_path / "out"
    barrier = threading.Barrier(3, timeout=60)
    alive_together: list[set[int]] = []
    answer = oracle(replies)

    def decide(request):
        # The first main call of a question waits until three questions are at theirs, each holding its kernel.
        if len(request.messages) == 2:
            barrier.wait()
            pids = {event["pid"] for trace in out.glob("sessions/code/*/trace.jsonl")
                    for event in read_trace(trace.parent) if event["kind"] == "kernel"}
            alive_together.append({pid for pid in pids if Path(f"/proc/{pid}").exists()})
        return answer(request)

    with ScriptedModelServer(decide) as server:
        Evaluation(at(config, server.url), out, ["code"], concurrency=3).run(rows[:3], problems)
    records = read_results(out / RESULTS_FILE)
    pids = {pid for record in records for pid in record["kernel_pids"]}
    assert len(records) == 3 and len(pids) == 3
    assert alive_together and all(len(alive) >= 3 for alive in alive_together[:3])
    assert max(r["started_at"] for r in records) < min(r["finished_at"] for r in records)  # intervals overlap


def test_bad_rows_are_reported_and_skipped(config, replies, tmp_path):
    image = write_image(tmp_path / "f.png")
    path = write_jsonl(tmp_path / "b.jsonl", [
        {"id": "missing-image", "question": "How many chairs are there?", "answer": 4, "images": ["nope.png"]},
        {"id": "bad-answer", "question": "How many chairs are there?", "answer": "many", "images": [image]},
        {"id": "fine", "question": "How many chairs are there?", "answer": 4, "images": [image]},
    ])
    rows, problems = split(path)
    out = tmp_path / "out"
    with ScriptedModelServer(oracle(replies)) as server:
        outcome = Evaluation(at(config, server.url), out, ["code"]).run(rows, problems)
    assert [r["id"] for r in read_results(out / RESULTS_FILE)] == ["fine"]
    assert {p.id for p in outcome.bad_rows} == {"missing-image", "bad-answer"}
    assert "nope.png does not exist" in (out / "bad_rows.jsonl").read_text()


def test_an_endpoint_that_dies_midway_leaves_a_resumable_run(config, bench, replies, tmp_path):
    rows, problems = split(bench)
    out = tmp_path / "out"
    answer = oracle(replies)
    seen: list[str] = []

    def decide(request):
        seen.append(request.text())
        if len(seen) == 2:  # the second question: the server goes down while it thinks
            threading.Thread(target=server.close).start()
            return Turn(text=cell("ReturnAnswer(1)"), delay_s=30)
        return answer(request)

    server = ScriptedModelServer(decide)
    outcome = Evaluation(at(config, server.url), out, ["code"]).run(rows, problems)
    server.close()
    assert outcome.stopped_early and "rerun with --resume" in outcome.stopped_early
    assert [r["id"] for r in read_results(out / RESULTS_FILE)] == ["q-choice"]
    with ScriptedModelServer(oracle(replies)) as server:
        outcome = Evaluation(at(config, server.url), out, ["code"]).run(rows, problems, resume=True)
    assert not outcome.stopped_early
    assert sorted(r["id"] for r in read_results(out / RESULTS_FILE)) == sorted(QUESTIONS)
    assert all(r["score"] == 1.0 for r in read_results(out / RESULTS_FILE))
