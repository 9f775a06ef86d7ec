"""Per-question session logs (trace, inputs, images, result) and their HTML report."""

from .log import SessionLog, read_trace
from .report import write_report

__all__ = ["SessionLog", "read_trace", "write_report"]
