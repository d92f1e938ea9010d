"""Which sandbox image a repository gets, asked of the real Docker engine: the one for its
ecosystems (a versioned tag first), the one it names, or a clear error naming what is
missing and how to get it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from sandbox.docker_backend import DockerBackend
from tests.helpers import call, fix, make_repo, step
from workers.engine.agent.trajectory import read_trajectory
from workers.engine.environment import EnvironmentMissing, choose
from workers.engine.repo_config import RepoConfig, detect
from workers.settings import WorkerSettings


def config_of(files: dict[str, str]) -> RepoConfig:
    return detect(list(files), lambda p: files[p].encode() if p in files else None)


NODE = {"package.json": json.dumps({"scripts": {"test": "node --test"}}), ".nvmrc": "v20.11\n"}


@pytest.fixture
def node20(docker_client: docker.DockerClient, ecosystem_image: Any) -> Iterator[str]:
    """The node image under a versioned tag too, as deploy/sandbox builds them."""
    image = docker_client.images.get(ecosystem_image("node"))
    image.tag("qwenfix-sandbox", "node20")
    yield "qwenfix-sandbox:node20"
    docker_client.images.remove("qwenfix-sandbox:node20")


def test_the_versioned_image_is_chosen_when_there_is_one(
    backend: DockerBackend, settings: WorkerSettings, node20: str
) -> None:
    environment = choose(config_of(NODE), settings, backend)
    assert environment.image == node20
    assert environment.source == "detected (node)" and environment.notes == ()
    assert environment.settings(settings).sandbox_image == node20


def test_else_the_plain_one_and_the_run_says_which_version_was_asked(
    backend: DockerBackend, settings: WorkerSettings, ecosystem_image: Any
) -> None:
    plain = ecosystem_image("node")
    files = {**NODE, ".nvmrc": "22\n"}
    environment = choose(config_of(files), settings, backend)
    assert environment.image == plain
    assert environment.notes == (
        "Node.js: the repository asks for 22, and no image has that version",
    )


def test_a_missing_image_is_a_clear_error(backend: DockerBackend, settings: WorkerSettings) -> None:
    files = {"go.mod": "module x\n\ngo 1.23\n", "package.json": "{}"}
    settings.sandbox_ecosystem_image = "qwenfix-sandbox-absent:{ecosystems}"
    with pytest.raises(EnvironmentMissing) as caught:
        choose(config_of(files), settings, backend)
    message = caught.value.reason
    assert "needs Node.js (from package.json), Go (from go.mod)" in message
    assert "tried qwenfix-sandbox-absent:go1.23-node, qwenfix-sandbox-absent:go-node" in message
    assert "scripts/build-ecosystem-image.sh go,node" in message
    assert caught.value.needed == ["go", "node"]


def test_a_python_repository_keeps_the_default_image(
    backend: DockerBackend, settings: WorkerSettings
) -> None:
    environment = choose(config_of({"conftest.py": ""}), settings, backend)
    assert environment.image == settings.sandbox_image
    assert environment.settings(settings) is settings


def test_an_image_the_config_names_must_exist(
    backend: DockerBackend, settings: WorkerSettings
) -> None:
    config = config_of(NODE).model_copy(
        update={"image": "registry.example/missing:1", "source": ".qwenfix.yml"}
    )
    with pytest.raises(EnvironmentMissing) as caught:
        choose(config, settings, backend)
    assert "the sandbox image registry.example/missing:1 that .qwenfix.yml names" in (
        caught.value.reason
    )


def test_a_dev_container_image_this_worker_lacks_is_skipped_with_a_note(
    backend: DockerBackend, settings: WorkerSettings, ecosystem_image: Any
) -> None:
    files = {**NODE, ".devcontainer/devcontainer.json": '{"image": "mcr.example/node:20"}'}
    environment = choose(config_of(files), settings, backend)
    assert environment.image in ("qwenfix-sandbox:node20", ecosystem_image("node"))
    assert (
        "the dev container's image mcr.example/node:20 is not on this worker"
        in (environment.notes[0])
    )


def test_a_fix_job_fails_with_the_missing_image_named(
    tmp_path: Path, scripted_model: Any, backend: DockerBackend, settings: WorkerSettings
) -> None:
    repo = make_repo(tmp_path / "repo", {"Cargo.toml": '[package]\nname = "x"\n'})
    settings.sandbox_ecosystem_image = "qwenfix-sandbox-absent:{ecosystems}"
    result = fix(repo, scripted_model([step(call("submit", summary="x"))]), backend, settings)
    assert result.status == "error"
    assert "needs Rust (from Cargo.toml)" in result.reason
    assert "scripts/build-ecosystem-image.sh rust" in result.reason


PYTHON_AND_NODE = {
    # A Python service with a JavaScript front end: both set up, both tested.
    "conftest.py": "",
    "service.py": "def answer():\n    return 42\n",
    "tests/test_service.py": (
        "from service import answer\n\n\ndef test_answer():\n    assert answer() == 42\n"
    ),
    "package.json": json.dumps({"scripts": {"test": "node --test"}}),
    "web/format.js": "exports.title = (s) => s.toLowerCase();\n",
    "web/format.test.js": (
        "const test = require('node:test');\nconst assert = require('node:assert');\n"
        "const { title } = require('./format');\n"
        "test('title upper-cases', () => assert.strictEqual(title('ab'), 'AB'));\n"
    ),
}


def test_a_two_ecosystem_repository_is_set_up_tested_and_fixed_in_one_image(
    tmp_path: Path,
    scripted_model: Any,
    backend: DockerBackend,
    settings: WorkerSettings,
    ecosystem_image: Any,
) -> None:
    image = ecosystem_image("node")
    repo = make_repo(tmp_path / "repo", PYTHON_AND_NODE)
    steps = [
        step(
            call("str_replace", path="web/format.js", old_str="toLowerCase", new_str="toUpperCase")
        ),
        step(call("submit", summary="title() upper-cases.", title="Fix title()")),
    ]
    server = scripted_model(steps)
    result = fix(repo, server, backend, settings, issue="title() lower-cases instead.")
    assert result.status == "resolved", result.reason
    events = read_trajectory(Path(result.trajectory or ""))
    environment = next(e for e in events if e["event"] == "environment")
    assert environment["image"] == image
    assert set(environment["versions"]) == {"python", "node"}
    before = next(e for e in events if e["event"] == "tests_before")
    assert before["tests"] == {
        "tests.test_service::test_answer": "passed",
        "test::title upper-cases": "failed",
    }
    task = server.requests[0]["messages"][1]["content"]
    assert "<environment>\nThe sandbox has no network" in task
    assert "- Node.js: v" in task and "- Python: Python 3." in task
