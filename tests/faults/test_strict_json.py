"""Every JSON output is strict: non-finite numbers become null with the reason recorded, never NaN/Infinity
and never a crash (trace, result.json, ``--json``)."""

from __future__ import annotations

import math
from pathlib import Path

from fault_support import COUNT_QUESTION, cell, run_cli, strict_json, strict_lines, write_config
from faulty_server import FaultyModelServer, Reply

from spatialclaw_ros.agent import AgentResult
from spatialclaw_ros.answers import Answer, AnswerKind
from spatialclaw_ros.cli import print_result
from spatialclaw_ros.session_log import SessionLog

NAN_NOTE = "nan written as null (not a JSON number)"


def test_non_finite_answers_are_logged_as_null(tmp_path, images):
    script = {"main": [Reply(cell("ReturnAnswer(float('nan'))")), Reply(cell("ReturnAnswer(float('-inf'))")),
                       Reply(cell("ReturnAnswer(len(InputImages))"))]}
    config = write_config(tmp_path / "config.yaml", tmp_path / "sessions")
    with FaultyModelServer(script) as server:
        done = run_cli(["ask", COUNT_QUESTION, "--images", *images, "--json", "--config", str(config)], server.url)
    assert done.returncode == 0, done.stderr
    result = strict_json(done.stdout)
    assert (result["value"], result["steps"]) == (2, 3)
    session = Path(result["session_dir"])
    events = strict_lines(session / "trace.jsonl")
    checks = [event for event in events if event["kind"] == "answer_check"]
    assert [(c["value"], c["accepted"], c.get("sanitized")) for c in checks] == [
        (None, False, {"value": NAN_NOTE}), (None, False, {"value": "-inf written as null (not a JSON number)"}),
        (2, True, None)]
    strict_json((session / "result.json").read_text())


def test_json_output_of_a_non_finite_answer_is_strict(tmp_path, capsys):
    answer = Answer(kind=AnswerKind.NUMBER, text="inf m", value=math.inf, unit="m")
    result = AgentResult("answered", answer, False, 1, "", "", tmp_path, 1.0)
    assert print_result(result, as_json=True) == 0
    printed = strict_json(capsys.readouterr().out)
    assert printed["value"] is None
    assert printed["sanitized"] == {"value": "inf written as null (not a JSON number)"}


def test_trace_events_and_result_with_non_finite_values(tmp_path):
    log = SessionLog(tmp_path / "s")
    log.event("vlm", step=1, service="vlm.locate", result=[float("nan"), 1.0], nested={"deep": [{"x": float("inf")}]})
    error = log.finish({"status": "answered", "value": float("nan")})
    assert error == ""
    event, result_event = strict_lines(tmp_path / "s/trace.jsonl")
    assert event["result"] == [None, 1.0] and event["nested"] == {"deep": [{"x": None}]}
    assert event["sanitized"] == {"result[0]": NAN_NOTE, "nested.deep[0].x": "inf written as null (not a JSON number)"}
    assert result_event["value"] is None and result_event["sanitized"] == {"value": NAN_NOTE}
    written = strict_json((tmp_path / "s/result.json").read_text())
    assert written == {"status": "answered", "value": None, "log_error": "", "sanitized": {"value": NAN_NOTE}}
    assert (tmp_path / "s/report.html").is_file()
