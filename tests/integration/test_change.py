"""The change is the workspace's tree against the base commit, read by the harness: what
the sandbox's own git says (index, HEAD, excludes, config) changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import Sandbox, SandboxSpec
from sandbox.local_backend import LocalBackend
from sandbox.protocol import session
from tests.helpers import git, make_repo
from workers.engine.change import ChangeUnreadable, capture_change, materialise
from workers.engine.local_forge import LocalForge, PublishMismatch
from workers.engine.workspace import copy_in

FILES: dict[str, str | bytes] = {
    "app.py": "print('hi')\n",
    "run.sh": "#!/bin/sh\necho run\n",
    "data.bin": b"\x00\x01\x02",
    "docs/old.md": "old\n",
    ".gitignore": "*.log\n",
}


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Sandbox, Path, str]]:
    repo = make_repo(tmp_path / "repo", FILES)
    base = git(repo, "rev-parse", "HEAD").strip()
    with session(LocalBackend(), SandboxSpec(image="host")) as sb:
        copy_in(sb, repo, base)
        yield sb, repo, base


def sh(sb: Sandbox, command: str) -> None:
    result = sb.run(command, timeout=60)
    assert result.ok, result.output


def test_every_kind_of_change_is_captured(workspace: tuple[Sandbox, Path, str]) -> None:
    sb, repo, base = workspace
    sh(
        sb,
        "echo \"print('bye')\" > app.py && chmod +x app.py && rm docs/old.md "
        "&& printf '\\x00\\xff' > data.bin && mkdir -p new && echo n > new/file.txt "
        "&& ln -s ../app.py new/link && echo litter > debug.log "
        "&& mkdir __pycache__ && echo x > __pycache__/app.cpython-311.pyc",
    )
    change = capture_change(sb, repo, base, leave_out=[], workdir=sb.spec.workdir)
    got = {(f.path, f.status, f.mode) for f in change.files}
    assert got == {
        ("app.py", "modified", "100755"),
        ("data.bin", "modified", "100644"),
        ("docs/old.md", "deleted", "100644"),
        ("new/file.txt", "added", "100644"),
        ("new/link", "added", "120000"),
    }
    assert change.contents["new/link"] == b"../app.py"
    assert change.contents["data.bin"] == b"\x00\xff"
    assert change.left_out == ["debug.log"]  # ignored by .gitignore; the litter is not listed
    # Read back from the diff alone, the same tree and contents.
    again = materialise(repo, base, change.diff)
    assert again.tree == change.tree and again.contents == change.contents


def test_the_sandbox_git_state_changes_nothing(workspace: tuple[Sandbox, Path, str]) -> None:
    sb, repo, base = workspace
    sh(
        sb,
        "echo hidden > hidden.py && echo hidden.py >> .git/info/exclude "
        "&& echo 'x = 1' >> app.py && git update-index --assume-unchanged app.py "
        "&& git config core.excludesFile /tmp/ex && echo '*.py' > /tmp/ex "
        "&& git add -A && git commit -qm sneaky --amend",
    )
    assert sb.run("git status --porcelain", timeout=30).output.strip() == ""
    change = capture_change(sb, repo, base, leave_out=[], workdir=sb.spec.workdir)
    assert {f.path for f in change.files} == {"app.py", "hidden.py"}


def test_what_setup_left_is_never_part_of_a_change(workspace: tuple[Sandbox, Path, str]) -> None:
    sb, repo, base = workspace
    sh(
        sb,
        "mkdir -p .venv/lib node_modules/x && echo v > .venv/lib/site.py "
        "&& echo m > node_modules/x/index.js && echo real > real.py",
    )
    change = capture_change(
        sb, repo, base, leave_out=[".venv/", "node_modules/"], workdir=sb.spec.workdir
    )
    assert [f.path for f in change.files] == ["real.py"]
    assert change.left_out == []


def test_a_hostile_workspace_cannot_escape_the_scratch_tree(
    workspace: tuple[Sandbox, Path, str], tmp_path: Path
) -> None:
    sb, repo, base = workspace
    target = tmp_path / "outside"
    target.mkdir()
    sh(sb, f"ln -s {target} escape && mkfifo pipe")
    change = capture_change(sb, repo, base, leave_out=[], workdir=sb.spec.workdir)
    assert {f.path: f.mode for f in change.files} == {"escape": "120000"}
    assert list(target.iterdir()) == []


def test_only_the_judged_tree_is_published(workspace: tuple[Sandbox, Path, str]) -> None:
    sb, repo, base = workspace
    sh(sb, "echo \"print('fixed')\" > app.py")
    change = capture_change(sb, repo, base, leave_out=[], workdir=sb.spec.workdir)
    forge = LocalForge(repo)
    with pytest.raises(PublishMismatch):
        forge.publish(
            base=base,
            diff=change.diff,
            branch="qwenfix/other",
            message="m\n",
            description="d",
            tree="0" * 40,
        )
    assert not forge.branch_exists("qwenfix/other")
    published = forge.publish(
        base=base,
        diff=change.diff,
        branch="qwenfix/fix",
        message="m\n",
        description="d",
        tree=change.tree,
    )
    assert git(repo, "rev-parse", f"{published.commit}^{{tree}}").strip() == change.tree


def test_a_diff_that_does_not_apply_is_a_clear_error(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    base = git(repo, "rev-parse", "HEAD").strip()
    bad = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-nope\n+x\n"
    with pytest.raises(ChangeUnreadable, match="does not apply"):
        materialise(repo, base, bad)
