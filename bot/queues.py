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


async def workers_online(client: aioredis.Redis) -> list[dict[str, Any]]:
    out = []
    async for key in client.scan_iter(match=HEARTBEAT_PREFIX + "*", count=100):
        raw = await client.get(key)
        if raw:
            out.append(json.loads(raw))
    return sorted(out, key=lambda w: str(w.get("hostname")))
