"""Delivery dedup in Redis: a `SET NX` per delivery id, kept for days."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from bot.contract.deliveries import DELIVERY_PREFIX
from bot.receiver.redis_batch import AutoPipeline

# The redelivery sweep reads the same keys (through the contract).
PREFIX = DELIVERY_PREFIX


class DeliveryLedger:
    def __init__(
        self,
        client: aioredis.Redis,
        ttl_s: int,
        redis: AutoPipeline | None = None,
        *,
        claim_ttl_s: int = 300,
    ) -> None:
        self.client = client
        self.ttl_s = ttl_s
        # A claim without a job lasts this long: a delivery still being handled after it
        # was abandoned (its receiver died, or Redis restarted in between).
        self.claim_ttl_s = claim_ttl_s
        # Every delivery claims, and most are remembered: batched with other requests'.
        self.redis = redis or AutoPipeline(client)

    @classmethod
    def from_url(cls, url: str, ttl_s: int) -> DeliveryLedger:
        return cls(aioredis.Redis.from_url(url, socket_connect_timeout=2), ttl_s)

    async def claim(self, delivery_id: str) -> bool:
        """True for the first sight of this delivery; False for a redelivery (or one being
        handled right now)."""
        return bool(
            await self.redis.execute("SET", PREFIX + delivery_id, "", "EX", self.claim_ttl_s, "NX")
        )

    def remember(self, delivery_id: str, job_id: int) -> asyncio.Future[Any]:
        """Notes the job of a claimed delivery, so that redeliveries are answered from
        Redis. Sent at once with whatever else this turn sends (the job's message); await
        the result for the outcome."""
        return self.redis.submit("SET", PREFIX + delivery_id, str(job_id), "EX", self.ttl_s, "XX")

    async def job_of(self, delivery_id: str) -> int | None:
        value = await self.redis.execute("GET", PREFIX + delivery_id)
        return int(value) if value else None

    async def release(self, delivery_id: str) -> None:
        """Forget a delivery whose job could not be queued, so a redelivery can try again."""
        await self.client.delete(PREFIX + delivery_id)

    async def ping(self) -> None:
        await self.client.ping()  # type: ignore[misc]  # redis-py types ping as sync|async

    async def close(self) -> None:
        await self.client.aclose()
