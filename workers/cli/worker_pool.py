"""Which Celery pool `qwenfix worker` runs its jobs in."""

from __future__ import annotations

# Only prefork kills a task at its hard time limit (the process goes, and its sandbox
# calls with it); the others are for tests and demos on one machine.
POOLS = ("prefork", "solo", "threads")


def check_pool(pool: str) -> str:
    """A warning for a pool that does not enforce time limits; ValueError for one that
    qwenfix does not run under."""
    if pool not in POOLS:
        raise ValueError(f"--pool is one of {', '.join(POOLS)}")
    if pool == "prefork":
        return ""
    return (
        f"the {pool} pool does not enforce the task time limits: a job that hangs holds "
        "its slot until the worker restarts (deployments use prefork)"
    )
