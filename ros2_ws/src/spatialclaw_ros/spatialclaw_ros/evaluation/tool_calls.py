"""The tool-call interface's functions: every tool the kernel offers as an OpenAI function definition, and each
call turned into the one kernel cell that makes it (JSON arguments in, a result stored under a name out).

Arguments are JSON values; ``{"ref": NAME}`` (optionally with ``"attr"`` and ``"index"``) stands for a stored
result, ``InputImages`` or ``Metadata``. Every call may name its result with ``save_as`` (default ``r1``, ``r2``,
...). The generated cell still passes the kernel's static check and sandbox like any other.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
from dataclasses import dataclass

from ..kernel.namespace import PROMPT_OBJECTS
from ..llm.client import ToolCall
from ..tools import TOOL_CLASSES
from ..tools.catalog import docstring, public_methods

REF = "ref"
SAVE_AS = "save_as"
CALL_METHOD = "call_method"
INPUT_NAMES = ("InputImages", "Metadata")
RESERVED = {"tools", "show", "vlm", "ReturnAnswer", "np", "scipy", "cv2", "math", "plt", *INPUT_NAMES}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,40}$")
ARGUMENT_HELP = ('a JSON value, or {"ref": NAME} for a stored result, InputImages or Metadata (add "attr": "x" '
                 'and/or "index": i for NAME.x[i])')


class ToolCallError(ValueError):
    """A function call that cannot become a cell (unknown function, bad JSON, unknown name); told to the model."""


@dataclass(frozen=True)
class _Function:
    """What a function definition calls: the Python target and its parameters (name, variadic, required)."""

    target: str
    parameters: tuple[tuple[str, bool, bool], ...]
    stores: bool  # assigns its result to a name


def _first_paragraph(obj, what: str) -> str:
    return " ".join(docstring(obj, what).split("\n\n")[0].split())


def _parameters(function, drop_self: bool) -> tuple[tuple[str, bool, bool], ...]:
    parameters = list(inspect.signature(function).parameters.values())[1 if drop_self else 0:]
    return tuple((p.name, p.kind is p.VAR_POSITIONAL, p.default is p.empty and p.kind is not p.VAR_POSITIONAL)
                 for p in parameters if p.kind is not p.VAR_KEYWORD)


@functools.lru_cache(maxsize=1)
def _functions() -> dict[str, tuple[_Function, str]]:
    """Function name -> (what it calls, its description), from the same signatures and docstrings as the prompt."""
    found: dict[str, tuple[_Function, str]] = {}
    for namespace, cls in TOOL_CLASSES.items():
        for method in public_methods(cls):
            member = vars(cls)[method]
            if inspect.isfunction(member):
                found[f"{namespace}_{method}"] = (_Function(f"tools.{namespace}.{method}", _parameters(member, True), True),
                                                  _first_paragraph(member, f"tools.{namespace}.{method}"))
    vlm = PROMPT_OBJECTS["vlm"] if inspect.isclass(PROMPT_OBJECTS["vlm"]) else type(PROMPT_OBJECTS["vlm"])
    for method in public_methods(vlm):
        member = vars(vlm)[method]
        found[f"vlm_{method}"] = (_Function(f"vlm.{method}", _parameters(member, True), True),
                                  _first_paragraph(member, f"vlm.{method}"))
    for name in ("show", "ReturnAnswer"):
        obj = PROMPT_OBJECTS[name]
        found[name] = (_Function(name, _parameters(obj, False), False), _first_paragraph(obj, name))
    return found


@functools.lru_cache(maxsize=1)
def function_definitions() -> list[dict]:
    """The OpenAI ``tools`` list: one function per tool method, vlm, show, ReturnAnswer and ``call_method``."""
    definitions = []
    for name, (function, description) in _functions().items():
        properties = {parameter: {"description": ARGUMENT_HELP} for parameter, _, _ in function.parameters}
        if function.stores:
            properties[SAVE_AS] = {"type": "string", "description": "name to store the result under (default r1, r2, ...)"}
        required = [parameter for parameter, _, needed in function.parameters if needed]
        definitions.append(_definition(name, description, properties, required))
    definitions.append(_definition(
        CALL_METHOD, "Call a method of a stored result, e.g. a Reconstruction's subset or a PerFrameMask's "
                     "get_all_masked_points.",
        {"object": {"type": "string", "description": "the stored result's name"},
         "method": {"type": "string", "description": "the method's name"},
         "args": {"type": "array", "description": f"positional arguments, each {ARGUMENT_HELP}"},
         "kwargs": {"type": "object", "description": f"keyword arguments, each {ARGUMENT_HELP}"},
         SAVE_AS: {"type": "string", "description": "name to store the result under (default r1, r2, ...)"}},
        ["object", "method"]))
    return definitions


def _definition(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}}}


class ToolProgram:
    """Turns one question's function calls into cells, remembering the names results were stored under."""

    def __init__(self) -> None:
        self.names: set[str] = set(INPUT_NAMES)
        self._count = 0

    def cell(self, call: ToolCall) -> tuple[str, str | None]:
        """The cell that makes ``call`` and the name its result will be stored under (None: not stored)."""
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError as error:
            raise ToolCallError(f"the arguments of {call.name} are not JSON: {error}") from None
        if not isinstance(arguments, dict):
            raise ToolCallError(f"the arguments of {call.name} must be a JSON object")
        save_as = arguments.pop(SAVE_AS, None)
        if call.name == CALL_METHOD:
            expression = self._method_call(arguments)
            stores = True
        elif call.name in _functions():
            function = _functions()[call.name][0]
            expression = f"{function.target}({self._arguments(function, arguments, call.name)})"
            stores = function.stores
        else:
            raise ToolCallError(f"there is no function {call.name!r}")
        if not stores:
            return expression, None
        name = self._new_name(save_as)
        return f"{name} = {expression}\nprint({name!r}, '=', {name})", name

    def stored(self, name: str) -> None:
        """Remember that ``name`` now holds a result (after its cell ran without error)."""
        self.names.add(name)

    def _new_name(self, save_as) -> str:
        if save_as is None:
            self._count += 1
            return f"r{self._count}"
        if not isinstance(save_as, str) or not _NAME.match(save_as) or save_as in RESERVED:
            raise ToolCallError(f"save_as must be a new name (a letter, then letters, digits, _), not {save_as!r}")
        return save_as

    def _arguments(self, function: _Function, arguments: dict, name: str) -> str:
        known = {parameter for parameter, _, _ in function.parameters}
        unknown = sorted(set(arguments) - known)
        if unknown:
            raise ToolCallError(f"{name} has no parameter {', '.join(unknown)} (it takes {', '.join(sorted(known))})")
        missing = [parameter for parameter, _, needed in function.parameters if needed and parameter not in arguments]
        if missing:
            raise ToolCallError(f"{name} needs {', '.join(missing)}")
        rendered = []
        for parameter, variadic, _ in function.parameters:
            if parameter not in arguments:
                continue
            value = arguments[parameter]
            if variadic:
                rendered += [self.render(item) for item in (value if isinstance(value, list) else [value])]
            else:
                rendered.append(f"{parameter}={self.render(value)}")
        return ", ".join(rendered)

    def _method_call(self, arguments: dict) -> str:
        target, method = arguments.get("object"), arguments.get("method")
        if target not in self.names:
            raise ToolCallError(f"no stored result {target!r}; stored: {', '.join(sorted(self.names))}")
        if not isinstance(method, str) or not _NAME.match(method):
            raise ToolCallError(f"method must be a public method name, not {method!r}")
        args = arguments.get("args") or []
        kwargs = arguments.get("kwargs") or {}
        if not isinstance(args, list) or not isinstance(kwargs, dict) or not all(_NAME.match(k) for k in kwargs):
            raise ToolCallError("args must be a JSON array and kwargs a JSON object of parameter names")
        rendered = [self.render(value) for value in args] + [f"{key}={self.render(value)}" for key, value in kwargs.items()]
        return f"{target}.{method}({', '.join(rendered)})"

    def render(self, value) -> str:
        """Python source for a JSON argument: literals as they are, ``{"ref": ...}`` as the stored name."""
        if isinstance(value, dict) and REF in value:
            return self._reference(value)
        if isinstance(value, dict):
            return "{" + ", ".join(f"{self.render(str(key))}: {self.render(item)}" for key, item in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(self.render(item) for item in value) + "]"
        if isinstance(value, float) and not math.isfinite(value):
            raise ToolCallError(f"{value} is not a finite number")
        if value is None or isinstance(value, (str, int, float, bool)):
            return repr(value)
        raise ToolCallError(f"cannot pass {value!r}")

    def _reference(self, value: dict) -> str:
        name = value[REF]
        if name not in self.names:
            raise ToolCallError(f"no stored result {name!r}; stored: {', '.join(sorted(self.names))}")
        source = name
        attr = value.get("attr")
        if attr is not None:
            if not isinstance(attr, str) or not _NAME.match(attr):
                raise ToolCallError(f"attr must be a public attribute name, not {attr!r}")
            source += f".{attr}"
        if "index" in value:
            index = value["index"]
            if not isinstance(index, (int, str)) or isinstance(index, bool):
                raise ToolCallError(f"index must be an integer or a string, not {index!r}")
            source += f"[{index!r}]"
        return source
