"""Prometheus metrics of one worker, served on QWENFIX_METRICS_PORT: jobs by kind and
outcome, their durations, model tokens and time, sandbox time, queue depth.

Under the prefork pool the jobs run in child processes: `qwenfix worker` points
PROMETHEUS_MULTIPROC_DIR at a fresh directory before any fork, each child's counters are
kept there, and the main process serves their sum."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.contract.deliveries import SweepRun
from bot.contract.summary import Costs

log = logging.getLogger(__name__)
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


class QueueDepth(Collector):
    """Messages waiting in each Celery queue (Redis lists), read at scrape time."""

    def __init__(self, client: redis.Redis, queues: list[str]) -> None:
        self.client, self.queues = client, queues

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "qwenfix_queue_depth", "Jobs waiting in a queue", labels=["queue"]
        )
        try:
            for queue in self.queues:
                gauge.add_metric([queue], float(self.client.llen(queue)))  # type: ignore[arg-type]
        except redis.RedisError as exc:
            log.warning("queue depth unavailable: %s", exc)
        yield gauge


class RedeliveryMetrics:
    """The redelivery sweep (workers/runtime/redeliver.py): what it saw and asked for."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.seen = Counter(
            "qwenfix_webhook_deliveries_seen",
            "Webhook deliveries listed by redelivery sweeps, by whether one attempt succeeded",
            ["state"],
            registry=registry,
        )
        self.requested = Counter(
            "qwenfix_redeliveries_requested",
            "Failed webhook deliveries GitHub was asked to deliver again",
            registry=registry,
        )
        self.request_failed = Counter(
            "qwenfix_redeliveries_failed",
            "Redeliveries asked for that GitHub did not accept",
            registry=registry,
        )
        self.sweeps = Counter(
            "qwenfix_redelivery_sweeps",
            "Redelivery sweeps, by whether they ran to the end",
            ["result"],
            registry=registry,
        )

    def observe(self, run: SweepRun) -> None:
        self.seen.labels(state="delivered").inc(run.deliveries - run.failed)
        self.seen.labels(state="failed").inc(run.failed)
        self.requested.inc(run.requested)
        self.request_failed.inc(run.request_failed)
        self.sweeps.labels(result="complete" if run.error is None else "stopped").inc()


class WorkerMetrics:
    def __init__(self, client: redis.Redis | None = None, queues: list[str] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "qwenfix_jobs_finished",
            "Jobs finished by kind and outcome",
            ["kind", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "qwenfix_job_duration_seconds",
            "Wall time of a job run",
            ["kind"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "qwenfix_model_tokens",
            "Model tokens (prompt, completion, and the prompt tokens served from the prefix cache)",
            ["type"],
            registry=self.registry,
        )
        self.model_seconds = Counter(
            "qwenfix_model_seconds", "Time waiting for the model", registry=self.registry
        )
        self.sandbox_seconds = Counter(
            "qwenfix_sandbox_seconds",
            "Time running commands in sandboxes (tools, setup, tests)",
            registry=self.registry,
        )
        self.redelivery = RedeliveryMetrics(self.registry)
        if client is not None and queues:
            self.registry.register(QueueDepth(client, queues))

    def observe_job(self, kind: str, status: str, seconds: float, total: Costs) -> None:
        self.jobs.labels(kind=kind, status=status).inc()
        self.duration.labels(kind=kind).observe(seconds)
        self.tokens.labels(type="prompt").inc(total.prompt_tokens)
        self.tokens.labels(type="completion").inc(total.completion_tokens)
        self.tokens.labels(type="cached").inc(total.cached_tokens)
        self.model_seconds.inc(total.model_s)
        self.sandbox_seconds.inc(total.sandbox_s)

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)
        log.info("metrics on :%d/metrics", port)


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def serve_pool_metrics(client: redis.Redis, queues: list[str], port: int) -> None:
    """Serve, from the worker's main process, the sum of its pool processes' metrics."""
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(QueueDepth(client, queues))
    start_http_server(port, registry=registry)
    log.info("metrics of every pool process on :%d/metrics", port)
