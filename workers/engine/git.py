"""Thin, explicit wrappers around the git command line on the worker (never in a sandbox)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path


class GitError(Exception):
    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {stderr.strip()[:500]}")
        self.returncode = returncode
        self.stderr = stderr


class GitTimeout(GitError):
    """git ran past its time limit and was killed (with its remote helpers)."""

    def __init__(self, args: list[str], timeout_s: float, stderr: str) -> None:
        Exception.__init__(
            self,
            f"git {' '.join(args)} did not finish within {timeout_s:g}s and was stopped"
            + (f": {stderr.strip()[:500]}" if stderr.strip() else ""),
        )
        self.returncode = -signal.SIGKILL
        self.stderr = stderr
        self.timeout_s = timeout_s


# Local commands on the worker's own repositories; the network ones pass their own.
LOCAL_TIMEOUT_S = 600.0


def git(
    repo: Path,
    *args: str,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = LOCAL_TIMEOUT_S,
) -> bytes:
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    # A session of its own, so that a timeout ends git's helpers too (git-remote-https
    # holds the pipes open: killing git alone would leave us reading them).
    proc = subprocess.Popen(
        ["git", "-C", str(repo), *args],
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full_env,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(input=input, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
        raise GitTimeout(list(args), timeout_s, stderr.decode(errors="replace")) from None
    except BaseException:  # interrupted (a task's soft time limit): leave nothing running
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    if proc.returncode != 0:
        raise GitError(list(args), proc.returncode, stderr.decode(errors="replace"))
    return stdout


def git_text(repo: Path, *args: str) -> str:
    return git(repo, *args).decode().strip()


def is_repository(path: Path) -> bool:
    try:
        return git_text(path, "rev-parse", "--is-inside-work-tree") == "true"
    except (GitError, FileNotFoundError):
        return False


def resolve(repo: Path, rev: str = "HEAD") -> str:
    return git_text(repo, "rev-parse", "--verify", f"{rev}^{{commit}}")


def list_files(repo: Path, rev: str) -> list[str]:
    out = git(repo, "ls-tree", "-r", "-z", "--name-only", "--full-tree", rev)
    return [p for p in out.decode().split("\0") if p]


def read_blob(repo: Path, rev: str, path: str) -> bytes | None:
    try:
        return git(repo, "show", f"{rev}:{path}")
    except GitError:
        return None


def commit_tarball(repo: Path, rev: str, *, uid: int, gid: int) -> bytes:
    """The exact tree of `rev` as a tar archive owned by uid:gid.

    Built from the object database rather than `git archive`, so `export-ignore` and
    `export-subst` attributes cannot change what the agent sees. Submodules are skipped.
    """
    listing = git(repo, "ls-tree", "-r", "-z", "--full-tree", rev).decode()
    entries: list[tuple[str, str, str]] = []
    for record in filter(None, listing.split("\0")):
        meta, path = record.split("\t", 1)
        mode, kind, sha = meta.split()
        if kind == "blob":
            entries.append((mode, sha, path))
    blobs = read_blobs(repo, [sha for _, sha, _ in entries])
    return tree_tarball([(mode, path, blobs[sha]) for mode, sha, path in entries], uid=uid, gid=gid)


def tree_tarball(entries: list[tuple[str, str, bytes]], *, uid: int, gid: int) -> bytes:
    """(git mode, path, bytes) as a tar archive owned by uid:gid, with the directories
    above each file, so that nothing in it is created as someone else."""
    buf = io.BytesIO()
    now = int(time.time())
    dirs: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for mode, path, data in entries:
            parts = path.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                directory = "/".join(parts[:depth])
                if directory not in dirs:
                    dirs.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type, info.mode, info.uid, info.gid, info.mtime = (
                        tarfile.DIRTYPE,
                        0o755,
                        uid,
                        gid,
                        now,
                    )
                    tar.addfile(info)
            info = tarfile.TarInfo(path)
            info.uid, info.gid, info.mtime = uid, gid, now
            if mode == "120000":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, data.decode(), 0o777
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o755 if mode == "100755" else 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def read_blobs(repo: Path, shas: list[str]) -> dict[str, bytes]:
    """Many blobs in one `git cat-file --batch`."""
    if not shas:
        return {}
    out = git(repo, "cat-file", "--batch", input="".join(f"{s}\n" for s in shas).encode())
    blobs: dict[str, bytes] = {}
    pos = 0
    while pos < len(out):
        header_end = out.index(b"\n", pos)
        fields = out[pos:header_end].decode().split()
        if len(fields) != 3:  # "<sha> missing": an incomplete clone or mirror
            raise GitError(["cat-file", "--batch"], 1, f"object {fields[0]} is missing from {repo}")
        sha, _kind, size = fields
        start = header_end + 1
        blobs[sha] = out[start : start + int(size)]
        pos = start + int(size) + 1
    return blobs
