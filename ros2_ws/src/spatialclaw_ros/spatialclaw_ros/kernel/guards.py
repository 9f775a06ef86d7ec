"""Runtime guards behind the static check, installed in the worker before any agent code runs.

Some allowed modules turn a string into code or an import far from the line that names it, where an AST check
cannot follow the value: ``typing`` evaluates string forward references (``Optional["..."]`` registered through
``functools.singledispatch`` ran any expression), and matplotlib imports a ``module://`` backend named in
``rcParams``. Here they refuse instead, with a message the model can act on. (The OS layer still stands behind
both: these guard the messages and the kernel's own process, not the host.)
"""

from __future__ import annotations

import builtins
import re
import typing

import matplotlib.pyplot as plt

#: A forward reference the kernel resolves: a plain (dotted) name, looked up without evaluating anything.
_NAME_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
KERNEL_BACKEND = "agg"


def _resolve_name(self: typing.ForwardRef, globalns, localns, recursive_guard=frozenset()):
    """``ForwardRef._evaluate`` for the kernel: a dotted name is looked up attribute by attribute (and what it names
    is evaluated in turn, as the original does); anything else is refused (it would be evaluated as code)."""
    text = self.__forward_arg__
    if not _NAME_PATH.fullmatch(text) or any(part.startswith("_") for part in text.split(".")):
        raise TypeError(f"the type annotation string {text[:80]!r} is not evaluated in this kernel; "
                        "annotate with the type itself")
    head, *rest = text.split(".")
    scopes = [scope for scope in (localns, globalns, vars(builtins)) if scope is not None]
    for scope in scopes:
        if head in scope:
            value = scope[head]
            break
    else:
        raise NameError(f"name {head!r} in the type annotation is not defined")
    for part in rest:
        value = getattr(value, part)
    return typing._eval_type(value, globalns, localns, recursive_guard | {text})


def _agg_only(original):
    def switch_backend(newbackend):
        if str(newbackend).lower() != KERNEL_BACKEND:
            raise ValueError(f"matplotlib's backend is fixed to Agg in this kernel (asked for "
                             f"{str(newbackend)[:80]!r}); draw figures and pass them to show()")
        return original(newbackend)
    return switch_backend


def install() -> None:
    """Install the guards in this process (the worker calls it once, before its sandbox)."""
    typing.ForwardRef._evaluate = _resolve_name
    plt.switch_backend = _agg_only(plt.switch_backend)
