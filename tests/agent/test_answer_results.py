"""Answers through the whole loop (scripted HTTP model server, real kernel): cells in the reference's calling
style (``ReturnAnswer(value)`` with a bare number) are accepted when the question names the unit, and the
numeric value reaches ``AgentResult.to_dict`` and ``result.json``."""

import json

from spatialclaw_ros.llm.scripted_server import ScriptedModelServer
from spatialclaw_ros.session_log import read_trace

from agent_support import cell


def _strict(text: str) -> dict:
    """``text`` parsed as strict JSON (NaN and Infinity are not JSON)."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def _answer_checks(result):
    return [event for event in read_trace(result.session_dir) if event["kind"] == "answer_check"]


def test_a_bare_number_is_accepted_when_the_question_names_the_unit(make_agent, frames):
    script = {"main": [cell("ReturnAnswer(2.3)")]}
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url).ask("How far apart (metres) are the red and the blue card?", frames)
    assert result.status == "answered", result.error_message
    assert (result.steps, result.answer.text) == (1, "2.30 m")
    assert [check["accepted"] for check in _answer_checks(result)] == [True]
    summary = _strict((result.session_dir / "result.json").read_text())
    assert (summary["answer"], summary["value"], summary["unit"]) == ("2.30 m", 2.3, "m")
    assert result.to_dict()["value"] == 2.3


def test_answer_1_or_2_carries_the_number_as_its_value(make_agent, frames):
    script = {"main": [cell("ReturnAnswer('(2)')")]}
    question = "Which card is blue? (1) the first card (2) the last card Answer 1 or 2."
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url).ask(question, frames)
        first_request = server.requests[0].text()
    assert "one option number, e.g. ReturnAnswer(1) (options: 1. the first card; 2. the last card)" in first_request
    summary = _strict((result.session_dir / "result.json").read_text())
    assert (summary["answer"], summary["value"], summary["unit"]) == ("2. the last card", 2, "")
    assert summary["answer_detail"]["choice"] == "2"


def test_a_value_not_finite_in_si_is_refused_then_a_finite_one_accepted(make_agent, frames):
    script = {"main": [cell("ReturnAnswer(1e308, unit='km')"), cell("ReturnAnswer(1.5, unit='km')")]}
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url).ask("How far did the robot drive?", frames)
        feedback = server.requests[1].text()
    assert "1e+308 km converts to inf, not a finite number" in feedback
    assert [check["accepted"] for check in _answer_checks(result)] == [False, True]
    summary = _strict((result.session_dir / "result.json").read_text())
    assert (summary["answer"], summary["value"], summary["unit"]) == ("1500.00 m", 1500.0, "m")


def test_the_final_answer_call_takes_a_bare_number_in_the_named_unit(make_agent, frames):
    script = {"main": [cell("print(len(InputImages))"), "About a metre and a half.\nANSWER: 150"]}
    with ScriptedModelServer(script) as server:
        result = make_agent(server.url).ask("How wide is the doorway in cm?", frames, max_steps=1)
    assert result.status == "answered" and result.low_confidence
    assert (result.answer.text, result.to_dict()["value"], result.to_dict()["unit"]) == ("150.00 cm", 1.5, "m")
