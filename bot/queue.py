"""Handing jobs to the workers through Celery on Redis, by task name only: the receiver
imports nothing of the workers."""

from __future__ import annotations

from typing import Protocol

from celery import Celery

ACKNOWLEDGE_TASK = "qwenfix.acknowledge"


class JobQueue(Protocol):
    def enqueue(self, job_id: int) -> None: ...

    def ping(self) -> None: ...


class CeleryQueue:
    """Sends `qwenfix.acknowledge(job_id)` to the quick queue; the worker checks the
    sender's permission, acknowledges on GitHub and queues the long run itself."""

    def __init__(self, broker_url: str, quick_queue: str) -> None:
        self.quick_queue = quick_queue
        self.app = Celery("qwenfix-receiver", broker=broker_url, set_as_current=False)
        self.app.conf.update(
            broker_connection_timeout=2,
            broker_connection_retry_on_startup=False,
            task_publish_retry_policy={"max_retries": 1, "interval_start": 0,
                                       "interval_step": 0.2, "interval_max": 0.2},
        )

    def enqueue(self, job_id: int) -> None:
        self.app.send_task(ACKNOWLEDGE_TASK, args=[job_id], queue=self.quick_queue)

    def ping(self) -> None:
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)

    def close(self) -> None:
        self.app.close()
