"""Model access: the chat client, message builders and a scripted OpenAI-compatible server for tests."""

from .client import ROLES, ChatModel, ChatReply, ModelError, Usage

__all__ = ["ROLES", "ChatModel", "ChatReply", "ModelError", "Usage"]
