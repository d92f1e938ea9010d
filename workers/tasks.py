"""Celery tasks: thin. A job id in, fresh reads from the database, the work elsewhere."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

import redis
from celery import Celery, Task

from bot.db import Job, make_engine, utcnow
from bot.forge import GitHubForge
from bot.github_app import READ_PERMISSIONS, AppCredentials, GitHubApp
from bot.jobs import JobStore
from bot.logs import DELIVERY, JOB
from bot.schedules import ScheduleStore
from workers.acknowledge import acknowledge
from workers.celery_app import app
from workers.factory import make_backend, make_model
from workers.locks import TargetLock, lock_holder
from workers.maintenance.run import run_maintenance_job
from workers.maintenance.tick import tick
from workers.metrics import WorkerMetrics
from workers.pipeline import (
    run_feedback_job,
    run_fix_ci_job,
    run_fix_job,
    run_review_job,
    tell_not_handled,
)
from workers.recorder import JobRecorder
from workers.repo_config import CONFIG_FILE
from workers.retry import transient_delay
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)


@dataclass
class Deps:
    """What a worker process builds once, at its entry point, and keeps."""

    settings: WorkerSettings
    jobs: JobStore
    github: GitHubApp
    redis: redis.Redis
    metrics: WorkerMetrics

    @classmethod
    def build(cls) -> Deps:
        settings = WorkerSettings()
        credentials = AppCredentials.load(
            app_id=settings.github_app_id, private_key=settings.github_private_key,
            private_key_file=settings.github_private_key_file, api_url=settings.github_api_url)
        client = redis.Redis.from_url(settings.redis_url)
        return cls(settings=settings, jobs=JobStore(make_engine(settings.database_url)),
                   github=GitHubApp(credentials), redis=client,
                   metrics=WorkerMetrics(client, [settings.quick_queue, settings.agent_queue]))


_BUILDING = threading.Lock()


def process_deps(celery: Celery) -> Deps:
    """The worker process's one Deps, kept on its Celery app (built at first use)."""
    with _BUILDING:
        deps: Deps | None = getattr(celery, "qwenfix_deps", None)
        if deps is None:
            deps = Deps.build()
            celery.qwenfix_deps = deps
        return deps


class JobTask(Task):  # type: ignore[misc]
    @property
    def deps(self) -> Deps:
        return process_deps(self.app)


@app.task(bind=True, base=JobTask, name="qwenfix.acknowledge", max_retries=8)
def acknowledge_job(self: JobTask, job_id: int) -> str:
    JOB.set(job_id)
    deps = self.deps
    try:
        outcome = acknowledge(
            job_id, jobs=deps.jobs, app=deps.github, bot_login=deps.settings.bot_login,
            on_refusal=deps.settings.on_refusal,
            queue_run=lambda job: app.send_task("qwenfix.run", args=[job],
                                                queue=deps.settings.agent_queue),
            running_on=lambda target: lock_holder(deps.redis, target))
    except Exception as exc:
        delay = transient_delay(exc, self.request.retries)
        if delay is None:
            deps.jobs.set_status(job_id, "failed", reason=f"{type(exc).__name__}: {exc}",
                                 expected="queued")
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
    if job.kind == "maintenance":
        return f"{job.repo}:maintenance:{job.task}"
    return f"{job.repo}#{job.number}"


@app.task(bind=True, base=JobTask, name="qwenfix.run", max_retries=None)
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
    if job.status not in ("acknowledged", "running"):
        return f"already {job.status}"
    pipelines: dict[str, Callable[..., tuple[str, str]]] = {
        "fix": run_fix_job, "review": run_review_job, "address-feedback": run_feedback_job}
    if job.kind == "fix-ci":
        pipelines["fix-ci"] = partial(run_fix_ci_job, attempts=deps.jobs.count_finished(
            job.repo, job.number or 0, "fix-ci"))
    if job.kind == "maintenance":
        pipelines["maintenance"] = partial(run_maintenance_job, done_today=deps.jobs.count_since(
            job.repo, "maintenance", ("resolved",), datetime.now(UTC) - timedelta(days=1)))
    if job.kind not in pipelines:
        reason = f"{job.kind} jobs are not handled by this version of qwenfix"
        deps.jobs.set_status(job_id, "skipped", reason=reason)
        tell_not_handled(job, app=deps.github, settings=deps.settings)
        return "skipped"
    settings = deps.settings
    ttl = int(settings.max_wall_s + settings.setup_timeout_s + 2 * settings.test_timeout_s)
    with TargetLock(deps.redis, lock_target(job), str(job_id), ttl) as lock:
        if not lock.held:
            raise TargetBusy(lock.holder())
        deps.jobs.set_status(job_id, "running")
        recorder, started, status = JobRecorder(deps.jobs, job_id), time.monotonic(), "error"
        try:
            with make_model(settings) as model:
                status, reason = pipelines[job.kind](
                    job, app=deps.github, model=model, backend=make_backend(settings),
                    settings=settings, sink=recorder)
        except Exception as exc:
            deps.jobs.set_status(job_id, "error", reason=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            deps.metrics.observe_job(job.kind, status, time.monotonic() - started,
                                     recorder.total)
        deps.jobs.set_status(job_id, status, reason=reason)
        return status


@app.task(bind=True, base=JobTask, name="qwenfix.maintenance.tick")
def maintenance_tick(self: JobTask, beat: str = "") -> int:
    """Queue the maintenance runs that fell due since the last tick, and send again the
    jobs stranded in `queued` (their message lost); sent by `qwenfix beat` (`beat` names
    the sender, for the log)."""
    deps, settings = self.deps, self.deps.settings
    report = tick(
        datetime.now(UTC), jobs=deps.jobs, schedules=ScheduleStore(deps.jobs.engine),
        read_config=lambda repo, installation: read_config(deps.github, repo, installation),
        enqueue=acknowledge_job.delay, defaults=settings.maintenance_defaults,
        catchup_s=settings.maintenance_catchup_s, refresh_s=settings.maintenance_refresh_s)
    log.info("maintenance tick from beat %s: %d job(s) queued, %d repository config "
             "error(s)", beat or "-", len(report.queued), len(report.errors))
    stranded = deps.jobs.stranded(utcnow() - timedelta(seconds=settings.requeue_after_s))
    for job_id in stranded:
        acknowledge_job.delay(job_id)
    if stranded:
        log.warning("sent %d job(s) again that were queued for over %ds without being "
                    "picked up: %s", len(stranded), settings.requeue_after_s, stranded)
    return len(report.queued)


def read_config(github: GitHubApp, repo: str, installation: int) -> tuple[str, bytes] | None:
    forge = GitHubForge(github.for_repository(installation, repo, READ_PERMISSIONS), repo)
    return forge.file(CONFIG_FILE, forge.repository().default_branch)
