"""A job's trajectory records turned into what the dashboard shows: the stages, the
turns with their tool calls, tests before and after, tokens and where the time went."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from bot.contract.events import (
    CommandData,
    DiffData,
    Event,
    MessageData,
    PackData,
    Payload,
    RestartData,
    ResultData,
    StartData,
    StopData,
    TestsData,
    VerifyData,
    payload,
)
from bot.contract.store import RecordView

HEAD_LINES = 8
PULL_URL = re.compile(r"https?://\S+/pull/\d+")


class CallView(BaseModel):
    name: str
    arguments: str
    head: str = ""
    rest: str = ""
    rest_lines: int = 0
    elapsed_s: float | None = None


class TurnView(BaseModel):
    number: int
    text: str
    calls: list[CallView] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    latency_s: float = 0.0
    notes: list[str] = Field(default_factory=list)
    """What the harness said back without a tool call (nudges)."""


class StageView(BaseModel):
    at: datetime
    label: str
    detail: str = ""


class Costs(BaseModel):
    """What a run spent: model tokens and time, and time in the sandbox (tools, setup,
    tests). One accounting for the dashboard and the worker's metrics."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    model_s: float = 0.0
    sandbox_s: float = 0.0
    model_calls: int = 0

    def add(self, event: str, data: dict[str, Any]) -> None:
        """Count one trajectory record."""
        self.count(payload(event, data))

    def count(self, found: Payload | None) -> None:
        if isinstance(found, CommandData | TestsData):
            self.sandbox_s += found.duration_s
        elif isinstance(found, VerifyData):
            self.sandbox_s += found.tests.duration_s if found.tests else 0.0
        elif isinstance(found, MessageData) and found.message.get("role") == "assistant":
            usage = found.usage or {}
            self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.completion_tokens += int(usage.get("completion_tokens") or 0)
            self.cached_tokens += int(usage.get("cached_tokens") or 0)
            self.model_s += found.latency_s or 0.0
            self.model_calls += 1
        elif isinstance(found, MessageData) and found.elapsed_s is not None:
            self.sandbox_s += found.elapsed_s


class JobSummary(Costs):
    stages: list[StageView] = Field(default_factory=list)
    turns: list[TurnView] = Field(default_factory=list)
    task: str = ""
    tests_before: str | None = None
    tests_after: str | None = None
    verdict: str | None = None
    diff: str = ""
    last_record: int = 0

    @property
    def cache_ratio(self) -> float | None:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else None


def split_output(text: str) -> tuple[str, str, int]:
    """The first few lines, the rest, and how many lines the rest has."""
    lines = text.splitlines()
    if len(lines) <= HEAD_LINES + 2:
        return text, "", 0
    return "\n".join(lines[:HEAD_LINES]), "\n".join(lines[HEAD_LINES:]), len(lines) - HEAD_LINES


def _at(data: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(float(data.get("time") or 0), UTC)


def _stage(event: str, found: Payload | None) -> tuple[str, str] | None:
    """(label, detail) of the records that mark a stage of the run."""
    if isinstance(found, CommandData):
        return event, f"`{found.command}` exit {found.exit_code} in {found.duration_s:.1f}s"
    if isinstance(found, TestsData):
        label = "tests before" if event == Event.TESTS_BEFORE else "tests on the head"
        return label, found.summary()
    if isinstance(found, PackData):
        full = found.counts.get("full", 0)
        return "packed the repository", f"{found.tokens} tokens; {full} files in full"
    if isinstance(found, RestartData):
        return "restarted the conversation", (
            f"restart {found.restart} after {found.turns} turns: {found.prompt_tokens} of "
            f"{found.limit} tokens used; went on with a {found.account_tokens}-token account"
        )
    if isinstance(found, VerifyData):
        verdict = found.verdict
        # Older records carry only the verdict; newer ones the judgement's status and reason.
        status = found.status or ("resolved" if verdict.get("resolved") else "rejected")
        shown = {"resolved": "accepted", "unresolved": "rejected"}.get(status, status)
        return "verified by the harness", f"{shown}: {found.reason or verdict.get('reason')}"
    if isinstance(found, StopData):
        return "agent stopped", f"{found.status}: {found.reason}"
    if isinstance(found, ResultData):
        return "result", f"{found.status}: {found.reason}"
    if isinstance(found, StartData):
        return "started", f"base {found.base[:7]}; config {found.config_source}"
    return None


def _arguments(raw: Any) -> str:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return str(raw)
    return json.dumps(raw, indent=2, ensure_ascii=False)


def summarise(records: list[RecordView]) -> JobSummary:
    out = JobSummary()
    turn: TurnView | None = None
    for record in records:
        data, event = record.data, record.event
        out.last_record = record.id
        found = payload(event, data)
        stage = _stage(event, found)
        if stage is not None:
            out.stages.append(StageView(at=_at(data), label=stage[0], detail=stage[1]))
        out.count(found)
        if isinstance(found, TestsData) and event == Event.TESTS_BEFORE:
            out.tests_before = found.summary()
        elif isinstance(found, VerifyData):
            out.tests_after = (found.tests or TestsData()).summary()
            out.verdict = found.reason or found.verdict.get("reason")
        elif isinstance(found, DiffData):
            out.diff = found.diff
        elif isinstance(found, StartData):
            out.task = found.issue
        if not isinstance(found, MessageData):
            continue
        message = found.message
        role = message.get("role")
        if role == "assistant":
            usage = found.usage or {}
            turn = TurnView(
                number=len(out.turns) + 1,
                text=str(message.get("content") or ""),
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                cached_tokens=int(usage.get("cached_tokens") or 0),
                latency_s=found.latency_s or 0.0,
            )
            out.turns.append(turn)
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                turn.calls.append(
                    CallView(
                        name=str(function.get("name") or "tool"),
                        arguments=_arguments(function.get("arguments")),
                    )
                )
            names = [c.name for c in turn.calls]
            out.stages.append(
                StageView(
                    at=_at(data),
                    label=f"turn {turn.number}",
                    detail=", ".join(names) or "no tool call",
                )
            )
        elif role == "tool" and turn is not None:
            head, rest, lines = split_output(str(message.get("content") or ""))
            elapsed = found.elapsed_s
            # Results come in the order of the calls; an accepted submit has none.
            call = next((c for c in turn.calls if c.elapsed_s is None), None)
            if call is None:
                call = CallView(
                    name=found.tool or "tool",
                    arguments=_arguments(data.get("arguments")),
                )
                turn.calls.append(call)
            call.head, call.rest, call.rest_lines = head, rest, lines
            call.elapsed_s = float(elapsed or 0)
        elif role == "user" and turn is not None:
            turn.notes.append(str(message.get("content") or ""))
    return out


def pull_url(reason: str | None) -> str | None:
    found = PULL_URL.search(reason or "")
    return found.group(0) if found else None
