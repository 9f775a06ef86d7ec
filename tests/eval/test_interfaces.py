"""The tool-call and single-pass interfaces through a real scripted endpoint and a real kernel."""

import json

from eval_support import at, cell, write_image
from spatialclaw_ros.agent import Agent
from spatialclaw_ros.evaluation.dataset import EvalRow, load_frames
from spatialclaw_ros.evaluation.interfaces import ask_with
from spatialclaw_ros.evaluation.tool_calls import function_definitions
from spatialclaw_ros.llm.scripted_server import ScriptedModelServer, Turn

QUESTION = "How many chairs are there?"


def frames(tmp_path):
    row = EvalRow(id="x", question=QUESTION, answer=20, images=[str(tmp_path / write_image(tmp_path / "f.png"))])
    return load_frames(row, 8)


def test_tool_calls_store_named_results_and_report_errors(config, tmp_path):
    turns = {"main": [
        Turn(tool_calls=({"name": "Geometry_normalized_to_pixel", "id": "c1",
                          "arguments": {"coords": [500, 250], "width": 40, "height": 32, "save_as": "px"}},
                         {"name": "Geometry_no_such_tool", "id": "c2", "arguments": {}})),
        Turn(tool_calls=({"name": "ReturnAnswer", "id": "c3", "arguments": {"answer": {"ref": "px", "index": 0}}},)),
    ]}
    with ScriptedModelServer(turns) as server, Agent(at(config, server.url)) as agent:
        result = ask_with(agent, "tool-call", QUESTION, frames(tmp_path), session_dir=tmp_path / "s")
        first, second = server.requests_for("main")
    assert result.status == "answered" and result.answer.text == "20"
    assert first.tools == function_definitions() and "Geometry_normalized_to_pixel" in json.dumps(first.tools)
    assistant = next(m for m in second.messages if m["role"] == "assistant")
    assert [call["id"] for call in assistant["tool_calls"]] == ["c1", "c2"]
    tools = {m["tool_call_id"]: m["content"] for m in second.messages if m["role"] == "tool"}
    assert tools["c1"].startswith("ok: px = [20.0, 8.0]")
    assert "there is no function 'Geometry_no_such_tool'" in tools["c2"]
    assert "by calling functions" in second.messages[0]["content"]


def test_a_reference_to_an_unknown_name_is_told_not_run(config, tmp_path):
    turns = {"main": [
        Turn(tool_calls=({"name": "ReturnAnswer", "id": "c1", "arguments": {"answer": {"ref": "nothing"}}},)),
        Turn(tool_calls=({"name": "ReturnAnswer", "id": "c2", "arguments": {"answer": 3}},)),
    ]}
    with ScriptedModelServer(turns) as server, Agent(at(config, server.url)) as agent:
        result = ask_with(agent, "tool-call", QUESTION, frames(tmp_path), session_dir=tmp_path / "s")
        second = server.requests_for("main")[1]
    assert result.answer.text == "3"
    assert any("no stored result 'nothing'" in m["content"] for m in second.messages if m["role"] == "tool")


def test_single_pass_runs_one_program_once(config, tmp_path):
    turns = {"main": [cell("n = len(InputImages)\nprint(n)"), "ANSWER: 1"]}
    with ScriptedModelServer(turns) as server, Agent(at(config, server.url)) as agent:
        result = ask_with(agent, "single-pass", QUESTION, frames(tmp_path), session_dir=tmp_path / "s")
        requests = server.requests_for("main")
    assert result.steps == 1 and result.low_confidence and result.answer.text == "1"
    assert "ONE complete Python program" in requests[0].messages[0]["content"]
    assert len(requests) == 2  # the program, then the answer-only call (it printed but did not ReturnAnswer)
