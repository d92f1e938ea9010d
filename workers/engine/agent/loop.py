"""The agent loop: ask the model, run its tool calls in the sandbox, repeat.

The conversation is append-only (earlier messages, assistant turns included, are sent back
exactly as received) so that vLLM's prefix cache is reused on every turn. The loop ends
only by a StopRun exception carrying the reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel

from bot.contract.events import Event
from bot.contract.job import StopRequest
from workers.engine.agent.stops import (
    Cancelled,
    ContextFull,
    ModelFailed,
    Resolved,
    Status,
    StopRun,
    Stuck,
    TimeLimit,
    TokenLimit,
    TurnLimit,
    Unverified,
)
from workers.engine.agent.tools import SubmitRequested, Toolbox, ToolError
from workers.engine.agent.trajectory import Trajectory
from workers.engine.agent.window import ContextWindow
from workers.engine.llm.errors import ModelError
from workers.engine.llm.types import Message, Model, ToolCall, Turn, Usage

log = logging.getLogger(__name__)

REPEAT_WARN = 3
REPEAT_STOP = 5
NO_CALL_NUDGE = (
    "Your reply did not call a tool. Use the tools to work on the issue; when the fix is "
    "complete and the tests pass, call `submit`."
)
CUT_NOTE = (
    "Your reply was cut off at the output token limit before it ended, so nothing in it was "
    "run. Send it again in smaller pieces: edit a file instead of rewriting it, or write a "
    "large file in parts."
)


class Limits(BaseModel):
    max_turns: int = 50
    max_total_tokens: int = 10_000_000
    max_wall_s: float = 1800.0


class SubmitOutcome(BaseModel):
    accepted: bool
    message: str
    """What the model is told when not accepted; the reason when accepted."""
    status: Literal["resolved", "unverified"] = "resolved"
    """What an accepted submission ends the run as."""


class AgentResult(BaseModel):
    status: Status
    reason: str
    turns: int
    usage: Usage
    summary: str | None = None
    title: str | None = None
    declined: list[str] = []
    duration_s: float
    refused_status: int | None = None
    """The HTTP status with which the model server refused a request, when that ended
    the run."""
    prompt_tokens: int | None = None
    """The size of the conversation when it filled the context window."""
    stopped_by: str | None = None
    """Who asked the run to stop, when that ended it."""


class Agent:
    def __init__(
        self,
        model: Model,
        toolbox: Toolbox,
        *,
        on_submit: Callable[[SubmitRequested], SubmitOutcome],
        limits: Limits,
        trajectory: Trajectory,
        clock: Callable[[], float] = time.monotonic,
        cancelled: Callable[[], StopRequest | None] = lambda: None,
        window: ContextWindow | None = None,
    ) -> None:
        """`cancelled()` says who asked the run to stop, or None to go on; `window`, when
        given, sizes every request to the model's context window."""
        self.model = model
        self.toolbox = toolbox
        self.on_submit = on_submit
        self.limits = limits
        self.trajectory = trajectory
        self.clock = clock
        self.cancelled = cancelled
        self.window = window
        self.messages: list[Message] = []
        self.turns = 0
        self.usage = Usage()
        self._last_action: str | None = None
        self._repeats = 0
        self._submission: SubmitRequested | None = None

    def run(
        self, messages: list[Message], *, after: AgentResult | None = None, recorded: int = 0
    ) -> AgentResult:
        """Run from `messages`, of which the first `recorded` are in the trajectory already;
        `after` is the earlier part of the same run (before a restart), whose turns, tokens
        and time count against the limits."""
        self.messages = list(messages)
        started = self.clock()
        if after is not None:
            self.turns, self.usage = after.turns, after.usage
            started -= after.duration_s
        for message in self.messages[recorded:]:
            self.trajectory.record(Event.MESSAGE, message=message)
        try:
            while True:
                self._check_limits(started)
                self.step()
        except StopRun as stop:
            log.info("agent stopped after %d turn(s): %s: %s", self.turns, stop.status, stop.reason)
            self.trajectory.record(
                Event.STOP, kind=type(stop).__name__, status=stop.status, reason=stop.reason
            )
            return AgentResult(
                status=stop.status,
                reason=stop.reason,
                turns=self.turns,
                usage=self.usage,
                summary=self._submission.summary if self._submission else None,
                title=self._submission.title if self._submission else None,
                declined=list(getattr(self._submission.payload, "declined", []) or [])
                if self._submission
                else [],
                duration_s=round(self.clock() - started, 3),
                refused_status=stop.data.get("status") if isinstance(stop, ModelFailed) else None,
                prompt_tokens=stop.data.get("prompt_tokens")
                if isinstance(stop, ContextFull)
                else None,
                stopped_by=stop.by if isinstance(stop, Cancelled) else None,
            )

    def _check_limits(self, started: float) -> None:
        if (stop := self.cancelled()) is not None:
            raise Cancelled(stop.why, by=stop.by)
        if self.turns >= self.limits.max_turns:
            raise TurnLimit(f"turn limit reached ({self.limits.max_turns} turns)")
        if self.usage.total >= self.limits.max_total_tokens:
            raise TokenLimit(
                f"token limit reached ({self.usage.total} of {self.limits.max_total_tokens})"
            )
        if self.clock() - started >= self.limits.max_wall_s:
            raise TimeLimit(f"time limit reached ({self.limits.max_wall_s:g}s)")

    def step(self) -> None:
        tools = self.toolbox.schemas
        max_tokens = self.window.budget(self.messages, tools) if self.window else None
        self.trajectory.record(
            Event.REQUEST,
            turn=self.turns + 1,
            messages=len(self.messages),
            prompt_tokens=self.window.last_count if self.window else None,
            max_tokens=max_tokens,
        )
        try:
            turn = self.model.complete(self.messages, tools, max_tokens=max_tokens)
        except ModelError as exc:
            raise ModelFailed(str(exc), status=exc.status, attempts=exc.attempts) from exc
        if self.window:
            self.window.calibrate(turn.usage.prompt_tokens)
        self.turns += 1
        self.usage += turn.usage
        self._append(
            turn.message,
            latency_s=turn.latency_s,
            usage=turn.usage.model_dump(),
            finish_reason=turn.finish_reason,
            raw_tool_text=turn.raw_tool_text,
        )
        if turn.finish_reason == "length":
            # Cut off at max_tokens: a call in it may have lost its end (half a file).
            log.info("turn %d: cut off at the output limit; nothing run", self.turns)
            self._observe_repeat(f"cut:{turn.content}", "")
            if turn.message.get("tool_calls"):  # every call announced needs its answer
                for call in turn.tool_calls:
                    self._append(self._tool_message(call, CUT_NOTE), tool=call.name)
            else:
                self._append({"role": "user", "content": self._with_repeat_note(CUT_NOTE)})
            return
        if not turn.tool_calls:
            log.info("turn %d: no tool call", self.turns)
            self._observe_repeat(f"text:{turn.content}", "")
            self._append({"role": "user", "content": self._with_repeat_note(NO_CALL_NUDGE)})
            return
        self._run_calls(turn)

    def _run_calls(self, turn: Turn) -> None:
        observations = []
        for call in turn.tool_calls:
            log.info("turn %d: %s %s", self.turns, call.name, _brief(call.arguments))
            started = time.monotonic()
            try:
                observation = self.toolbox.execute(call)
            except ToolError as exc:
                observation = f"ERROR: {exc}"
            except SubmitRequested as submit:
                self._submission = submit
                outcome = self.on_submit(submit)
                if outcome.accepted:
                    stop = Unverified if outcome.status == "unverified" else Resolved
                    raise stop(outcome.message) from None
                observation = outcome.message
            observations.append((call, observation, round(time.monotonic() - started, 3)))
        key = json.dumps([[c.name, c.arguments] for c in turn.tool_calls], sort_keys=True)
        self._observe_repeat(key, "\n".join(o for _, o, _ in observations))
        contents = [o for _, o, _ in observations]
        contents[-1] = self._with_repeat_note(contents[-1])
        if self.window:
            contents = self.window.fit(self.messages, self.toolbox.schemas, contents)
        for (call, _, elapsed), content in zip(observations, contents, strict=True):
            self._append(
                self._tool_message(call, content),
                tool=call.name,
                arguments=call.arguments,
                elapsed_s=elapsed,
            )

    @staticmethod
    def _tool_message(call: ToolCall, content: str) -> Message:
        return {"role": "tool", "tool_call_id": call.id, "content": content}

    def _observe_repeat(self, action: str, observation: str) -> None:
        fingerprint = hashlib.sha256(f"{action}\0{observation}".encode()).hexdigest()
        self._repeats = self._repeats + 1 if fingerprint == self._last_action else 1
        self._last_action = fingerprint
        if self._repeats >= REPEAT_STOP:
            raise Stuck(
                f"stuck: the model repeated the same action with the same result "
                f"{self._repeats} times",
                action=action[:500],
            )

    def _with_repeat_note(self, text: str) -> str:
        if self._repeats >= REPEAT_WARN:
            return (
                f"{text}\n\n[qwenfix: you have now done exactly this {self._repeats} times "
                "with the same result. Try something different, or the run will be "
                "stopped as stuck.]"
            )
        return text

    def _append(self, message: Message, **meta: object) -> None:
        self.messages.append(message)
        self.trajectory.record(Event.MESSAGE, message=message, **meta)


def _brief(arguments: dict[str, object], limit: int = 80) -> str:
    text = " ".join(f"{k}={v!r}" for k, v in arguments.items() if k not in ("content", "new_str"))
    return text if len(text) <= limit else text[:limit] + "…"
