"""`qwenfix beat`: Celery beat sending the maintenance tick, one instance at a time.

Any number of beats may run (for availability); the one holding a Redis lease sends the
ticks, the others wait and take over within `beat_lease_s` when it stops. Even two beats
ticking at once could not double-fire a task: a due run's job id is derived from the
repository, the task and the minute.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from typing import Any

import redis
from celery import beat

from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

LEASE_KEY = "qwenfix:beat:leader"
TICK_TASK = "qwenfix.maintenance.tick"
# Extends the lease only while it is still ours: never another beat's after an expiry.
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end"
)


class BeatLease:
    def __init__(self, client: redis.Redis, holder: str, ttl_s: int) -> None:
        self.client, self.holder, self.ttl_s = client, holder, ttl_s

    def hold(self) -> bool:
        """Take the lease if it is free, renew it if it is ours."""
        if self.client.set(LEASE_KEY, self.holder, nx=True, ex=self.ttl_s):
            return True
        return bool(self.client.eval(_RENEW, 1, LEASE_KEY, self.holder, self.ttl_s))

    def release(self) -> None:
        self.client.eval(_RELEASE, 1, LEASE_KEY, self.holder)


class LeaderScheduler(beat.Scheduler):  # type: ignore[misc]
    """An in-memory schedule holding one entry, the tick; applied only by the leader.
    (Nothing to persist: the tick itself knows which window it covers.)"""

    lease: BeatLease
    leading: bool | None = None  # unknown until the first tick

    def setup_schedule(self) -> None:
        settings = WorkerSettings()
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = BeatLease(
            redis.Redis.from_url(settings.redis_url), holder, settings.beat_lease_s
        )
        self.merge_inplace(
            {
                "qwenfix-maintenance-tick": {
                    "task": TICK_TASK,
                    "schedule": settings.maintenance_tick_s,
                    "kwargs": {"beat": holder},
                    # A tick nobody ran in time is dropped; the next one covers its window.
                    "options": {
                        "queue": settings.quick_queue,
                        "expires": max(settings.maintenance_tick_s * 2, 30),
                    },
                }
            }
        )

    def tick(self, *args: Any, **kwargs: Any) -> float:
        renew_every = self.lease.ttl_s / 3
        try:
            held = self.lease.hold()
        except redis.RedisError as exc:
            log.warning("beat %s: Redis unavailable (%s); not ticking", self.lease.holder, exc)
            held = False
        if held != self.leading:
            self.leading = held
            log.info(
                "beat %s is %s",
                self.lease.holder,
                "the leader: sending maintenance ticks"
                if held
                else "on standby: another beat holds the lease",
            )
        if not held:
            return float(min(self.max_interval, renew_every))
        return float(min(super().tick(*args, **kwargs), renew_every))

    def close(self) -> None:
        if self.leading is True:
            with contextlib.suppress(redis.RedisError):
                self.lease.release()  # let a standby take over now, not after the TTL
        super().close()
