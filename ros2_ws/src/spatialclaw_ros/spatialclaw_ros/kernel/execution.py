"""Running one cell in the worker: captured output, last-expression echo, compact tracebacks.

Like a notebook, the value of a final bare expression is printed. Errors come back as three short
lines at most: the exception, the cell line it passed through last, and the innermost library
frame when the error was raised inside a tool or library.
"""

from __future__ import annotations

import ast
import functools
import os
import sys
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import Callable, ContextManager

from .namespace import AnswerAccepted

OUTPUT_CAP_CHARS = 1_000_000  # per stream and cell, kept in the worker
MESSAGE_CHARS = 2000  # longest exception message kept


class CappedText:
    """A write-only text stream that keeps the first OUTPUT_CAP_CHARS characters and counts the rest."""

    def __init__(self, cap: int = OUTPUT_CAP_CHARS) -> None:
        self._parts: list[str] = []
        self._kept = 0
        self._dropped = 0
        self._cap = cap

    def write(self, text: str) -> int:
        text = str(text)
        room = self._cap - self._kept
        self._parts.append(text[:room])
        self._kept += min(len(text), room)
        self._dropped += max(0, len(text) - room)
        return len(text)

    def flush(self) -> None:
        """Nothing to flush; present for code that calls it."""

    def isatty(self) -> bool:
        return False

    def getvalue(self) -> str:
        text = "".join(self._parts)
        if self._dropped:
            text += f"\n[... {self._dropped} more characters of output dropped]"
        return text


@dataclass
class CellOutcome:
    """What the worker reports about a cell (status: ok, error or interrupted)."""

    status: str
    stdout: str
    stderr: str
    error: str = ""


@functools.cache
def _host_paths() -> tuple[tuple[str, str], ...]:
    """(host path, replacement) pairs, longest first: the scratch dir (the cwd) and every import root become ``.``
    and drop out of the paths below them; what else lies in the Python installation becomes ``<python>``."""
    relative = [os.getcwd(), *(entry for entry in sys.path if entry)]
    installation = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    pairs = {}
    for roots, name in ((installation, "<python>"), (relative, ".")):
        for root in (root.rstrip("/") for root in roots):
            pairs.update({root + "/": "" if name == "." else name + "/", root: name})
    return tuple(sorted(pairs.items(), key=lambda pair: -len(pair[0])))


def scrub_paths(text: str) -> str:
    """``text`` without the host's directories: what the model sees must not show where things live."""
    for directory, replacement in _host_paths():
        text = text.replace(directory, replacement)
    return text


def cell_lines(source: str) -> list[str]:
    """The cell's lines as Python numbers them (only \\n, \\r\\n and \\r end a line, not U+2028 or U+0085)."""
    return source.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def compact_error(exc: BaseException, cell_name: str, lines: list[str], memory_limit_mb: int = 0) -> str:
    """``Type: message``, the last cell line the error passed through, and the innermost library frame."""
    message = str(exc)
    if isinstance(exc, MemoryError):
        limit = f" of {memory_limit_mb} MB" if memory_limit_mb else ""
        message = (f"the cell ran out of memory (kernel limit{limit}); work on smaller arrays or "
                   "downsampled images, and del large variables you no longer need")
    if len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS] + " ..."
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if isinstance(exc, SyntaxError) and exc.filename == cell_name and exc.lineno:
        source = lines[exc.lineno - 1].strip() if 0 < exc.lineno <= len(lines) else ""
        return f"SyntaxError: {exc.msg}\n  cell line {exc.lineno}: {source}"
    frames = [(frame.f_code.co_filename, frame.f_code.co_name, lineno)
              for frame, lineno in traceback.walk_tb(exc.__traceback__)]
    in_cell = [lineno for filename, _, lineno in frames if filename == cell_name]
    if in_cell:
        lineno = in_cell[-1]
        source = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
        text += f"\n  cell line {lineno}: {source}"
    if frames and frames[-1][0] != cell_name and not isinstance(exc, KeyboardInterrupt):
        filename, function, lineno = frames[-1]
        text += f"\n  raised in {scrub_paths(filename)}:{function}:{lineno}"
    return text


def _compile(source: str, cell_name: str):
    """Compile a cell into (body code, final-expression code or None)."""
    tree = ast.parse(source, filename=cell_name, mode="exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    body = compile(tree, cell_name, "exec", dont_inherit=True)  # not this module's `from __future__` imports
    return body, (compile(last, cell_name, "eval", dont_inherit=True) if last is not None else None)


def run_cell(source: str, namespace: dict, cell_name: str, interruptible: Callable[[], ContextManager],
             memory_limit_mb: int = 0) -> CellOutcome:
    """Execute ``source`` in ``namespace``; KeyboardInterrupt (the parent's SIGINT) is reported, not raised.

    ``interruptible()`` marks the stretch where the parent's SIGINT may raise; outside it the
    worker's own bookkeeping cannot be interrupted.
    """
    out, err = CappedText(), CappedText()
    lines = cell_lines(source)
    status, error = "ok", ""
    try:
        with interruptible(), redirect_stdout(out), redirect_stderr(err):
            body, last = _compile(source, cell_name)
            exec(body, namespace)
            if last is not None:
                value = eval(last, namespace)
                if value is not None:
                    print(repr(value))
    except AnswerAccepted:
        pass
    except KeyboardInterrupt as exc:
        status, error = "interrupted", compact_error(exc, cell_name, lines)
    except BaseException as exc:  # the agent's code may raise anything, SystemExit included
        status, error = "error", compact_error(exc, cell_name, lines, memory_limit_mb)
    return CellOutcome(status=status, stdout=scrub_paths(out.getvalue()), stderr=scrub_paths(err.getvalue()),
                       error=scrub_paths(error))
