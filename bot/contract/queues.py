"""What is waiting and who is working: queue lengths and the workers' heartbeats, read
from Redis for the dashboard and the receiver's metrics."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

HEARTBEAT_PREFIX = "qwenfix:worker:"
HEARTBEAT_TTL_S = 30


async def queue_depths(client: aioredis.Redis, queues: list[str]) -> dict[str, int]:
    return {queue: int(await client.llen(queue)) for queue in queues}  # type: ignore[misc]


async def in_flight(client: aioredis.Redis, queues: list[str]) -> dict[str, int]:
    """Messages a worker has taken and not yet acknowledged, per queue: what is running.
    (kombu's Redis transport keeps them in the `unacked` hash as [message, exchange,
    routing key] until the task ends.)"""
    counts = dict.fromkeys(queues, 0)
    for raw in await client.hvals("unacked"):  # type: ignore[misc]
        try:
            routing_key = json.loads(raw)[2]
        except (ValueError, IndexError, TypeError):
            continue
        if routing_key in counts:
            counts[routing_key] += 1
    return counts


async def workers_online(client: aioredis.Redis) -> list[dict[str, Any]]:
    out = []
    async for key in client.scan_iter(match=HEARTBEAT_PREFIX + "*", count=100):
        raw = await client.get(key)
        if raw:
            out.append(json.loads(raw))
    return sorted(out, key=lambda w: str(w.get("hostname")))
