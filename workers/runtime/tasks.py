"""Celery tasks: thin. A job id in, fresh reads from the database, the work elsewhere."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from celery import Task

from bot.contract.db import Job, utcnow
from bot.contract.job import JobKind, JobStatus, TaskName
from bot.contract.logs import DELIVERY, JOB
from bot.contract.schedules import ScheduleStore
from workers.engine.factory import make_backend, make_model
from workers.github.app_auth import GitHubApp
from workers.jobs.acknowledge import acknowledge
from workers.jobs.commands import Commands
from workers.jobs.config_source import FoundConfig
from workers.jobs.config_source import read_config as read_repo_config
from workers.jobs.context import JobContext, JobUnusable
from workers.jobs.handlers import handler_for, perform, tell_not_handled
from workers.runtime.celery_app import app
from workers.runtime.deps import Deps, process_deps
from workers.runtime.locks import TargetLock, lock_holder
from workers.runtime.recorder import JobRecorder
from workers.runtime.redeliver import Sweep, SweepLimits
from workers.runtime.retry import transient_delay
from workers.runtime.tick import tick

log = logging.getLogger(__name__)


class JobTask(Task):  # type: ignore[misc]
    @property
    def deps(self) -> Deps:
        return process_deps(self.app)


@app.task(bind=True, base=JobTask, name=TaskName.ACKNOWLEDGE, max_retries=8)
def acknowledge_job(self: JobTask, job_id: int) -> str:
    JOB.set(job_id)
    deps = self.deps
    try:
        outcome = acknowledge(
            job_id,
            jobs=deps.jobs,
            app=deps.github,
            bot_login=deps.settings.bot_login,
            on_refusal=deps.settings.on_refusal,
            queue_run=lambda job: app.send_task(
                TaskName.RUN, args=[job], queue=deps.settings.agent_queue
            ),
            running_on=lambda target: lock_holder(deps.redis, target),
            commands=Commands(
                jobs=deps.jobs,
                bot_login=deps.settings.bot_login,
                queue_acknowledge=lambda job: acknowledge_job.delay(job),
                trigger=deps.settings.trigger,
                public_url=deps.settings.public_url,
            ),
            public_url=deps.settings.public_url,
        )
    except Exception as exc:
        delay = transient_delay(exc, self.request.retries)
        if delay is None:
            deps.jobs.set_status(
                job_id,
                JobStatus.FAILED,
                reason=f"{type(exc).__name__}: {exc}",
                expected=JobStatus.QUEUED,
            )
            raise
        log.warning("job %s: transient failure (%s); retrying in %.0fs", job_id, exc, delay)
        raise self.retry(exc=exc, countdown=delay) from exc
    return outcome.value


LOCK_RETRY_S = 30


class TargetBusy(Exception):
    """Another job is running on the same target; this one waits its turn."""

    def __init__(self, holder: str | None) -> None:
        super().__init__(f"job {holder} is running on the same target")
        self.holder = holder


def lock_target(job: Job) -> str:
    """What two jobs must not work on at once: an issue or pull request, or a repository's
    maintenance task."""
    if job.kind == JobKind.MAINTENANCE:
        return f"{job.repo}:maintenance:{job.task}"
    return f"{job.repo}#{job.number}"


@app.task(bind=True, base=JobTask, name=TaskName.RUN, max_retries=None)
def run_job(self: JobTask, job_id: int) -> str:
    """The long part of a job, on the agent queue. Never retried blindly: a failure ends
    the job with its reason; only waiting for another job on the same target repeats."""
    JOB.set(job_id)
    try:
        return execute(job_id, self.deps)
    except TargetBusy as busy:
        log.info("job %s waits for job %s", job_id, busy.holder)
        raise self.retry(countdown=LOCK_RETRY_S) from busy


def execute(job_id: int, deps: Deps) -> str:
    """Run a job that was acknowledged; its final status. Raises TargetBusy."""
    job = deps.jobs.record(job_id)
    if job is None:
        return "missing"
    DELIVERY.set(job.delivery_id)
    if job.status not in (JobStatus.ACKNOWLEDGED, JobStatus.RUNNING):
        return f"already {job.status}"
    handler = handler_for(job.kind)
    if handler is None:
        reason = f"{job.kind} jobs are not handled by this version of qwenfix"
        deps.jobs.set_status(job_id, JobStatus.SKIPPED, reason=reason)
        tell_not_handled(job, app=deps.github, settings=deps.settings)
        return JobStatus.SKIPPED
    settings = deps.settings
    with TargetLock(deps.redis, lock_target(job), str(job_id), int(settings.longest_job_s)) as lock:
        if not lock.held:
            raise TargetBusy(lock.holder())
        # From the status read above only: a job stopped while it waited never runs.
        if not deps.jobs.set_status(job_id, JobStatus.RUNNING, expected=JobStatus(job.status)):
            return f"no longer {job.status}"
        recorder, started = JobRecorder(deps.jobs, job_id), time.monotonic()
        status = JobStatus.ERROR
        try:
            with make_model(settings) as model:
                try:
                    ctx = JobContext.open(
                        job,
                        # This task is never retried whole: its GitHub calls retry instead.
                        app=deps.github.with_call_retry(transient_delay),
                        model=model,
                        backend=make_backend(settings),
                        settings=settings,
                        jobs=deps.jobs,
                        sink=recorder,
                        permissions=handler.permissions,
                    )
                    status, reason = perform(handler, ctx)
                except JobUnusable as exc:
                    status, reason = JobStatus.ERROR, exc.reason
        except Exception as exc:
            deps.jobs.set_status(job_id, JobStatus.ERROR, reason=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            deps.metrics.observe_job(job.kind, status, time.monotonic() - started, recorder.total)
        deps.jobs.set_status(job_id, status, reason=reason)
        return status


@app.task(bind=True, base=JobTask, name=TaskName.MAINTENANCE_TICK)
def maintenance_tick(self: JobTask, beat: str = "") -> int:
    """Queue the maintenance runs that fell due since the last tick, and send again the
    jobs stranded in `queued` (their message lost); sent by `qwenfix beat` (`beat` names
    the sender, for the log)."""
    deps, settings = self.deps, self.deps.settings
    report = tick(
        datetime.now(UTC),
        jobs=deps.jobs,
        schedules=ScheduleStore(deps.jobs.engine),
        read_config=lambda repo, installation: read_config(deps.github, repo, installation),
        enqueue=acknowledge_job.delay,
        defaults=settings.maintenance_defaults,
        catchup_s=settings.maintenance_catchup_s,
        refresh_s=settings.maintenance_refresh_s,
    )
    log.info(
        "maintenance tick from beat %s: %d job(s) queued, %d repository config error(s)",
        beat or "-",
        len(report.queued),
        len(report.errors),
    )
    stranded = deps.jobs.stranded(utcnow() - timedelta(seconds=settings.requeue_after_s))
    for job_id in stranded:
        acknowledge_job.delay(job_id)
    if stranded:
        log.warning(
            "sent %d job(s) again that were queued for over %ds without being picked up: %s",
            len(stranded),
            settings.requeue_after_s,
            stranded,
        )
    return len(report.queued)


@app.task(bind=True, base=JobTask, name=TaskName.REDELIVER)
def redeliver(self: JobTask, beat: str = "") -> int:
    """Ask GitHub again for the webhook deliveries the receiver could not take; sent by
    `qwenfix beat`. Never raises for GitHub being away: the next sweep starts over."""
    deps = self.deps
    github = deps.github.as_app()  # keep a reference: githubkit's namespaces hold it weakly
    report = Sweep(
        github=github,
        client=deps.redis,
        jobs=deps.jobs,
        limits=SweepLimits.of(deps.settings),
        metrics=deps.metrics.redelivery,
    ).run(datetime.now(UTC))
    log.debug("redelivery sweep from beat %s done", beat or "-")
    return report.requested


def read_config(github: GitHubApp, repo: str, installation: int) -> FoundConfig | None:
    """The schedule's read: the repository's config file and its owner's defaults."""
    return read_repo_config(github, repo, installation)
