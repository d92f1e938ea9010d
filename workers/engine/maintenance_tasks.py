"""A maintenance task as `.qwenfix.yml` (`maintenance:`) or the operator declares it."""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workers.engine.cron import Cron, CronError

TaskKind = Literal[
    "fix-failing-tests", "update-dependencies", "lint-fix", "repair-dependency-prs", "custom"
]
TASK_KINDS: tuple[str, ...] = get_args(TaskKind)
DEPENDENCY_BOTS = ["dependabot[bot]", "renovate[bot]"]
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")


class MaintenanceTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: TaskKind
    schedule: str | None = None
    """Cron, in UTC (e.g. "0 4 * * 1"); without one the task runs only when asked."""
    name: str | None = None
    """Names the task (its branch, `@qwenfix maintain NAME`); default: the task kind."""
    prompt: str | None = None
    """custom: what the model is asked to do."""
    title: str | None = None
    """The pull request's title (a default per task)."""
    command: str | None = None
    """lint-fix: the linter, which must exit 0 (detected: ruff, flake8, npm run lint).
    update-dependencies: an upgrade command run instead of qwenfix's own."""
    fix: str | None = None
    """lint-fix: an auto-fixer run before the linter (e.g. `ruff check --fix .`)."""
    allow_major: bool = False
    """update-dependencies: also move pins across major versions."""
    authors: list[str] = Field(default_factory=lambda: list(DEPENDENCY_BOTS))
    """repair-dependency-prs: whose pull requests are repaired."""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Cron.parse(value)
            except CronError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError(
                f"{value!r} is not a task name: lowercase letters, digits and dashes, at most 48"
            )
        return value

    @model_validator(mode="after")
    def _needs(self) -> MaintenanceTask:
        if self.task == "custom" and not (self.prompt or "").strip():
            raise ValueError("a custom task needs a prompt:")
        if self.prompt and self.task != "custom":
            raise ValueError(f"prompt: is for custom tasks, not {self.task}")
        return self

    @property
    def id(self) -> str:
        return self.name or self.task

    @property
    def branch(self) -> str:
        return f"qwenfix/maintenance/{self.id}"

    def cron(self) -> Cron | None:
        return Cron.parse(self.schedule) if self.schedule else None


def check_unique(tasks: list[MaintenanceTask]) -> list[MaintenanceTask]:
    seen: set[str] = set()
    for task in tasks:
        if task.id in seen:
            raise ValueError(f"two maintenance tasks are called {task.id!r}; give one a name:")
        seen.add(task.id)
    return tasks


def find_task(tasks: list[MaintenanceTask], name: str) -> MaintenanceTask | None:
    """The task called `name`; a built-in kind that is not configured runs with defaults
    (except custom, which needs a prompt)."""
    for task in tasks:
        if task.id == name:
            return task
    if name in TASK_KINDS and name != "custom":
        return MaintenanceTask(task=name)  # type: ignore[arg-type]
    return None
