"""Prometheus metrics of one receiver, in its own registry (no process-wide state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class ReceiverMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "qwenfix_webhook_deliveries",
            "Webhook deliveries by event and outcome",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "qwenfix_webhook_handling_seconds",
            "Time to answer a webhook delivery",
            ["outcome"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )

        self.queue_depth = Gauge(
            "qwenfix_queue_depth", "Jobs waiting in a queue", ["queue"], registry=self.registry
        )
        self.jobs = Gauge(
            "qwenfix_jobs",
            "Jobs recorded, by kind and status",
            ["kind", "status"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def set_queue_depths(self, depths: dict[str, int]) -> None:
        for queue, depth in depths.items():
            self.queue_depth.labels(queue=queue).set(depth)

    def set_job_counts(self, counts: list[tuple[str, str, int]]) -> None:
        for kind, status, n in counts:
            self.jobs.labels(kind=kind, status=status).set(n)

    def observe(self, event: str, outcome: str, seconds: float) -> None:
        # The labelled children, looked up once: labels() costs more than the update.
        key = (event or "-", outcome)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.deliveries.labels(event=key[0], outcome=outcome),
                self.latency.labels(outcome=outcome),
            )
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
