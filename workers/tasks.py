"""Celery tasks: thin. A job id in, fresh reads from the database, the work elsewhere."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

from celery import Task

from bot.db import make_engine
from bot.github_app import AppCredentials, GitHubApp
from bot.jobs import JobStore
from workers.acknowledge import acknowledge
from workers.celery_app import app
from workers.retry import transient_delay
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)


@dataclass
class Deps:
    """What a worker process builds once, at its entry point, and keeps."""

    settings: WorkerSettings
    jobs: JobStore
    github: GitHubApp

    @classmethod
    def build(cls) -> Deps:
        settings = WorkerSettings()
        credentials = AppCredentials.load(
            app_id=settings.github_app_id, private_key=settings.github_private_key,
            private_key_file=settings.github_private_key_file, api_url=settings.github_api_url)
        return cls(settings=settings, jobs=JobStore(make_engine(settings.database_url)),
                   github=GitHubApp(credentials))


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
                                                queue=deps.settings.agent_queue))
    except Exception as exc:
        delay = transient_delay(exc, self.request.retries)
        if delay is None:
            deps.jobs.set_status(job_id, "failed", reason=f"{type(exc).__name__}: {exc}",
                                 expected="queued")
            raise
        log.warning("job %s: transient failure (%s); retrying in %.0fs", job_id, exc, delay)
        raise self.retry(exc=exc, countdown=delay) from exc
    return outcome.value
