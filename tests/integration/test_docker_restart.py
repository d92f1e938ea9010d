"""The Docker engine stopped under a long-lived backend (a worker's) and started again:
while it is gone every sandbox call fails fast with a clear SandboxError, cleanup never
raises, and afterwards the same backend starts sandboxes again and removes what the
outage left behind. Runs last (see conftest): it restarts the engine every other Docker
test uses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from sandbox.docker_backend import DockerBackend
from sandbox.errors import SandboxError, SandboxUnavailable
from sandbox.protocol import SandboxSpec
from tests.conftest import SANDBOX_IMAGE

ROOT = Path(__file__).resolve().parents[2]
SOCKET = "/var/run/docker.sock"


def engine_answers() -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(SOCKET)
            return True
        except OSError:
            return False


def stop_engine() -> None:
    pids = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.split()
    if not pids:
        pytest.fail("no dockerd process to restart (is the engine a remote one?)")
    for pid in pids:
        os.kill(int(pid), signal.SIGTERM)
    deadline = time.monotonic() + 60
    while (
        engine_answers()
        or subprocess.run(["pidof", "dockerd"], capture_output=True).returncode == 0
    ):
        assert time.monotonic() < deadline, "dockerd did not stop"
        time.sleep(0.2)


def start_engine() -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "ensure-docker.sh")], check=True, timeout=120)


@pytest.mark.docker
@pytest.mark.engine_restart
def test_the_engine_restarted_between_runs(backend: DockerBackend, docker_client: Any) -> None:
    spec = SandboxSpec(image=SANDBOX_IMAGE)
    before = backend.start(spec)
    assert before.run("echo up", timeout=30).output.strip() == "up"
    try:
        stop_engine()
        started = time.monotonic()
        with pytest.raises(SandboxError):
            before.run("echo still there?", timeout=30)
        with pytest.raises(SandboxUnavailable) as refused:
            backend.start(spec)
        assert "ensure-docker" in refused.value.hint
        backend.stop(before)  # cleanup in a `finally` must not hide the job's own error
        assert time.monotonic() - started < 10, "calls to a stopped engine hung"
    finally:
        start_engine()

    after = backend.start(spec)
    try:
        assert after.run("python -c 'print(6 * 7)'", timeout=60).output.strip() == "42"
    finally:
        backend.stop(after)
    backend.stop(before)  # what the outage left behind goes once the engine is back
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(before.id)
