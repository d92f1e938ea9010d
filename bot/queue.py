"""Handing jobs to the workers: a Celery task message pushed onto the broker's queue.

The receiver imports nothing of the workers: it names the task. It builds the message
with Celery's own protocol code and pushes it with one async `LPUSH`, exactly where
kombu's Redis transport would put it, instead of a blocking kombu publish on a thread:
the receiver answers in milliseconds under load. A real Celery worker consuming these
messages is part of the test suite.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Protocol

import redis.asyncio as aioredis
from celery import Celery

ACKNOWLEDGE_TASK = "qwenfix.acknowledge"


class JobQueue(Protocol):
    async def enqueue(self, job_id: int) -> None: ...


def celery_message(protocol: Celery, task: str, args: list[object], queue: str) -> str:
    """A task message as kombu's Redis transport stores it (protocol 2, JSON, base64)."""
    task_id = str(uuid.uuid4())
    message = protocol.amqp.as_task_v2(task_id, task, args=args, kwargs={})
    body = json.dumps(list(message.body)).encode()
    return json.dumps({
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": message.headers,
        "properties": {**message.properties, "delivery_mode": 2,
                       "delivery_info": {"exchange": "", "routing_key": queue},
                       "priority": 0, "body_encoding": "base64",
                       "delivery_tag": str(uuid.uuid4())},
    })


class RedisJobQueue:
    """Sends `qwenfix.acknowledge(job_id)` to the quick queue; the worker checks the
    sender's permission, acknowledges on GitHub and queues the long run itself."""

    def __init__(self, client: aioredis.Redis, queue: str) -> None:
        self.client = client
        self.queue = queue
        self._protocol = Celery("qwenfix-receiver", set_as_current=False)

    @classmethod
    def from_url(cls, url: str, queue: str) -> RedisJobQueue:
        return cls(aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2),
                   queue)

    async def enqueue(self, job_id: int) -> None:
        await self.client.lpush(  # type: ignore[misc]  # redis-py types it sync|async
            self.queue, celery_message(self._protocol, ACKNOWLEDGE_TASK, [job_id], self.queue))
