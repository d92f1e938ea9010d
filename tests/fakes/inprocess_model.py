"""A `Model` that replays a script in-process, one step per `complete`.

Each reply is written as the server would send it (an OpenAI chat-completions message)
and decoded by the product's own `decode_response`, so the loop sees exactly the `Turn`s
the real client would give it: raw `tool_calls` kept in the message, malformed arguments
turned into `ToolCall.error`, Qwen3-Coder `<tool_call>` text parsed. Only the HTTP and the
retries are left out; a `ModelError` step stands for what they end in.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from workers.engine.llm.client import decode_response
from workers.engine.llm.errors import ModelError
from workers.engine.llm.types import Message, ToolSchema, Turn, Usage

RawCall = dict[str, Any]
"""One OpenAI tool call without its id (ids are given per turn, as a server would)."""


@dataclass(frozen=True)
class Reply:
    message: Message
    finish_reason: str
    usage: Usage | None = None


Step = Reply | ModelError


def call(name: str, /, **arguments: Any) -> RawCall:
    return {"type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def malformed(name: str, arguments: str) -> RawCall:
    """A call whose arguments are sent as given, e.g. JSON cut short."""
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def calls(
    *raw: RawCall,
    content: str | None = None,
    finish_reason: str = "tool_calls",
    usage: Usage | None = None,
) -> Reply:
    return Reply(
        {"role": "assistant", "content": content, "tool_calls": list(raw)}, finish_reason, usage
    )


def text(content: str, *, finish_reason: str = "stop", usage: Usage | None = None) -> Reply:
    return Reply({"role": "assistant", "content": content}, finish_reason, usage)


class ScriptExhausted(AssertionError):
    """The loop asked for more turns than the test scripted."""


class ScriptedModel:
    def __init__(
        self, steps: Iterable[Step], *, usage: Usage | None = None, window: int | None = None
    ) -> None:
        self.steps = list(steps)
        self.window = window
        self.max_tokens: list[int | None] = []
        self.usage = usage or Usage(prompt_tokens=100, completion_tokens=20)
        """Reported for each reply that names none."""
        self.requests: list[list[Message]] = []
        self.tools: list[list[ToolSchema]] = []
        self.turns: list[Turn] = []

    def context_window(self) -> int | None:
        return self.window

    def complete(
        self, messages: list[Message], tools: list[ToolSchema], *, max_tokens: int | None = None
    ) -> Turn:
        self.max_tokens.append(max_tokens)
        # Copied: the loop goes on appending to the very list it passed in.
        self.requests.append(copy.deepcopy(messages))
        self.tools.append(copy.deepcopy(tools))
        index = len(self.requests) - 1
        if index >= len(self.steps):
            raise ScriptExhausted(f"request {index + 1} but only {len(self.steps)} step(s)")
        step = self.steps[index]
        if isinstance(step, ModelError):
            raise step
        message = copy.deepcopy(step.message)
        for number, raw in enumerate(message.get("tool_calls") or []):
            raw.setdefault("id", f"call_{index + 1}_{number}")
        usage = step.usage or self.usage
        turn = decode_response(
            {
                "choices": [{"index": 0, "message": message, "finish_reason": step.finish_reason}],
                "usage": {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
                },
            },
            tools,
        )
        self.turns.append(turn)
        return turn
