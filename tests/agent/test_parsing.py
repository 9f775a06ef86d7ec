"""Reply parsing: thinking stripped, exactly one python cell, tolerant of fences and prose."""

import pytest

from spatialclaw_ros.agent.parsing import parse_final_answer, parse_reply, strip_thinking


@pytest.mark.parametrize("text, expected", [
    ("<think>hmm\nplan</think>answer", "answer"),
    ("a<think>x</think>b<think>y</think>c", "abc"),
    ("before <think>never closed", "before"),
    ("stray reasoning</think>\nafter", "after"),
    ("no tags", "no tags"),
])
def test_strip_thinking(text, expected):
    assert strip_thinking(text) == expected


def test_one_python_cell_with_reasoning():
    reply = parse_reply("I will measure.\n```python\nx = 1\nprint(x)\n```\nThat is all.")
    assert reply.problem == ""
    assert reply.code == "x = 1\nprint(x)"
    assert reply.reasoning == "I will measure.\nThat is all."


@pytest.mark.parametrize("fence", ["```", "```python", "```py", "``` Python"])
def test_fence_variants(fence):
    assert parse_reply(f"go\n{fence}\ny = 2\n```").code == "y = 2"


def test_missing_closing_fence_is_tolerated():
    reply = parse_reply("reasoning\n```python\na = [1,\n 2]\nprint(a)")
    assert reply.code == "a = [1,\n 2]\nprint(a)"
    assert reply.problem == ""


def test_code_inside_thinking_is_ignored():
    reply = parse_reply("<think>```python\nbad()\n```</think>ok\n```python\ngood()\n```")
    assert reply.code == "good()"


def test_other_language_fences_are_prose():
    reply = parse_reply("Output looked like\n```text\n1 2 3\n```\n```python\nz = 3\n```")
    assert reply.code == "z = 3"
    assert "1 2 3" in reply.reasoning


@pytest.mark.parametrize("text, problem", [
    ("just prose, no code", "no ```python code cell"),
    ("```python\na=1\n```\n```python\nb=2\n```", "contains 2 code cells"),
    ("```python\n   \n```", "code cell is empty"),
    ("<think>```python\nx=1\n```", "no ```python code cell"),
])
def test_malformed_replies(text, problem):
    reply = parse_reply(text)
    assert reply.code is None
    assert problem in reply.problem


@pytest.mark.parametrize("text, value", [
    ("ANSWER: 2.3 m", "2.3 m"),
    ("Reasoning...\n**ANSWER:** B", "B"),
    ("answer: `yes`", "yes"),
    ("<think>ANSWER: 1</think>ANSWER: 4", "4"),
    ("ANSWER: 1\nANSWER: 2", "2"),
    ("no final line", None),
])
def test_final_answer(text, value):
    assert parse_final_answer(text) == value


def test_lines_break_where_python_source_breaks_them():
    code = "label = 'a\u2028b\x85c'\n# note\u2029more\r\nprint(label)"
    reply = parse_reply(f"Look\u2028closer.\r\n```python\r\n{code}\r\n```")
    assert reply.code == "label = 'a\u2028b\x85c'\n# note\u2029more\nprint(label)"
    assert reply.reasoning == "Look\u2028closer."
    assert parse_final_answer("ANSWER: A. yes\u2028really") == "A. yes\u2028really"
