"""The model's context window, kept: every request is counted before it is sent, its
`max_tokens` is what the window leaves, new observations are cut to the room there is,
and when not even a short reply fits, the run stops with `ContextFull` (never a request
the server must refuse). History already sent is never rewritten: that would throw away
the prefix cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel

from workers.engine.agent.stops import ContextFull
from workers.engine.llm.types import Message, ToolSchema

CUT_NOTE = (
    "[qwenfix: {cut} tokens of this output were cut here to fit the model's context "
    "window; ask for less at a time (a narrower command, `| head`, a line range)]"
)
OBSERVATION_FLOOR = 200
"""Tokens an observation keeps however full the window: an error's gist."""
OBSERVATION_SHARE = 4
"""A turn's outputs take at most 1/OBSERVATION_SHARE of the room the window has left."""
MESSAGE_OVERHEAD = 12
"""Tokens a tool result adds around its text (role markers, response tags)."""


class PromptCounting(Protocol):
    def count(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int: ...

    def count_text(self, text: str) -> int: ...

    def shorten(self, text: str, tokens: int, note: str) -> str: ...


class WindowSize(BaseModel):
    """How big the window is and what a reply needs of it."""

    limit: int
    """The server's window: prompt and reply together."""
    max_output: int = 8192
    """A reply's `max_tokens` when there is room."""
    min_output: int = 1024
    """Below this much room for the reply, the conversation is full."""
    margin: int = 32
    """Tokens kept free for what counting cannot see before the first answer (a server
    template that differs from ours)."""


class ContextWindow:
    def __init__(self, size: WindowSize, counter: PromptCounting) -> None:
        self.size = size
        self.counter = counter
        self.drift = 0
        """The most the server counted above us so far; added to every later count."""
        self.last_count = 0

    def prompt_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
        """The prompt's size as the server will see it, by our count (kept in `last_count`)
        plus the drift and the margin."""
        self.last_count = self.counter.count(messages, tools)
        return self.last_count + self.drift + self.size.margin

    def budget(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
        """The reply's `max_tokens` for this request; ContextFull when too little is left."""
        prompt = self.prompt_tokens(messages, tools)
        room = self.size.limit - prompt
        if room < self.size.min_output:
            raise ContextFull(
                f"the conversation fills the model's context window ({prompt} of "
                f"{self.size.limit} tokens; a reply needs {self.size.min_output})",
                prompt_tokens=prompt,
                limit=self.size.limit,
            )
        return min(self.size.max_output, room)

    def calibrate(self, reported_prompt_tokens: int) -> None:
        """The server's own count of the last request, to correct ours from now on."""
        if reported_prompt_tokens > 0:
            self.drift = max(self.drift, reported_prompt_tokens - self.last_count)

    def fit(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema], observations: list[str]
    ) -> list[str]:
        """The observations about to be appended, each cut so that the next request still
        leaves a full reply's room. Later observations get less as the window fills."""
        prompt = self.prompt_tokens(messages, tools)
        spare = self.size.limit - prompt - self.size.max_output
        spare -= MESSAGE_OVERHEAD * len(observations)
        # A turn's observations take at most a quarter of the room left, so the window
        # fills gradually (each later output gets less) instead of in one long output.
        share = max(OBSERVATION_FLOOR, spare // (OBSERVATION_SHARE * max(1, len(observations))))
        fitted = []
        for text in observations:
            size = self.counter.count_text(text)
            if size <= share:
                fitted.append(text)
                continue
            note = CUT_NOTE.format(cut=size - share)
            fitted.append(self.counter.shorten(text, share, note))
        return fitted
