"""One-line summaries of the agent's variables and what a cell changed (runs in the worker).

Only user variables count: not preloaded names still bound to their original object, not modules,
not names starting with an underscore. A variable is "changed" when it was rebound or its summary
changed; in-place edits that keep type, shape and small value are not detected.
"""

from __future__ import annotations

import types

import numpy as np
from PIL import Image

VALUE_CHARS = 80  # longest repr shown as a value
SMALL_CONTAINER = 20  # containers longer than this show only their length
SMALL_ARRAY = 8  # arrays with at most this many elements show their values

Snapshot = dict[str, tuple[int, str, str]]  # name -> (id, type name, summary)


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


def user_names(namespace: dict, preloaded: dict) -> list[str]:
    """Names of the agent's own variables, sorted."""
    return sorted(
        name for name, value in namespace.items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and not (name in preloaded and preloaded[name] is value)
    )


def snapshot(namespace: dict, preloaded: dict) -> Snapshot:
    """Identity and summary of every user variable, to compare before and after a cell."""
    return {name: (id(namespace[name]), *summarize(namespace[name])) for name in user_names(namespace, preloaded)}


def changes(before: Snapshot, after: Snapshot) -> dict:
    """JSON-safe ``{"new": [[name, type, summary]...], "changed": [...], "deleted": [names]}``."""
    new = [[name, after[name][1], after[name][2]] for name in after if name not in before]
    changed = [[name, after[name][1], after[name][2]] for name in after
               if name in before and before[name] != after[name]]
    deleted = [name for name in before if name not in after]
    return {"new": new, "changed": changed, "deleted": deleted}
