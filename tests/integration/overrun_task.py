"""A task that outlives its time limits, for a real worker to import (`-I`): it records
where it ran and what it got, then keeps going as a call that ignores the soft limit
would (a blocking read, a C extension)."""

from __future__ import annotations

import os
import time

import redis
from celery.exceptions import SoftTimeLimitExceeded

from workers.runtime.celery_app import app

OVERRUN = "qwenfix.test.overrun"
QUICK = "qwenfix.test.quick"


def _record(url: str, field: str, value: str) -> None:
    redis.Redis.from_url(url).hset("overrun", field, value)


@app.task(name=OVERRUN)
def overrun(redis_url: str, seconds: float) -> None:
    _record(redis_url, "pid", str(os.getpid()))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(0.2)
        except SoftTimeLimitExceeded:
            _record(redis_url, "soft", "1")  # and carries on: only the hard limit stops it
    _record(redis_url, "finished", "1")


@app.task(name=QUICK)
def quick(redis_url: str) -> None:
    from workers.runtime.metrics import WorkerMetrics

    # Counted in this pool process; served by the worker's main process.
    WorkerMetrics().jobs.labels(kind="test", status="ok").inc()
    _record(redis_url, "quick_pid", str(os.getpid()))
