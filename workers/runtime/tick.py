"""The scheduler's tick: which maintenance tasks are due, as jobs.

Beat only sends the tick; a worker runs it (the App's key lives with workers). Each
repository is evaluated from where its last evaluation ended (at most `catchup_s` back),
so one repository GitHub could not answer for is simply caught up on the next tick. Each
due run becomes a job whose delivery id is derived from (repository, task, minute): two
ticks over the same window, from two beats or a redelivered tick, create it once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from bot.contract.job import JobKind, Trigger
from bot.contract.schedules import ScheduleStore, ScheduleView
from bot.contract.store import JobStore
from workers.engine.maintenance_tasks import MaintenanceTask
from workers.engine.repo_config import RepoConfigError, parse_repo_config
from workers.jobs.config_source import FoundConfig

log = logging.getLogger(__name__)

ReadConfig = Callable[[str, int], FoundConfig | None]
"""(repository, installation) -> its config file on the default branch and its owner's
defaults, or None when there is neither. Raises when GitHub cannot be asked."""


class TickReport(BaseModel):
    at: datetime
    queued: list[int] = Field(default_factory=list)
    errors: dict[str, str] = Field(default_factory=dict)


def delivery_id(repo: str, task: str, fire: datetime) -> str:
    key = f"{repo}\n{task}\n{fire:%Y-%m-%dT%H:%MZ}".encode()
    return f"schedule:{hashlib.sha256(key).hexdigest()[:40]}"


def schedule_of(
    repo: str,
    installation: int,
    *,
    schedules: ScheduleStore,
    read_config: ReadConfig,
    now: datetime,
    refresh_s: int,
) -> ScheduleView | None:
    """The repository's schedule, read again from GitHub when stale or old. A config that
    cannot be used is recorded with its error; GitHub being unreachable keeps the last."""
    row = schedules.get(repo)
    fresh = (
        row is not None
        and not row.stale
        and row.checked_at is not None
        and row.checked_at > now - timedelta(seconds=refresh_s)
    )
    if fresh:
        return row
    try:
        found = read_config(repo, installation)
    except Exception as exc:  # one repository's trouble must not stop the others
        log.warning(
            "%s: could not read its config (%s: %s); keeping the last schedule",
            repo,
            type(exc).__name__,
            exc,
        )
        return row
    if found is None:
        return schedules.save(repo, config_sha=None, tasks=None, error=None, at=now)
    sha = found.sha
    try:
        config, _ = parse_repo_config(found.raw, path=found.path, defaults=found.defaults)
        tasks = config.maintenance
    except RepoConfigError as exc:
        log.warning("%s: %s", repo, exc)
        return schedules.save(repo, config_sha=sha, tasks=None, error=str(exc), at=now)
    return schedules.save(
        repo,
        config_sha=sha,
        error=None,
        at=now,
        tasks=None
        if tasks is None
        else json.dumps([t.model_dump(exclude_defaults=True) for t in tasks]),
    )


def tasks_of(row: ScheduleView, defaults: list[MaintenanceTask]) -> list[MaintenanceTask]:
    if row.tasks is None:
        return list(defaults)
    return [MaintenanceTask.model_validate(t) for t in json.loads(row.tasks)]


def tick(
    now: datetime,
    *,
    jobs: JobStore,
    schedules: ScheduleStore,
    read_config: ReadConfig,
    enqueue: Callable[[int], None],
    defaults: list[MaintenanceTask],
    catchup_s: int,
    refresh_s: int,
) -> TickReport:
    """Queue every task whose schedule fired since its repository was last evaluated."""
    earliest = now - timedelta(seconds=catchup_s)
    report = TickReport(at=now)
    for repo, installation in sorted(jobs.installations().items()):
        row = schedule_of(
            repo,
            installation,
            schedules=schedules,
            read_config=read_config,
            now=now,
            refresh_s=refresh_s,
        )
        if row is None:
            continue  # not readable yet: evaluated once it is
        if row.error:
            report.errors[repo] = row.error
            continue
        start = max(row.evaluated_until or earliest, earliest)
        for task in tasks_of(row, defaults):
            cron = task.cron()
            fire = cron.latest_fire(start, now) if cron else None
            if fire is None:
                continue
            job, created = jobs.create(
                delivery_id(repo, task.id, fire),
                "schedule",
                Trigger(
                    kind=JobKind.MAINTENANCE,
                    repo=repo,
                    number=None,
                    sender="",
                    installation_id=installation,
                    task=task.id,
                    instructions="",
                ),
            )
            # (A tick that died between the two steps leaves a job queued without a
            # message: the stranded-job sweep sends it.)
            if created:
                enqueue(job.id)
                report.queued.append(job.id)
                log.info(
                    "%s: %s is due (%s at %s UTC): job %s",
                    repo,
                    task.id,
                    task.schedule,
                    f"{fire:%Y-%m-%d %H:%M}",
                    job.id,
                )
        schedules.evaluated(repo, now)
    return report
