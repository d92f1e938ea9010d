from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import redis

from sandbox.docker_backend import LABEL, DockerBackend
from tests.fakes.model_server import ScriptedModelServer
from workers.settings import WorkerSettings

SANDBOX_IMAGE = "qwenfix-sandbox:1"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
        client.images.get(SANDBOX_IMAGE)
    except docker.errors.DockerException as exc:  # make test starts both; say so plainly
        pytest.fail(f"Docker engine or image {SANDBOX_IMAGE} missing ({exc}); run `make test`")
    return client


@pytest.fixture
def backend(docker_client: docker.DockerClient) -> Iterator[DockerBackend]:
    before = {c.id for c in docker_client.containers.list(all=True, filters={"label": LABEL})}
    yield DockerBackend(docker_client)
    leftover = [
        c
        for c in docker_client.containers.list(all=True, filters={"label": LABEL})
        if c.id not in before
    ]
    for container in leftover:
        container.remove(force=True)
    assert not leftover, "a sandbox container was left behind"


@pytest.fixture
def settings(tmp_path: Path) -> WorkerSettings:
    return WorkerSettings(
        sandbox_image=SANDBOX_IMAGE,
        trajectory_dir=tmp_path / "trajectories",
        llm_backoff_s=0.01,
        llm_max_retries=2,
        llm_timeout_s=30,
        command_timeout_s=30,
        sandbox_memory_mb=1024,
        # Each run snapshots its setup and removes the snapshot after; the tests of the
        # cache itself turn it on.
        setup_cache=False,
    )


@pytest.fixture
def scripted_model() -> Iterator[Any]:
    servers: list[ScriptedModelServer] = []

    def start(
        steps: list[dict[str, Any]], mode: str = "openai", **options: Any
    ) -> ScriptedModelServer:
        server = ScriptedModelServer({"mode": mode, "steps": steps}, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def fresh_redis(db: int) -> tuple[str, redis.Redis]:
    """A Redis database of our own on the local server (`make test` starts it), emptied."""
    url = f"redis://127.0.0.1:6379/{db}"
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.fail("Redis is not running on 127.0.0.1:6379; run `make test`")
    client.flushdb()
    return url, client


@pytest.fixture
def receiver_client(tmp_path: Path) -> Iterator[Any]:
    """The receiver in-process (real Redis database 4, a fresh SQLite file), for tests
    that send it many requests."""
    from fastapi.testclient import TestClient

    from bot.receiver.app import create_app

    from .helpers import make_receiver

    url, _ = fresh_redis(4)
    _, receiver = make_receiver(f"sqlite:///{tmp_path / 'fuzz.db'}", url, "fuzz-secret")
    with TestClient(create_app(receiver)) as client:
        yield client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test is marked by its folder (`-m unit`, `-m integration`); tests that restart
    the Docker engine go last: nothing else is using it then."""
    for item in items:
        folder = Path(str(item.path)).parent.name
        if folder in ("unit", "integration", "vllm"):
            item.add_marker(folder)
    items.sort(key=lambda item: item.get_closest_marker("engine_restart") is not None)


@pytest.fixture(scope="session")
def ecosystem_image(docker_client: docker.DockerClient) -> Any:
    """`ecosystem_image("node")`: the sandbox image for those ecosystems, built the first
    time a test needs it (scripts/build-ecosystem-image.sh; a minute or two each), so a
    run of a few tests builds only what they use."""

    def build(ecosystems: str) -> str:
        script = str(ROOT / "scripts" / "build-ecosystem-image.sh")
        built = subprocess.run(["bash", script, ecosystems], capture_output=True, text=True)
        if built.returncode != 0:
            pytest.fail(f"could not build the {ecosystems} sandbox image:\n{built.stderr}")
        tag = subprocess.run(
            ["bash", script, ecosystems, "--print-tag"], capture_output=True, text=True
        )
        return tag.stdout.strip()

    return build
