"""Function calling through the real openai client against the scripted server (plain and streamed)."""

import json

import pytest

from spatialclaw_ros.config import ModelConfig
from spatialclaw_ros.llm.client import ChatModel
from spatialclaw_ros.llm.scripted_server import ScriptedModelServer, Turn, turn_from_yaml

TOOLS = [{"type": "function", "function": {"name": "measure", "description": "measure a gap",
                                             "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}]


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_round_trip(stream):
    arguments = {"a": "chair", "long": "x" * 40}
    turn = Turn(text="", tool_calls=({"name": "measure", "arguments": arguments, "id": "call_7"},
                                      {"name": "measure", "arguments": '{"a": "table"}'}))
    with ScriptedModelServer({"main": [turn]}) as server, \
            ChatModel(ModelConfig(base_url=server.url, max_retries=0, stream=stream)) as model:
        reply = model.chat("main", [{"role": "user", "content": "go"}], tools=TOOLS)
        request = server.requests_for("main")[0]
    assert [call.name for call in reply.tool_calls] == ["measure", "measure"]
    assert reply.tool_calls[0].id == "call_7"
    assert json.loads(reply.tool_calls[0].arguments) == arguments
    assert json.loads(reply.tool_calls[1].arguments) == {"a": "table"}
    assert reply.finish_reason == "tool_calls"
    assert request.tools == TOOLS


def test_reply_without_text_or_calls_is_still_empty():
    with ScriptedModelServer({"main": [Turn(text="")]}) as server, \
            ChatModel(ModelConfig(base_url=server.url, max_retries=0)) as model:
        with pytest.raises(Exception, match="empty message"):
            model.chat("main", [{"role": "user", "content": "go"}])


def test_yaml_turn_with_tool_calls():
    turn = turn_from_yaml({"tool_calls": [{"name": "measure", "arguments": {"a": "x"}}]})
    assert turn.tool_calls[0]["name"] == "measure"
