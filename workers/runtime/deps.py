"""What a worker process builds once, at its entry point, and keeps."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import redis
from celery import Celery

from bot.contract.db import make_engine
from bot.contract.store import JobStore
from workers.github.app_auth import AppCredentials, GitHubApp
from workers.runtime.metrics import WorkerMetrics
from workers.settings import WorkerSettings


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
            app_id=settings.github_app_id,
            private_key=settings.github_private_key,
            private_key_file=settings.github_private_key_file,
            api_url=settings.github_api_url,
        )
        # Bounded waits (locks, cancellation flags): a Redis that stops answering fails
        # the call instead of hanging the job.
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=30, socket_connect_timeout=10
        )
        return cls(
            settings=settings,
            jobs=JobStore(make_engine(settings.database_url)),
            github=GitHubApp(credentials),
            redis=client,
            metrics=WorkerMetrics(client, [settings.quick_queue, settings.agent_queue]),
        )


_BUILDING = threading.Lock()


def process_deps(celery: Celery) -> Deps:
    """The worker process's one Deps, kept on its Celery app (built at first use)."""
    with _BUILDING:
        deps: Deps | None = getattr(celery, "qwenfix_deps", None)
        if deps is None:
            deps = Deps.build()
            celery.qwenfix_deps = deps
        return deps


def forget_process_deps(celery: Celery) -> None:
    """Drop Deps inherited across a fork: the child builds its own at first use."""
    celery.qwenfix_deps = None
