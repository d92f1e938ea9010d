"""The events of a run's trajectory and what each carries: written by the fix engine (JSONL,
and the job's store through its sink), which checks each record against its model, and read
by the dashboard through the same models. One list, so writer and reader cannot drift."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Event(StrEnum):
    START = "start"
    """The run's base commit, issue and repository config."""
    UPGRADE = "upgrade"
    SETUP = "setup"
    SETUP_REUSED = "setup_reused"
    """A prepared sandbox from the setup cache stood in for setup."""
    SNAPSHOT = "snapshot"
    ENVIRONMENT = "environment"
    AUTOFIX = "autofix"
    CHECK = "check"
    TESTS_BEFORE = "tests_before"
    TESTS_HEAD = "tests_head"
    PACK = "pack"
    REPACK = "repack"
    RESTART = "restart"
    """The conversation filled the model's window and began again from its first messages
    and an account of the run so far."""
    REQUEST = "request"
    MESSAGE = "message"
    VERIFY = "verify"
    STOP = "stop"
    DIFF = "diff"
    RESULT = "result"


class Payload(BaseModel):
    """What an event carries. Fields the dashboard reads are named; the rest is kept as
    written (`extra="allow"`), so the JSONL file is the whole record."""

    model_config = ConfigDict(extra="allow")


class StartData(Payload):
    base: str = ""
    issue: str = ""
    config_source: str | None = None


class CommandData(Payload):
    """A command run in the sandbox by the harness (setup, upgrade, autofix, check)."""

    command: str | None = None
    exit_code: int | None = None
    timed_out: bool = False
    duration_s: float = 0.0


class TestsData(Payload):
    """A run of the repository's tests, with per-test outcomes when the runner gave them."""

    __test__ = False  # not a pytest test class

    command: str | None = None
    exit_code: int | None = None
    timed_out: bool = False
    duration_s: float = 0.0
    tests: dict[str, str] | None = None

    def summary(self) -> str:
        if self.timed_out:
            return "timed out"
        state = "passed" if self.exit_code == 0 else f"failed (exit {self.exit_code})"
        if not self.tests:
            return state
        counts: dict[str, int] = {}
        for outcome in self.tests.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        return f"{state}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


class PackData(Payload):
    tokens: int = 0
    budget: int = 0
    counts: dict[str, int] = Field(default_factory=dict)


class RestartData(Payload):
    restart: int = 0
    """1 for the first restart of the run."""
    turns: int = 0
    """Turns made before it, over the whole run."""
    prompt_tokens: int = 0
    """The conversation's size when it was full."""
    limit: int = 0
    account_tokens: int = 0
    reason: str = ""


class VerifyData(Payload):
    status: str | None = None
    reason: str | None = None
    verdict: dict[str, Any] = Field(default_factory=dict)
    tests: TestsData | None = None
    """The base commit's tests over the change, in a fresh sandbox."""


class StopData(Payload):
    kind: str = ""
    status: str = ""
    reason: str = ""


class ResultData(Payload):
    status: str = ""
    reason: str = ""


class DiffData(Payload):
    diff: str = ""


class MessageData(Payload):
    """One message of the conversation; an assistant's with its usage and latency, a tool
    result with the call's time in the sandbox."""

    message: dict[str, Any] = Field(default_factory=dict)
    usage: dict[str, Any] | None = None
    latency_s: float | None = None
    elapsed_s: float | None = None
    tool: str | None = None


PAYLOADS: dict[Event, type[Payload]] = {
    Event.START: StartData,
    Event.UPGRADE: CommandData,
    Event.SETUP: CommandData,
    Event.AUTOFIX: CommandData,
    Event.CHECK: CommandData,
    Event.TESTS_BEFORE: TestsData,
    Event.TESTS_HEAD: TestsData,
    Event.PACK: PackData,
    Event.RESTART: RestartData,
    Event.VERIFY: VerifyData,
    Event.STOP: StopData,
    Event.RESULT: ResultData,
    Event.DIFF: DiffData,
    Event.MESSAGE: MessageData,
}


def payload(event: str, data: dict[str, Any]) -> Payload | None:
    """An event's data as its model, for reading; None for an event without one, or a
    record that does not fit it (written by another version, or cut)."""
    try:
        model = PAYLOADS.get(Event(event))
    except ValueError:
        return None
    if model is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None
