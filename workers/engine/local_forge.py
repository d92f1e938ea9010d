"""The local forge: a branch with one commit in the repository itself, and the pull-request
description written beside it in the git directory. The working tree is never touched."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from pydantic import BaseModel

from workers.engine.git import GitError, git, git_text

ZERO_SHA = "0" * 40


class Identity(BaseModel):
    name: str = "qwenfix[bot]"
    email: str = "qwenfix[bot]@users.noreply.localhost"
    former_emails: tuple[str, ...] = ()
    """Addresses this identity committed under before: its own earlier attempts, which a
    new attempt may replace."""


class PublishMismatch(Exception):
    """What would be committed is not what was judged: nothing is published."""


class PublishedChange(BaseModel):
    branch: str
    commit: str
    description_path: str


def slugify(text: str, limit: int = 40) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "fix"


class LocalForge:
    def __init__(self, repo: Path, identity: Identity | None = None) -> None:
        self.repo = repo
        self.identity = identity or Identity()

    def branch_exists(self, branch: str) -> bool:
        try:
            git(self.repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
            return True
        except GitError:
            return False

    def free_branch_name(self, wanted: str) -> str:
        name, n = wanted, 1
        while self.branch_exists(name):
            n += 1
            name = f"{wanted}-{n}"
        return name

    def publish(
        self,
        *,
        base: str,
        diff: str,
        branch: str,
        message: str,
        description: str,
        tree: str | None = None,
    ) -> PublishedChange:
        """Commit `diff` on top of `base` as a new branch; never moves an existing one.
        With `tree`, the commit must hold exactly that tree (the one the verdict judged)."""
        git_dir = Path(git_text(self.repo, "rev-parse", "--absolute-git-dir"))
        with tempfile.TemporaryDirectory(prefix="qwenfix-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            git(self.repo, "read-tree", base, env=env)
            git(
                self.repo,
                "apply",
                "--cached",
                "--binary",
                "--whitespace=nowarn",
                "-",
                input=diff.encode(),
                env=env,
            )
            written = git(self.repo, "write-tree", env=env).decode().strip()
        if tree is not None and written != tree:
            raise PublishMismatch(
                f"the commit would hold tree {written[:12]}, not the judged tree {tree[:12]}"
            )
        who = {
            "GIT_AUTHOR_NAME": self.identity.name,
            "GIT_AUTHOR_EMAIL": self.identity.email,
            "GIT_COMMITTER_NAME": self.identity.name,
            "GIT_COMMITTER_EMAIL": self.identity.email,
        }
        commit = (
            git(
                self.repo,
                "commit-tree",
                written,
                "-p",
                base,
                "-F",
                "-",
                input=message.encode(),
                env=who,
            )
            .decode()
            .strip()
        )
        # The old value ZERO_SHA makes this create-only: a branch that appeared meanwhile wins.
        git(self.repo, "update-ref", f"refs/heads/{branch}", commit, ZERO_SHA)
        target = git_dir / "qwenfix" / f"{branch.replace('/', '--')}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = target.with_suffix(".tmp")
        tmp_path.write_text(description, encoding="utf-8")
        os.replace(tmp_path, target)
        return PublishedChange(branch=branch, commit=commit, description_path=str(target))
