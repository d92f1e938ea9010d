"""A repository's setup runs once: later jobs start from its snapshot while the image, the
setup command and the files setup reads stay the same; the cache stays within its bounds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import SandboxBackend
from sandbox.docker_backend import DockerBackend
from sandbox.local_backend import LocalBackend
from tests.helpers import FIX_STEPS, fix, git, make_repo
from workers.engine.agent.trajectory import read_trajectory
from workers.engine.prepared import KEY_LABEL, prune, setup_key
from workers.engine.repo_config import RepoConfig
from workers.settings import WorkerSettings

# Setup writes outside the workspace (as an installer would) and leaves a build directory.
SETUP = (
    "date +%s%N > /opt/setup-ran && mkdir -p build && echo built > build/artifact "
    "&& chown -R 1000:1000 build"
)
REPO: dict[str, str | bytes] = {
    "mathlib.py": "def double(x):\n    return x + x + 1\n",
    "tests/test_mathlib.py": (
        "from mathlib import double\n\n\ndef test_double():\n    assert double(2) == 4\n"
    ),
    "requirements.txt": "six==1.16.0\n",
    ".qwenfix.yml": f"test: python -m pytest -q\nsetup: '{SETUP}'\nsetup_network: false\n",
}
LOOK = {
    "tool_calls": [
        {
            "name": "bash",
            "arguments": {
                "command": "cat /opt/setup-ran; cat build/artifact; cat NEWS; "
                "git log --oneline | wc -l; test -e OBSOLETE && echo stale || echo gone"
            },
        }
    ]
}


@pytest.fixture
def cached(settings: WorkerSettings) -> WorkerSettings:
    settings.setup_cache = True
    return settings


@pytest.fixture
def clean_snapshots(backend: DockerBackend) -> Iterator[set[str]]:
    """The snapshots there were before the test; the test's own are removed after it."""
    before = {s.id for s in backend.snapshots()}
    yield before
    for snap in backend.snapshots():
        if snap.id not in before:
            backend.remove_snapshot(snap.id)


def new_keyed(backend: DockerBackend, before: set[str]) -> int:
    return len([s for s in backend.snapshots() if KEY_LABEL in s.labels and s.id not in before])


def events(result: Any) -> list[str]:
    return [r["event"] for r in read_trajectory(Path(result.trajectory))]


def looked(server: Any) -> str:
    return next(m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool")


def commit(repo: Path, path: str, content: str) -> None:
    (repo / path).write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"change {path}")
    git(repo, "branch", "-D", "qwenfix/issue-7")


def run(
    repo: Path, scripted_model: Any, backend: SandboxBackend, settings: WorkerSettings
) -> tuple[Any, Any]:
    server = scripted_model([LOOK, *FIX_STEPS])
    result = fix(repo, server, backend, settings)
    assert result.status == "resolved", result.reason
    return result, server


@pytest.mark.docker
def test_a_second_job_skips_setup_and_a_changed_input_runs_it_again(
    tmp_path: Path,
    scripted_model: Any,
    backend: DockerBackend,
    cached: WorkerSettings,
    clean_snapshots: set[str],
) -> None:
    repo = make_repo(tmp_path / "repo", {**REPO, "NEWS": "first\n", "OBSOLETE": "old\n"})
    first, server = run(repo, scripted_model, backend, cached)
    assert "setup" in events(first) and "setup_reused" not in events(first)
    stamp = looked(server).split()[0]
    assert "build/" not in first.diff  # what setup left is never part of a change
    assert new_keyed(backend, clean_snapshots) == 1

    assert looked(server).split()[4] == "stale"
    # A new commit that leaves setup's inputs alone: the snapshot, not setup.
    git(repo, "rm", "-q", "OBSOLETE")
    commit(repo, "NEWS", "second\n")
    second, server = run(repo, scripted_model, backend, cached)
    assert "setup" not in events(second) and "setup_reused" in events(second)
    seen = looked(server).split()
    assert seen[0] == stamp  # setup's own output, from the snapshot
    assert seen[1:3] == ["built", "second"]  # its build output, and this commit's tree
    assert seen[3] == "1"  # the sandbox's git holds this commit alone, as after a setup
    assert seen[4] == "gone"  # the snapshot's commit's files made way for this one's
    assert "NEWS" not in second.diff

    # A changed dependency file: setup runs again, for a new key.
    commit(repo, "requirements.txt", "six==1.17.0\n")
    third, server = run(repo, scripted_model, backend, cached)
    assert "setup" in events(third)
    assert looked(server).split()[0] != stamp
    assert new_keyed(backend, clean_snapshots) == 2


