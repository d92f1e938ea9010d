"""Handing jobs to the workers: a Celery task message pushed onto the broker's queue.

The receiver imports nothing of the workers: it names the task. It builds the message
with Celery's own protocol code and pushes it with one async `LPUSH`, exactly where
kombu's Redis transport would put it, instead of a blocking kombu publish on a thread:
the receiver answers in milliseconds under load. A real Celery worker consuming these
messages is part of the test suite.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import uuid
from collections.abc import Awaitable
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from celery import Celery

from bot.receiver.redis_batch import AutoPipeline

ACKNOWLEDGE_TASK = "qwenfix.acknowledge"


class JobQueue(Protocol):
    def enqueue(self, job_id: int) -> Awaitable[object]:
        """Queue the job: sent with whatever else this turn of the event loop sends; await
        the result for the outcome."""


class MessageTemplate:
    """Celery's own message for a task, built once (hostname lookups, reprs and all), then
    filled in per job with a fresh task id and the arguments: the receiver sends one per
    delivery, and building it from scratch each time cost more than the Redis round trip."""

    def __init__(self, protocol: Celery, task: str, queue: str) -> None:
        message = protocol.amqp.as_task_v2("template", task, args=[], kwargs={})
        self.headers = dict(message.headers)
        self.properties = {
            **message.properties,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
        }
        self.embed = list(message.body)[2]
        self._embed_json = json.dumps(self.embed)
        # Task ids need to be unique, not secret: uuid4() reads the kernel's randomness
        # with a system call each time, which showed in the receiver's profile.
        self._random = random.Random(os.urandom(32))

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def render(self, args: list[object]) -> str:
        task_id = self._uuid()
        body = f"[{json.dumps(args)}, {{}}, {self._embed_json}]".encode()
        return orjson.dumps(
            {
                "body": base64.b64encode(body).decode(),
                "content-encoding": "utf-8",
                "content-type": "application/json",
                "headers": {
                    **self.headers,
                    "id": task_id,
                    "root_id": task_id,
                    "argsrepr": repr(args),
                },
                "properties": {
                    **self.properties,
                    "correlation_id": task_id,
                    "delivery_tag": self._uuid(),
                },
            }
        ).decode()


class RedisJobQueue:
    """Sends `qwenfix.acknowledge(job_id)` to the quick queue; the worker checks the
    sender's permission, acknowledges on GitHub and queues the long run itself."""

    def __init__(
        self, client: aioredis.Redis, queue: str, redis: AutoPipeline | None = None
    ) -> None:
        self.client = client
        self.queue = queue
        self.redis = redis or AutoPipeline(client)
        self._message = MessageTemplate(
            Celery("qwenfix-receiver", set_as_current=False), ACKNOWLEDGE_TASK, queue
        )

    @classmethod
    def from_url(cls, url: str, queue: str) -> RedisJobQueue:
        return cls(aioredis.Redis.from_url(url, socket_connect_timeout=2), queue)

    def enqueue(self, job_id: int) -> asyncio.Future[Any]:
        return self.redis.submit("LPUSH", self.queue, self._message.render([job_id]))
