"""The agent loop: a model writes one Python cell per step into a sandboxed kernel until it answers."""

from .context import ContextReport
from .loop import Agent
from .result import AgentEvent, AgentResult, ErrorCode

__all__ = ["Agent", "AgentEvent", "AgentResult", "ContextReport", "ErrorCode"]