def test_the_key_follows_the_setup_inputs_only(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", REPO)
    config = RepoConfig(test="python -m pytest", setup="pip install -r requirements.txt")
    base = git(repo, "rev-parse", "HEAD").strip()
    key = setup_key(repo, base, config, image="img:1")
    (repo / "mathlib.py").write_text("def double(x):\n    return 2 * x\n")
    git(repo, "commit", "-qam", "source")
    source = git(repo, "rev-parse", "HEAD").strip()
    assert setup_key(repo, source, config, image="img:1") == key
    assert setup_key(repo, source, config, image="img:2") != key
    other = config.model_copy(update={"setup": "pip install -e ."})
    assert setup_key(repo, source, other, image="img:1") != key
    (repo / "requirements.txt").write_text("six\n")
    git(repo, "commit", "-qam", "deps")
    deps = git(repo, "rev-parse", "HEAD").strip()
    assert setup_key(repo, deps, config, image="img:1") != key
    # A script the command names is an input too.
    (repo / "scripts").mkdir()
    (repo / "scripts" / "bootstrap").write_text("pip install six\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "script")
    scripted = config.model_copy(update={"setup": "bash scripts/bootstrap"})
    first = setup_key(repo, git(repo, "rev-parse", "HEAD").strip(), scripted, image="img:1")
    (repo / "scripts" / "bootstrap").write_text("pip install six==1.16.0\n")
    git(repo, "commit", "-qam", "script changed")
    assert setup_key(repo, git(repo, "rev-parse", "HEAD").strip(), scripted, image="img:1") != first


def test_bubblewrap_reuses_setup_too(
    tmp_path: Path, scripted_model: Any, cached: WorkerSettings
) -> None:
    backend = LocalBackend(snapshot_dir=tmp_path / "snapshots")
    files = {
        "mathlib.py": "def double(x):\n    return x + x + 1\n",
        "NEWS": "first\n",
        "test_mathlib.py": "import unittest\nfrom mathlib import double\n\n\n"
        "class T(unittest.TestCase):\n    def test_double(self):\n"
        "        self.assertEqual(double(2), 4)\n",
        ".qwenfix.yml": "test: python3 -m unittest -v\n"
        "setup: 'mkdir -p build && date +%s%N > build/stamp'\n"
        "setup_network: false\n",
    }
    repo = make_repo(tmp_path / "repo", files)
    look = {"tool_calls": [{"name": "bash", "arguments": {"command": "cat build/stamp NEWS"}}]}
    first = fix(repo, scripted_model([look, *FIX_STEPS]), backend, cached)
    assert first.status == "resolved", first.reason
    commit(repo, "NEWS", "second\n")
    server = scripted_model([look, *FIX_STEPS])
    second = fix(repo, server, backend, cached)
    assert second.status == "resolved", second.reason
    assert "setup_reused" in events(second)
    assert looked(server).split()[1] == "second"
    for snap in backend.snapshots():
        backend.remove_snapshot(snap.id)


@pytest.mark.docker
def test_the_cache_is_bounded_by_age_and_size(
    backend: DockerBackend, settings: WorkerSettings, clean_snapshots: set[str]
) -> None:
    from sandbox import SandboxSpec
    from sandbox.protocol import session

    made = []
    for n in range(3):
        with session(backend, SandboxSpec(image=settings.sandbox_image)) as sb:
            assert sb.run("head -c 3000000 /dev/urandom > blob", timeout=30).ok
            made.append(backend.snapshot(sb, labels={KEY_LABEL: f"k{n}"}).id)
    settings.setup_cache_max_mb = 100_000
    assert not set(prune(backend, settings, keep=made[-1])) & set(made)
    # Each holds 3 MB of its own: room for one (and none for what earlier tests left).
    settings.setup_cache_max_mb = 4
    removed = prune(backend, settings, keep=made[-1])
    assert set(made[:2]) <= set(removed) and made[-1] not in removed
    settings.setup_cache_max_mb, settings.setup_cache_max_age_h = 100_000, 1e-9
    assert made[-1] in prune(backend, settings, keep="")
    assert not {s.id for s in backend.snapshots()} & set(made)
