"""The sandbox's git tells a project's version as the host's does: history back to the
nearest tag and the tag, so that setuptools_scm (and versioneer, dunamai, `git describe`)
give the real version instead of 0.1.dev1 — from a full clone (qwenfix fix, eval) and
from a GitHub job's partial one. Without a tag the base is the only commit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sandbox.docker_backend import DockerBackend
from tests.helpers import git, make_repo
from workers.engine.agent.trajectory import Trajectory
from workers.engine.prepared import working_sandbox
from workers.engine.repo_config import RepoConfig
from workers.settings import WorkerSettings

pytestmark = pytest.mark.docker

PROJECT: dict[str, str | bytes] = {
    "pyproject.toml": (
        "[build-system]\n"
        'requires = ["setuptools>=64", "setuptools_scm>=8"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "verpkg"\ndynamic = ["version"]\n\n'
        "[tool.setuptools_scm]\n"
    ),
    "verpkg/__init__.py": "",
}
VERSION = "python -c 'import importlib.metadata as m; print(m.version(\"verpkg\"))'"


def tagged(root: Path) -> Path:
    """v1.4.0, then a side branch merged and two more commits: describe counts all four."""
    repo = make_repo(root, PROJECT)
    git(repo, "tag", "-a", "v1.4.0", "-m", "release 1.4.0")
    git(repo, "checkout", "-qb", "side")
    (repo / "SIDE").write_text("side\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "side work")
    git(repo, "checkout", "-q", "main")
    for n in (1, 2):
        (repo / "NEWS").write_text(f"{n}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"news {n}")
    git(repo, "merge", "-q", "--no-edit", "side")
    return repo


def in_sandbox(
    repo: Path, backend: DockerBackend, settings: WorkerSettings, tmp_path: Path, command: str
) -> str:
    config = RepoConfig(setup="python -m pip install -q -e .", test="true")
    with (
        Trajectory(tmp_path / "t.jsonl") as trajectory,
        working_sandbox(
            backend,
            repo,
            git(repo, "rev-parse", "HEAD").strip(),
            config=config,
            settings=settings,
            trajectory=trajectory,
            run_label="version-test",
        ) as (sb, _),
    ):
        ran = sb.run(command, timeout=120)
        assert ran.ok, ran.output
        return ran.output


def test_setuptools_scm_gets_the_version_the_host_describes(
    tmp_path: Path, backend: DockerBackend, settings: WorkerSettings
) -> None:
    repo = tagged(tmp_path / "repo")
    described = git(repo, "describe", "--tags").strip()
    assert described.startswith("v1.4.0-4-g")
    seen = in_sandbox(
        repo,
        backend,
        settings,
        tmp_path,
        f"git describe --tags; {VERSION}; git status --porcelain | wc -l; "
        "echo x >> NEWS; git diff --stat | tail -1",
    ).split("\n")
    assert seen[0] == described
    head = git(repo, "rev-parse", "HEAD").strip()
    version = re.fullmatch(r"1\.4\.1\.dev4\+g([0-9a-f]+)", seen[1])
    assert version is not None and head.startswith(version.group(1)), seen[1]
    assert seen[2] == "0"  # the workspace is exactly the commit
    assert "1 file changed" in seen[3]  # and the agent's change shows against it


def test_a_partial_clone_gives_the_same_history_without_its_blobs(
    tmp_path: Path, backend: DockerBackend, settings: WorkerSettings
) -> None:
    """As a GitHub job clones: blob:none, single branch, tags followed."""
    source = tagged(tmp_path / "source")
    git(source, "config", "uploadpack.allowFilter", "true")
    clone = tmp_path / "clone"
    git(
        tmp_path,
        "clone",
        "-q",
        "--filter=blob:none",
        "--single-branch",
        "--branch",
        "main",
        f"file://{source}",
        str(clone),
    )
    seen = in_sandbox(
        clone,
        backend,
        settings,
        tmp_path,
        f"git describe --tags; {VERSION}; git status --porcelain | wc -l; "
        "echo x >> NEWS; git diff | grep -c '^+x'",
    ).split("\n")
    assert seen[0] == git(source, "describe", "--tags").strip()
    assert seen[1].startswith("1.4.1.dev4+g")
    assert seen[2:4] == ["0", "1"]


def test_without_a_tag_the_base_is_the_only_commit(
    tmp_path: Path, backend: DockerBackend, settings: WorkerSettings
) -> None:
    repo = make_repo(tmp_path / "repo", {**PROJECT, "NEWS": "1\n"})
    (repo / "NEWS").write_text("2\n")
    git(repo, "commit", "-qam", "second")
    seen = in_sandbox(
        repo, backend, settings, tmp_path, "git log --oneline | wc -l; git status --porcelain"
    )
    assert seen.strip() == "1"
