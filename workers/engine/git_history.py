"""Just enough of a repository's history for its version: a `.git` whose HEAD is the base
commit, with the commits back to the nearest tag and that tag. Build tools that read the
version from git (setuptools_scm, versioneer, dunamai, `git describe` in a Makefile) then
see in the sandbox what they see on the host; a tree without history gives them
`0.1.dev1`, and a project that checks its own version (pytest's `minversion`) breaks."""

from __future__ import annotations

import io
import logging
import tarfile
import tempfile
from pathlib import Path

from workers.engine.git import GitError, git, git_text

log = logging.getLogger(__name__)

MAX_DISTANCE = 5000
"""Commits between the tag and the base beyond which the history is not worth copying."""
MAX_BYTES = 200 * 1024 * 1024
REMOTE = "qwenfix-history"


def nearest_tag(repo: Path, rev: str) -> tuple[str, int] | None:
    """(tag, commits since it) as `git describe --tags` finds them, or None."""
    try:
        tag = git_text(repo, "describe", "--tags", "--abbrev=0", rev)
        distance = int(git_text(repo, "rev-list", "--count", f"{tag}..{rev}"))
    except (GitError, ValueError):
        return None
    return tag, distance


def history_tarball(repo: Path, rev: str, *, uid: int, gid: int) -> bytes | None:
    """A tar of `.git/` (owned by uid:gid) with HEAD detached at `rev`, shallow at the
    nearest tag, the tag included. None when there is no tag to describe from, when it is
    too far back, or when the tree has submodules (the sandbox gets none, and a history
    would show them as deleted)."""
    found = nearest_tag(repo, rev)
    if found is None:
        return None
    tag, distance = found
    if distance > MAX_DISTANCE:
        log.info("history not copied: %s is %d commits before %s", tag, distance, rev[:12])
        return None
    if " commit " in git(repo, "ls-tree", "-r", rev).decode():
        return None
    with tempfile.TemporaryDirectory(prefix="qwenfix-history-") as tmp:
        work = Path(tmp)
        git(work, "init", "-q", "--template=")  # no sample hooks
        # Every commit since the tag lies within distance+1 generations of `rev`, and so
        # does the tag's commit: a fetch that deep reaches both.
        # From a partial clone (a GitHub job's, blob:none) only commits and trees: asking
        # for more would send git to the network. The base's own blobs are the files the
        # workspace gets anyway, and `git add` writes them into the sandbox's repository.
        partial = ["--filter=blob:none"] if _is_partial(repo) else []
        # A named remote: only then does git record a filtered fetch as a partial clone
        # (`extensions.partialClone`), which may lack blobs.
        git(work, "remote", "add", REMOTE, str(repo.resolve()))
        git(
            work,
            "fetch",
            "-q",
            "--no-tags",
            *partial,
            f"--depth={distance + 1}",
            "--upload-pack=git -c uploadpack.allowAnySHA1InWant=true -c uploadpack.allowFilter=true"
            " upload-pack",
            REMOTE,
            rev,
            f"refs/tags/{tag}:refs/tags/{tag}",
        )
        # The host's path means nothing in the sandbox: a lazy fetch fails at once there.
        git(work, "remote", "set-url", REMOTE, "/nonexistent/qwenfix-history")
        git(work, "update-ref", "--no-deref", "HEAD", git_text(repo, "rev-parse", rev))
        for ref in ("FETCH_HEAD", "ORIG_HEAD"):
            (work / ".git" / ref).unlink(missing_ok=True)
        return _tar(work / ".git", uid=uid, gid=gid)


def _is_partial(repo: Path) -> bool:
    try:
        found = git_text(
            repo, "config", "--get-regexp", r"^(extensions\.partialclone|remote\..*\.promisor)$"
        )
    except GitError:  # no such key: exit 1
        return False
    return any(line.split()[-1].lower() not in ("false", "") for line in found.splitlines())


def _tar(directory: Path, *, uid: int, gid: int) -> bytes | None:
    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
        return info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(directory, arcname=".git", filter=owned)
    if buf.tell() > MAX_BYTES:
        log.info("history not copied: %d MB", buf.tell() // 1024 // 1024)
        return None
    return buf.getvalue()
