"""The Celery application. Configured lazily, from WorkerSettings, when first used."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import (
    setup_logging,
    task_prerun,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)

from workers.settings import WorkerSettings

# The tasks module registers its tasks on this app; a worker imports it at start.
app = Celery("qwenfix", set_as_current=False, include=["workers.runtime.tasks"])


def celery_config(settings: WorkerSettings) -> dict[str, Any]:
    longest = settings.longest_job_s
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        # A job is acknowledged to the broker when it ends, and given back if the worker
        # dies: the broker must wait longer than the longest job before redelivering it.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout_s or int(longest + 3600),
            **(
                {
                    "unacked_restore_interval": settings.restore_sweep_s,
                    "unacked_restore_throttle": 1,
                }
                if settings.restore_sweep_s
                else {}
            ),
        },
        "task_default_queue": settings.quick_queue,
        "task_routes": {
            "qwenfix.acknowledge": {"queue": settings.quick_queue},
            "qwenfix.run": {"queue": settings.agent_queue},
        },
        "task_soft_time_limit": int(longest + 300),
        "task_time_limit": int(longest + 600),
        "task_ignore_result": True,
        "worker_hijack_root_logger": False,
    }


@app.on_configure.connect
def _configure(sender: Celery, **_: Any) -> None:
    sender.conf.update(celery_config(WorkerSettings()))


@setup_logging.connect
def _logging(**_: Any) -> None:
    """qwenfix's own logging (text or JSON, with job ids) instead of Celery's."""
    from bot.contract.logs import configure_logging

    configure_logging(WorkerSettings().log_format)


@task_prerun.connect
def _fresh_log_context(**_: Any) -> None:
    """Pool threads run task after task: no line may carry the previous job's ids."""
    from bot.contract.logs import DELIVERY, JOB

    JOB.set(None)
    DELIVERY.set(None)


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    """A prefork child builds its own Deps: a database pool's connections and a Redis
    client's sockets must never be shared with the parent or a sibling."""
    from workers.runtime.deps import forget_process_deps

    forget_process_deps(app)


def _consumed_queues(consumer: Any) -> list[str]:
    task_consumer = getattr(consumer, "task_consumer", None)
    return sorted(q.name for q in task_consumer.queues) if task_consumer else []


@worker_ready.connect
def _announce(sender: Any, **_: Any) -> None:
    """Metrics on QWENFIX_METRICS_PORT, and a heartbeat the dashboard and the health probe
    read. This runs in the worker's main process, after the pool has started: it builds
    only a Redis client of its own, never the Deps the pool's processes use."""
    import redis

    from workers.runtime.heartbeat import Heartbeat, enforces_time_limits, pool_name
    from workers.runtime.metrics import multiprocess_enabled, serve_pool_metrics

    settings = WorkerSettings()
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    if settings.metrics_port and multiprocess_enabled():
        queues = [settings.quick_queue, settings.agent_queue]
        serve_pool_metrics(client, queues, settings.metrics_port)
    elif settings.metrics_port:
        # Started without the CLI (no PROMETHEUS_MULTIPROC_DIR): this process's own.
        from workers.runtime.deps import process_deps

        process_deps(app).metrics.serve(settings.metrics_port)
    # The sender is the worker's consumer; its controller knows the pool size.
    concurrency = int(getattr(getattr(sender, "controller", None), "concurrency", 0) or 0)
    pool = getattr(sender, "pool", None)
    heartbeat = Heartbeat(
        client,
        sender.hostname,
        _consumed_queues(sender),
        concurrency,
        pool=pool_name(pool),
        time_limits=enforces_time_limits(pool),
    )
    heartbeat.start()
    app.qwenfix_heartbeat = heartbeat


@worker_shutdown.connect
def _farewell(**_: Any) -> None:
    heartbeat = getattr(app, "qwenfix_heartbeat", None)
    if heartbeat is not None:
        heartbeat.stop()


@worker_ready.connect
def _prune_stale_sandboxes(sender: Any, **_: Any) -> None:
    """Sandboxes of a worker that was killed outlive it; remove those older than any job.
    Only agent workers run sandboxes (a quick worker has no Docker engine to reach)."""
    settings = WorkerSettings()
    if settings.sandbox_backend != "docker":
        return
    if settings.agent_queue not in _consumed_queues(sender):
        return
    from sandbox.docker_backend import DockerBackend
    from sandbox.errors import SandboxUnavailable

    longest = settings.longest_job_s
    try:
        DockerBackend().prune(older_than_s=longest + 600)
    except SandboxUnavailable as exc:
        logging.getLogger(__name__).warning("no Docker engine to prune sandboxes: %s", exc)
