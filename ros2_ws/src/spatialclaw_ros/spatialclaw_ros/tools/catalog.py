"""The tool catalogue for the system prompt: every namespace and public method with its signature and docstring."""

from __future__ import annotations

import dataclasses
import inspect
import textwrap

from . import TOOL_CLASSES
from .measures import (
    Box3D, CameraMotion, Dimensions, Direction, Distance, Elevation, Gap, InstanceCount, Plane,
)

#: Result types the namespaces above return, documented after them.
RESULT_TYPES = (
    Distance, Gap, Box3D, Dimensions, Elevation, Direction, CameraMotion, Plane, InstanceCount,
)


def public_methods(cls: type) -> list[str]:
    """Names of the public methods and properties a class defines itself, in source order, but for those its
    ``_PROMPT_HIDDEN`` names (plumbing for other modules, or reference entry points that only raise)."""
    hidden = vars(cls).get("_PROMPT_HIDDEN", ())
    return [name for name, member in vars(cls).items() if not name.startswith("_") and name not in hidden
            and (inspect.isfunction(member) or isinstance(member, property))]


def annotation_text(annotation) -> str:
    """An annotation as written in the source (postponed annotations are strings already)."""
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", None) or repr(annotation)


def signature_text(function, drop_self: bool) -> str:
    """``(a, b=1, *, c=True) -> Ret`` for a function (parameter annotations left out to keep the prompt short)."""
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())[1 if drop_self else 0:]
    plain = [parameter.replace(annotation=inspect.Parameter.empty) for parameter in parameters]
    text = str(signature.replace(parameters=plain, return_annotation=inspect.Signature.empty))
    if signature.return_annotation is signature.empty:
        return text
    return f"{text} -> {annotation_text(signature.return_annotation)}"


def docstring(obj, what: str) -> str:
    """The dedented docstring of ``obj``; ValueError naming ``what`` when it has none."""
    text = inspect.getdoc(obj)
    if not text:
        raise ValueError(f"{what} has no docstring; every tool the agent sees must be documented")
    return text


def indent(text: str) -> str:
    """Indent a docstring under its signature line."""
    return textwrap.indent(text, "    ")


def describe_members(prefix: str, cls: type) -> list[str]:
    """For each public method ``prefix.name(signature) -> ret`` (properties: ``prefix.name``), then its docstring."""
    lines = []
    for name in public_methods(cls):
        member = vars(cls)[name]
        signature = "" if isinstance(member, property) else signature_text(member, drop_self=True)
        lines.append(f"  {prefix}.{name}{signature}")
        lines.append(indent(docstring(member, f"{prefix}.{name}")))
    return lines


def describe_result(cls: type) -> str:
    """``Name(field, ...; property, ...): docstring`` of a result dataclass."""
    fields = [field.name for field in dataclasses.fields(cls)]
    properties = [name for name, member in vars(cls).items() if isinstance(member, property)]
    extra = f"; {', '.join(properties)}" if properties else ""
    return f"  {cls.__name__}({', '.join(fields)}{extra}): {docstring(cls, cls.__name__)}"


def describe_tools() -> str:
    """The catalogue: every namespace in TOOL_CLASSES in their documented order, then the result types."""
    namespaces = [
        "\n".join([f"tools.{name}: {docstring(cls, f'tools.{name}')}", *describe_members(f"tools.{name}", cls)])
        for name, cls in TOOL_CLASSES.items()
    ]
    results = "\n".join(["Result types (fields; they print with units and frame):",
                         *(describe_result(cls) for cls in RESULT_TYPES)])
    return "\n\n".join([*namespaces, results])


def describe_object(name: str, obj) -> str:
    """Signature and docstring of another name the agent's code sees: a function, or an object and its methods."""
    if inspect.isroutine(obj):
        return f"{name}{signature_text(obj, drop_self=False)}\n{indent(docstring(obj, name))}"
    cls = obj if inspect.isclass(obj) else type(obj)
    lines = [f"{name}: {docstring(cls, name)}"]
    if not inspect.isclass(obj) and "__call__" in vars(cls):
        lines.append(f"  {name}{signature_text(cls.__call__, drop_self=True)}")
    return "\n".join(lines + describe_members(name, cls))
