"""One running job per (repository, issue or pull request): a Redis lock with a TTL."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import redis

PREFIX = "qwenfix:lock:"
# Deletes the lock only if it is still ours: never another job's lock after a TTL expiry.
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end"
)


def lock_holder(client: redis.Redis, target: str) -> str | None:
    """The job holding `target`'s lock, if any."""
    value: Any = client.get(PREFIX + target)  # bytes (redis-py types it sync|async)
    return value.decode() if value is not None else None


class TargetLock:
    def __init__(self, client: redis.Redis, target: str, owner: str, ttl_s: int) -> None:
        self.client, self.key, self.owner, self.ttl_s = client, PREFIX + target, owner, ttl_s
        self.held = False

    def __enter__(self) -> TargetLock:
        if self.client.set(self.key, self.owner, nx=True, ex=self.ttl_s):
            self.held = True
        else:
            # The same job, delivered again after its worker died, takes its lock back.
            if self.holder() == self.owner:
                self.client.expire(self.key, self.ttl_s)
                self.held = True
        return self

    def holder(self) -> str | None:
        return lock_holder(self.client, self.key.removeprefix(PREFIX))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.held:
            self.client.eval(_RELEASE, 1, self.key, self.owner)
