"""Prometheus metrics of one worker process, served on QWENFIX_METRICS_PORT: jobs by kind
and outcome, their durations, model tokens and time, sandbox time, queue depth."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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
