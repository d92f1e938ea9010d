"""A tree whose objects are not all there (an incomplete mirror) is a clear GitError that
names the object, not a crash in the middle of parsing git's output."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import git, make_repo
from workers.engine.git import GitError, commit_tarball


def test_a_missing_blob_is_named(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "kept\n", "big.bin": "lost\n"})
    sha = git(repo, "rev-parse", "HEAD:big.bin").strip()
    (repo / ".git" / "objects" / sha[:2] / sha[2:]).unlink()
    with pytest.raises(GitError, match=f"object {sha} is missing from"):
        commit_tarball(repo, "HEAD", uid=1000, gid=1000)
