"""A worker says it is alive: a Redis key per worker, renewed every few seconds, that
expires when the worker stops. The dashboard's queue view lists them."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import redis

from bot.contract.queues import HEARTBEAT_PREFIX, HEARTBEAT_TTL_S

EVERY_S = 10
log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self, client: redis.Redis, hostname: str, queues: list[str], concurrency: int
    ) -> None:
        self.client, self.key = client, HEARTBEAT_PREFIX + hostname
        self.info = {
            "hostname": hostname,
            "queues": queues,
            "concurrency": concurrency,
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
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)
            self._stop.wait(EVERY_S)
