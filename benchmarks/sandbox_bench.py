"""Sandbox latency: from "start" to the first command's output, and the cost of one more
command, through qwenfix's Docker backend (docker SDK, limits, labels, non-root user)
next to the Docker CLI doing the least it can (`docker run --rm IMAGE true`, `docker exec
CONTAINER true`) in the same run. There is no warm pool: every job starts its own."""

from __future__ import annotations

import json
import statistics
import subprocess
import time

from sandbox.docker_backend import DockerBackend
from sandbox.protocol import SandboxSpec, session

IMAGE = "qwenfix-sandbox:1"


def timed(fn: object, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run(runs: int = 5, commands: int = 30) -> dict[str, float]:
    backend = DockerBackend()
    spec = SandboxSpec(image=IMAGE, memory_mb=1024)

    def first_output() -> None:
        with session(backend, spec) as sb:
            sb.run("true", timeout=30)

    start_ours = timed(first_output, runs)
    start_cli = timed(
        lambda: subprocess.run(
            ["docker", "run", "--rm", IMAGE, "true"], check=True, capture_output=True
        ),
        runs,
    )
    sb = backend.start(spec)  # the Docker sandbox itself: its container id is needed
    try:
        sb.run("true", timeout=30)
        exec_ours = timed(lambda: sb.run("true", timeout=30), commands)
        exec_cli = timed(
            lambda: subprocess.run(
                ["docker", "exec", sb.id, "true"], check=True, capture_output=True
            ),
            commands,
        )
    finally:
        backend.stop(sb)
    return {
        "start_to_first_output_s": start_ours,
        "docker_run_s": start_cli,
        "command_s": exec_ours,
        "docker_exec_s": exec_cli,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
