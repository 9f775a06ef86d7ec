"""One-line summaries of the agent's variables and what a cell changed (runs in the worker).

Only user variables count: not preloaded names still bound to their original object, not modules,
not names starting with an underscore. A variable is "changed" when it was rebound or its summary
changed. Summaries are kept between cells and recomputed only for what may have changed: a rebound
name, or a name the cell's code mentions whose array dtype or shape, container length or items (by
identity), or image mode or size changed. So the cost after a cell follows what the cell did, not how
many variables exist. Not detected: in-place edits that keep all of that (an element of a nested
list, a custom object's attribute), and edits through a name the cell does not mention (an alias).
"""

from __future__ import annotations

import re
import types

import numpy as np
from PIL import Image

VALUE_CHARS = 80  # longest repr shown as a value
SMALL_CONTAINER = 20  # containers longer than this show only their length
SMALL_ARRAY = 8  # arrays with at most this many elements show their values

IMMUTABLE = (bool, int, float, complex, str, bytes, np.generic, type(None), frozenset, types.FunctionType, type)
_EXACT_IMMUTABLE = frozenset(IMMUTABLE) - {np.generic}  # checked by exact type first: the common case, fast
_UNSET = object()
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _short_repr(value) -> str:
    """``repr`` cut to VALUE_CHARS, or "" where it is unavailable or only an address."""
    try:
        text = repr(value)
    except Exception:
        return ""
    if " at 0x" in text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS - 3] + "..."


def summarize(value) -> tuple[str, str]:
    """(type name, summary) of one value, e.g. ("ndarray", "float32 (480, 640)")."""
    type_name = type(value).__name__
    if isinstance(value, np.ndarray):
        text = f"{value.dtype} {tuple(value.shape)}"
        if value.size <= SMALL_ARRAY:
            text += " = " + _short_repr(value.tolist())
        return type_name, text
    if isinstance(value, Image.Image):
        return type_name, f"{value.mode} {value.width}x{value.height}"
    if isinstance(value, (bool, int, float, complex, str, bytes, np.generic, type(None))):
        return type_name, "= " + _short_repr(value)
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        text = f"len {len(value)}"
        if len(value) <= SMALL_CONTAINER:
            small = _short_repr(value)
            if small:
                text += " = " + small
        return type_name, text
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return type_name, f"shape {shape}"
    if isinstance(value, (types.FunctionType, type)):
        return type_name, ""
    return type_name, _short_repr(value)


def _is_user_variable(name: str, value, preloaded: dict) -> bool:
    """True for the agent's own variables: not ``_``-prefixed, not a module, not a preloaded name still
    bound to its original object."""
    return not name.startswith("_") and not isinstance(value, types.ModuleType) \
        and preloaded.get(name, _UNSET) is not value


def _fingerprint(value) -> object:
    """What must stay equal for ``value``'s summary to stay valid while the name is bound to the same object."""
    if isinstance(value, IMMUTABLE):
        return None
    if isinstance(value, np.ndarray):
        return value.dtype.str, value.shape, value.tobytes() if value.size <= SMALL_ARRAY else None
    if isinstance(value, Image.Image):
        return value.mode, value.size
    if isinstance(value, (list, tuple, set, dict)):
        if len(value) > SMALL_CONTAINER:
            return len(value)
        if isinstance(value, dict):
            return tuple(map(id, value.keys())) + tuple(map(id, value.values()))
        return tuple(map(id, value))
    return None


class VariableTracker:
    """The summaries of the agent's variables, kept from cell to cell; ``update`` reports what a cell changed."""

    def __init__(self, preloaded: dict) -> None:
        self._preloaded = preloaded
        self._known: dict[str, tuple[object, object, str, str]] = {}  # name -> (value, fingerprint, type, summary)
        self.names: list[str] = []  # the user variables after the last update, sorted

    def update(self, namespace: dict, code: str | None = None) -> dict:
        """Summarise what changed since the last update, by the cell ``code`` (None: look at every value);
        JSON-safe ``{"new": [[name, type, summary]...], "changed": [...], "deleted": [names]}``, each sorted
        by name. Nothing is kept if it is interrupted."""
        mentioned = None if code is None else set(_IDENTIFIER.findall(code))
        known: dict[str, tuple[object, object, str, str]] = {}
        new, changed = [], []
        for name, value in namespace.items():
            before = self._known.get(name)
            if before is not None and before[0] is value:
                if mentioned is not None and name not in mentioned or type(value) in _EXACT_IMMUTABLE:
                    known[name] = before
                    continue
                fingerprint = _fingerprint(value)
                if before[1] == fingerprint:
                    known[name] = before
                    continue
            elif not _is_user_variable(name, value, self._preloaded):
                continue
            else:
                fingerprint = _fingerprint(value)
            type_name, summary = summarize(value)
            known[name] = (value, fingerprint, type_name, summary)
            if before is None:
                new.append([name, type_name, summary])
            elif before[0] is not value or before[2:] != (type_name, summary):
                changed.append([name, type_name, summary])
        deleted = sorted(name for name in self._known if name not in known)
        if new or deleted:
            self.names = sorted(known)
        self._known = known
        return {"new": sorted(new), "changed": sorted(changed), "deleted": deleted}
