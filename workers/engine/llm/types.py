"""Small serialisable types shared by the model client and the agent loop."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

Message = dict[str, Any]
ToolSchema = dict[str, Any]


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    """Why the call could not be decoded (bad JSON arguments); the loop answers with it."""


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Turn(BaseModel):
    """One model response, decoded."""

    message: Message
    """The assistant message exactly as received, to be sent back unchanged."""
    content: str | None
    tool_calls: list[ToolCall]
    usage: Usage
    finish_reason: str | None = None
    raw_tool_text: bool = False
    """True when tool calls were parsed from Qwen3-Coder text rather than `tool_calls`."""
    latency_s: float = 0.0


class Model(Protocol):
    def complete(
        self, messages: list[Message], tools: list[ToolSchema], *, max_tokens: int | None = None
    ) -> Turn:
        """One reply; `max_tokens` caps it below the model's own setting when given."""
        ...

    def context_window(self) -> int | None:
        """The server's context window in tokens (prompt and reply), when it says."""
        ...
