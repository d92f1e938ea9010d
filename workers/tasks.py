"""Celery tasks: thin. A job id in, fresh reads from the database, the work elsewhere."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial

import redis
from celery import Task

from bot.db import make_engine
from bot.github_app import AppCredentials, GitHubApp
from bot.jobs import JobStore
from workers.acknowledge import acknowledge
from workers.celery_app import app
from workers.factory import make_backend, make_model
from workers.locks import TargetLock, lock_holder
from workers.pipeline import (
    run_feedback_job,
    run_fix_ci_job,
    run_fix_job,
    run_review_job,
    tell_not_handled,
)
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

    @classmethod
    def build(cls) -> Deps:
        settings = WorkerSettings()
        credentials = AppCredentials.load(
            app_id=settings.github_app_id, private_key=settings.github_private_key,
            private_key_file=settings.github_private_key_file, api_url=settings.github_api_url)
        return cls(settings=settings, jobs=JobStore(make_engine(settings.database_url)),
                   github=GitHubApp(credentials), redis=redis.Redis.from_url(settings.redis_url))


class JobTask(Task):  # type: ignore[misc]
    """Celery keeps one instance of a task per process: the natural home of its deps."""

    @cached_property
    def deps(self) -> Deps:
        return Deps.build()


@app.task(bind=True, base=JobTask, name="qwenfix.acknowledge", max_retries=8)
def acknowledge_job(self: JobTask, job_id: int) -> str:
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


@app.task(bind=True, base=JobTask, name="qwenfix.run", max_retries=None)
def run_job(self: JobTask, job_id: int) -> str:
    """The long part of a job, on the agent queue. Never retried blindly: a failure ends
    the job with its reason; only waiting for another job on the same target repeats."""
    deps = self.deps
    job = deps.jobs.record(job_id)
    if job is None:
        return "missing"
    if job.status not in ("acknowledged", "running"):
        return f"already {job.status}"
    pipelines: dict[str, Callable[..., tuple[str, str]]] = {
        "fix": run_fix_job, "review": run_review_job, "address-feedback": run_feedback_job}
    if job.kind == "fix-ci":
        pipelines["fix-ci"] = partial(run_fix_ci_job, attempts=deps.jobs.count_finished(
            job.repo, job.number or 0, "fix-ci"))
    if job.kind not in pipelines:
        reason = f"{job.kind} jobs are not handled by this version of qwenfix"
        deps.jobs.set_status(job_id, "skipped", reason=reason)
        tell_not_handled(job, app=deps.github, settings=deps.settings)
        return "skipped"
    settings = deps.settings
    ttl = int(settings.max_wall_s + settings.setup_timeout_s + 2 * settings.test_timeout_s)
    with TargetLock(deps.redis, f"{job.repo}#{job.number}", str(job_id), ttl) as lock:
        if not lock.held:
            log.info("job %s waits for job %s on %s#%s", job_id, lock.holder(), job.repo,
                     job.number)
            raise self.retry(countdown=LOCK_RETRY_S)
        deps.jobs.set_status(job_id, "running")
        try:
            with make_model(settings) as model:
                status, reason = pipelines[job.kind](
                    job, app=deps.github, model=model, backend=make_backend(settings),
                    settings=settings)
        except Exception as exc:
            deps.jobs.set_status(job_id, "error", reason=f"{type(exc).__name__}: {exc}")
            raise
        deps.jobs.set_status(job_id, status, reason=reason)
        return status
