"""What a job is, as the receiver creates it and the workers run it: its kind, the
statuses it moves through, what it was asked for, and the names of the tasks that carry it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

CONFIG_FILE = ".qwenfix.yml"
"""A repository's qwenfix configuration, read from its default branch (workers) and
watched in pushes (the receiver)."""
CONFIG_FILES = (CONFIG_FILE, ".github/qwenfix.yml")
"""Where the configuration may be, in order of precedence: the first present is the
configuration, and the others are ignored (`qwenfix config check` says so). The same
paths in the owner's `.github` repository hold the owner-wide defaults."""


class JobKind(StrEnum):
    FIX = "fix"
    REVIEW = "review"
    ADDRESS_FEEDBACK = "address-feedback"
    FIX_CI = "fix-ci"
    MAINTENANCE = "maintenance"
    HELP = "help"
    STOP = "stop"
    RETRY = "retry"


COMMAND_KINDS = frozenset({JobKind.HELP, JobKind.STOP, JobKind.RETRY})
"""Commands about other jobs, answered on the quick queue by the worker that acknowledges
them: never run by the agent, never stopped or retried themselves."""


class JobStatus(StrEnum):
    """Where a job is. The first three are on the way; the rest are final."""

    QUEUED = "queued"
    ACKNOWLEDGED = "acknowledged"
    RUNNING = "running"
    RESOLVED = "resolved"
    UNRESOLVED = "unresolved"
    UNVERIFIED = "unverified"
    CONTEXT_FULL = "context_full"
    """The conversation filled the model's context window, restarts included."""
    NOTHING_TO_DO = "nothing-to-do"
    REVIEWED = "reviewed"
    BLOCKED = "blocked"
    REFUSED = "refused"
    SKIPPED = "skipped"
    ERROR = "error"
    FAILED = "failed"
    STOPPED = "stopped"
    """Someone asked it to stop (`@qwenfix stop`), or closed the issue or pull request."""
    DONE = "done"
    """A command (help, stop, retry) carried out."""

    @property
    def final(self) -> bool:
        return self not in ON_THE_WAY


ON_THE_WAY = frozenset({JobStatus.QUEUED, JobStatus.ACKNOWLEDGED, JobStatus.RUNNING})
FINISHED = frozenset(s for s in JobStatus if s not in ON_THE_WAY)
"""Final statuses, as the dashboard filters by them."""


class TaskName(StrEnum):
    """Celery task names: the receiver sends by name and imports nothing of the workers."""

    ACKNOWLEDGE = "qwenfix.acknowledge"
    RUN = "qwenfix.run"
    MAINTENANCE_TICK = "qwenfix.maintenance.tick"
    REDELIVER = "qwenfix.redeliver"


class Trigger(BaseModel):
    kind: JobKind
    repo: str
    number: int | None
    sender: str
    installation_id: int | None
    instructions: str = ""
    comment_id: int | None = None
    comment_kind: str | None = None
    """issue_comment | review_comment | review, for the 👀 reaction."""
    head_branch: str | None = None
    head_sha: str | None = None
    task: str | None = None
    """The maintenance task asked for (`@qwenfix maintain TASK`, or the schedule's)."""


class StopRequest(BaseModel):
    """Who asked a job to stop, and the sentence that says so on GitHub."""

    by: str
    why: str


class Record(BaseModel):
    """Installation bookkeeping: which repositories the App may work on."""

    installation_id: int
    account: str
    action: str
    added: list[str]
    removed: list[str]
