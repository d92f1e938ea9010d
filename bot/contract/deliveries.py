"""What the redelivery sweep leaves in Redis, as the workers write it and the dashboard
reads it: the receiver's per-delivery key (a delivery with a job needs no redelivery), the
sweep's per-delivery guard, and a short, expiring summary of its last runs.

GitHub does not redeliver a failed delivery by itself; the sweep (workers/runtime/
redeliver.py) asks it to. Everything here is bounded and expires: the summary is for
operators, not a record.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

import redis.asyncio as aioredis
from pydantic import BaseModel, ValidationError

DELIVERY_PREFIX = "qwenfix:delivery:"
"""The receiver's key per X-GitHub-Delivery: the job's id, or "" while it is claimed."""
GUARD_PREFIX = "qwenfix:redeliver:guid:"
"""Set (NX, with the interval as TTL) when the sweep asks for a delivery again."""
PAUSE_KEY = "qwenfix:redeliver:paused"
"""Set for as long as GitHub asked the sweep to wait (its rate limit's retry-after)."""
RUNS_KEY = "qwenfix:redeliver:runs"
ASKED_KEY = "qwenfix:redeliver:asked"
RUNS_KEPT = 20
ASKED_KEPT = 200
SUMMARY_TTL_S = 7 * 24 * 3600

M = TypeVar("M", bound=BaseModel)


class SweepRun(BaseModel):
    """One sweep: what it listed and what it did."""

    at: datetime
    took_s: float = 0.0
    pages: int = 0
    attempts: int = 0
    """Delivery attempts listed within the window."""
    deliveries: int = 0
    """Distinct deliveries (guids) among them."""
    failed: int = 0
    """Deliveries whose every attempt failed."""
    known: int = 0
    """Failed deliveries the receiver has a job for all the same: not asked for."""
    recent: int = 0
    """Failed deliveries already asked for within the interval."""
    requested: int = 0
    request_failed: int = 0
    complete: bool = True
    """False when the listing stopped at the page limit before reaching the window's end."""
    error: str | None = None
    """Why the sweep stopped early (GitHub unreachable, rate limited, ...)."""


class Redelivery(BaseModel):
    """A delivery the sweep asked GitHub for again."""

    at: datetime
    guid: str
    delivery_id: int
    """The id of the failed attempt asked for again."""
    event: str
    action: str | None
    status_code: int
    """What the failed attempt was answered (0: no answer)."""
    delivered_at: datetime
    outcome: str
    """"requested", or why GitHub refused."""


async def sweep_summary(client: aioredis.Redis) -> tuple[list[SweepRun], list[Redelivery]]:
    """The last runs and the deliveries they asked for, newest first. A record that no
    longer parses (written by another version) is left out, not an error."""
    raw_runs = await client.lrange(RUNS_KEY, 0, RUNS_KEPT - 1)  # type: ignore[misc]
    raw_asked = await client.lrange(ASKED_KEY, 0, ASKED_KEPT - 1)  # type: ignore[misc]
    runs = [run for raw in raw_runs if (run := _parse(SweepRun, raw)) is not None]
    asked = [item for raw in raw_asked if (item := _parse(Redelivery, raw)) is not None]
    return runs, asked


def _parse(model: type[M], raw: bytes | str) -> M | None:
    try:
        return model.model_validate_json(raw)
    except ValidationError:
        return None
