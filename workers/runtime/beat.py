"""`qwenfix beat`: Celery beat sending the maintenance tick, one instance at a time.

Any number of beats may run (for availability); the one holding a Redis lease sends the
ticks, the others wait and take over within `beat_lease_s` when it stops. Even two beats
ticking at once could not double-fire a task: a due run's job id is derived from the
repository, the task and the minute.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from typing import Any

import redis
from celery import beat

from bot.contract.job import TaskName
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

LEASE_KEY = "qwenfix:beat:leader"
# One key per running beat, leader or standby, renewed on each of its ticks: what
# `qwenfix health beat` and `qwenfix doctor` read.
ALIVE_PREFIX = "qwenfix:beat:alive:"
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

    def alive(self, leading: bool) -> None:
        """Say that this beat is running (and whether it leads), for as long as a lease."""
        info = {
            "holder": self.holder,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "leading": leading,
            "seen": time.time(),
        }
        self.client.set(ALIVE_PREFIX + self.holder, json.dumps(info), ex=self.ttl_s)

    def gone(self) -> None:
        self.client.delete(ALIVE_PREFIX + self.holder)


def beat_heartbeats(client: redis.Redis) -> list[dict[str, Any]]:
    """Every beat that ticked within its lease's TTL."""
    out = []
    for key in client.scan_iter(match=ALIVE_PREFIX + "*", count=100):
        raw = client.get(key)
        if raw:
            with contextlib.suppress(ValueError):
                out.append(json.loads(raw))  # type: ignore[arg-type]
    return out


def redelivery_schedule(settings: WorkerSettings, holder: str) -> dict[str, Any]:
    """The redelivery sweep's entry (workers/runtime/redeliver.py); none when it is off."""
    every = settings.redeliver_every_s
    if every <= 0:
        return {}
    return {
        "qwenfix-redeliver": {
            "task": TaskName.REDELIVER.value,
            "schedule": every,
            "kwargs": {"beat": holder},
            # A sweep nobody ran in time is dropped: the next one lists the same deliveries.
            "options": {"queue": settings.quick_queue, "expires": max(every, 30)},
        }
    }


class LeaderScheduler(beat.Scheduler):  # type: ignore[misc]
    """An in-memory schedule of the tick and the redelivery sweep; applied only by the
    leader. (Nothing to persist: the tick itself knows which window it covers, and each
    sweep lists GitHub's deliveries afresh.)"""

    lease: BeatLease
    leading: bool | None = None  # unknown until the first tick

    def setup_schedule(self) -> None:
        settings = WorkerSettings()
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = BeatLease(
            # Bounded waits: a Redis that stops answering must not stall the tick.
            redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5),
            holder,
            settings.beat_lease_s,
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
                },
                **redelivery_schedule(settings, holder),
            }
        )

    def tick(self, *args: Any, **kwargs: Any) -> float:
        renew_every = self.lease.ttl_s / 3
        try:
            held = self.lease.hold()
        except redis.RedisError as exc:
            log.warning("beat %s: Redis unavailable (%s); not ticking", self.lease.holder, exc)
            held = False
        with contextlib.suppress(redis.RedisError):
            self.lease.alive(held)
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
        with contextlib.suppress(redis.RedisError):
            self.lease.gone()
        if self.leading is True:
            with contextlib.suppress(redis.RedisError):
                self.lease.release()  # let a standby take over now, not after the TTL
        super().close()
