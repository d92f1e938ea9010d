"""A worker says it is alive: a Redis key per worker, renewed every few seconds, that
expires when the worker stops. The dashboard's queue view lists them; `qwenfix health
worker` (the container's probe) and `qwenfix doctor` read them."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from typing import Any

import redis

from bot.contract.queues import HEARTBEAT_PREFIX, HEARTBEAT_TTL_S

EVERY_S = 10
log = logging.getLogger(__name__)


def enforces_time_limits(pool: object) -> bool:
    """Only prefork's pool kills a task past its hard time limit (billiard terminates the
    child process); the threads and solo pools ignore both limits."""
    from celery.concurrency.prefork import TaskPool

    return isinstance(pool, TaskPool)


def pool_name(pool: object) -> str:
    # celery.concurrency.<name>.TaskPool: the name `--pool` takes.
    return type(pool).__module__.rsplit(".", 1)[-1] if pool is not None else "unknown"


class Heartbeat:
    def __init__(
        self,
        client: redis.Redis,
        hostname: str,
        queues: list[str],
        concurrency: int,
        *,
        pool: str = "unknown",
        time_limits: bool = False,
    ) -> None:
        self.client, self.key = client, HEARTBEAT_PREFIX + hostname
        self.info = {
            "hostname": hostname,
            # The machine or container: what its own probe looks for.
            "host": socket.gethostname(),
            "queues": queues,
            "concurrency": concurrency,
            "pool": pool,
            "time_limits": time_limits,
            "pid": os.getpid(),
            "started": time.time(),
        }
        self._stop = threading.Event()

    def beat(self) -> None:
        self.client.set(
            self.key, json.dumps({**self.info, "seen": time.time()}), ex=HEARTBEAT_TTL_S
        )

    def start(self) -> None:
        threading.Thread(target=self._run, name="qwenfix-heartbeat", daemon=True).start()

    def stop(self) -> None:
        """Stop beating and say so at once (a stopped worker is not listed for the TTL)."""
        self._stop.set()
        with contextlib.suppress(redis.RedisError):
            self.client.delete(self.key)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)
            self._stop.wait(EVERY_S)


def worker_heartbeats(client: redis.Redis) -> list[dict[str, Any]]:
    """Every worker whose heartbeat has not expired (renewed within HEARTBEAT_TTL_S)."""
    out = []
    for key in client.scan_iter(match=HEARTBEAT_PREFIX + "*", count=100):
        raw = client.get(key)
        if raw:
            with contextlib.suppress(ValueError):
                out.append(json.loads(raw))  # type: ignore[arg-type]
    return sorted(out, key=lambda w: str(w.get("hostname")))
