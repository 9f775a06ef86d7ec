"""What one executed cell produced, as the parent process sees it (typed, no stdout parsing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class CellStatus(str, Enum):
    OK = "ok"
    ERROR = "error"  # the cell raised; ``CellResult.error`` holds the compact traceback
    REJECTED = "rejected"  # refused by the static check before running
    TIMEOUT = "timeout"  # interrupted at the per-cell timeout
    CRASHED = "crashed"  # the kernel process died (segfault, OOM kill, CPU limit)
    CANCELLED = "cancelled"  # the question was cancelled while the cell ran
    ANSWERED = "answered"  # ReturnAnswer(...) was accepted; the cell stopped there


@dataclass
class VariableSummary:
    """One line about a namespace variable: ``name: type shape/dtype = small value``."""

    name: str
    type: str
    summary: str


@dataclass
class VariableChanges:
    new: list[VariableSummary] = field(default_factory=list)
    changed: list[VariableSummary] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@dataclass
class ShownImage:
    """An image a cell passed to ``show()``: PNG bytes, long side at most the configured size."""

    label: str
    png: bytes
    width: int
    height: int


@dataclass
class RestartReport:
    """What a kernel restart (after a timeout or crash) did to the namespace."""

    reason: str
    restored: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


@dataclass
class CellResult:
    status: CellStatus
    stdout: str = ""
    stderr: str = ""
    error: str = ""
    variables: VariableChanges = field(default_factory=VariableChanges)
    images: list[ShownImage] = field(default_factory=list)
    answer: dict | None = None  # the accepted ReturnAnswer payload (see answers.Answer.to_dict)
    restart: RestartReport | None = None
    duration_s: float = 0.0
