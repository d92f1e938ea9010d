"""Per-task environments: the shared dependencies are built once per repository, version,
Python and image, found again by their key (not confused with the snapshots later made
from them), and a task's preparation becomes part of its base, as SWE-bench commits it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.docker_backend import DockerBackend
from tests.conftest import SANDBOX_IMAGE
from tests.helpers import git, make_repo
from workers.engine.agent.trajectory import Trajectory
from workers.engine.prepared import working_sandbox
from workers.engine.repo_config import RepoConfig
from workers.eval.environment_spec import TaskEnvironment
from workers.eval.environments import ENVIRONMENT_LABEL, EnvironmentFailed, Environments
from workers.eval.tasks import EvalTask
from workers.settings import WorkerSettings

pytestmark = pytest.mark.docker


@pytest.fixture
def environments(backend: DockerBackend, settings: WorkerSettings) -> Iterator[Environments]:
    before = {s.id for s in backend.snapshots()}
    yield Environments(backend, settings)
    for snap in backend.snapshots():
        if snap.id not in before:
            backend.remove_snapshot(snap.id)


def task(instance: str) -> EvalTask:
    return EvalTask(
        instance_id=instance,
        repo="octo/lib",
        base_commit="HEAD",
        problem_statement="p",
        version="1.0",
    )


def test_two_tasks_of_one_version_share_one_build(
    tmp_path: Path, environments: Environments, backend: DockerBackend, docker_client: Any
) -> None:
    env = TaskEnvironment(
        dependencies=["python -m pip install --no-cache-dir six==1.16.0 && date +%s%N > /opt/built"]
    )
    repo = make_repo(tmp_path / "repo", {"lib.py": "import six\n"})
    first = environments.for_task(task("octo__lib-1"), env, repo, run_label="env-test")
    second = environments.for_task(task("octo__lib-2"), env, repo, run_label="env-test")
    assert (first.environment_reused, second.environment_reused) == (False, True)
    assert first.snapshot == second.snapshot and first.image == SANDBOX_IMAGE

    # A task's own setup snapshot starts from the environment and is not taken for it.
    settings = first.settings(environments.settings)
    with (
        Trajectory(tmp_path / "t.jsonl") as trajectory,
        working_sandbox(
            backend,
            repo,
            first.base,
            config=RepoConfig(setup="true", test="true"),
            settings=settings,
            trajectory=trajectory,
            run_label="env-test",
        ) as (sb, prepared),
    ):
        assert sb.run("python -c 'import six' && cat /opt/built", timeout=60).ok
        child = next(s for s in backend.snapshots() if s.id == prepared.snapshot)
        assert ENVIRONMENT_LABEL not in child.labels
        third = environments.for_task(task("octo__lib-3"), env, repo, run_label="env-test")
        assert third.snapshot == first.snapshot

    # Other dependencies are another environment.
    other = env.model_copy(update={"dependencies": ["true"]})
    assert environments.for_task(task("octo__lib-4"), other, repo, run_label="x").snapshot not in (
        first.snapshot,
        None,
    )


def test_the_preparation_s_edits_become_the_base(
    tmp_path: Path, environments: Environments
) -> None:
    repo = make_repo(tmp_path / "repo", {"setup.cfg": "requires = a>=>=1\n", "x.py": ""})
    base = git(repo, "rev-parse", "HEAD").strip()
    env = TaskEnvironment(prepare=["sed -i 's/>=>=/>=/' setup.cfg && touch /opt/prepared"])
    prepared = environments.for_task(task("octo__lib-5"), env, repo, run_label="env-test")
    try:
        assert prepared.base != base and git(repo, "rev-parse", "HEAD~1").strip() == base
        assert (repo / "setup.cfg").read_text() == "requires = a>=1\n"
        assert git(repo, "status", "--porcelain") == ""
        assert prepared.temporary == [prepared.snapshot]
    finally:
        environments.release(prepared)

    failing = TaskEnvironment(prepare=["echo cannot; exit 3"])
    with pytest.raises(
        EnvironmentFailed, match=r"`echo cannot; exit 3` failed \(exit 3\):\ncannot"
    ):
        environments.for_task(task("octo__lib-6"), failing, repo, run_label="env-test")
