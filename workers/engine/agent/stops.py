"""Why a run stopped: typed exceptions carrying data, raised inside the loop."""

from __future__ import annotations

from typing import Any, Literal

Status = Literal["resolved", "unresolved", "unverified", "context_full", "error", "stopped"]


class StopRun(Exception):
    status: Status = "unresolved"

    def __init__(self, reason: str, **data: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.data = data


class Resolved(StopRun):
    status: Status = "resolved"


class Unverified(StopRun):
    """Submitted again unchanged after being told it passes only with its own edits to
    the tests: handed to the maintainers as it is, never as a fix."""

    status: Status = "unverified"


class TurnLimit(StopRun):
    pass


class TokenLimit(StopRun):
    pass


class TimeLimit(StopRun):
    pass


class Stuck(StopRun):
    pass


class ContextFull(StopRun):
    """Not even a short reply fits the model's context window any more (after the
    restarts allowed): the run cannot go on, which is not an error of the run."""

    status: Status = "context_full"


class Cancelled(StopRun):
    """Someone asked the run to stop (checked before each request to the model)."""

    status: Status = "stopped"

    def __init__(self, reason: str, *, by: str) -> None:
        super().__init__(reason, by=by)
        self.by = by


class ModelFailed(StopRun):
    status: Status = "error"


class SandboxFailed(StopRun):
    status: Status = "error"
