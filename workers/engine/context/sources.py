"""The files of a repository, with git blob ids so that work on them can be cached.

Two sources: a commit (what a fix run starts from) and a working tree (tracked files plus
untracked ones that are not ignored, as they are on disk, for `qwenfix pack`).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from workers.engine.git import git, read_blobs


@dataclass(frozen=True)
class RepoFile:
    path: str
    blob: str
    size: int
    symlink: bool = False


class FileSource(Protocol):
    files: list[RepoFile]

    def read(self, file: RepoFile) -> bytes: ...

    def head(self, file: RepoFile, size: int) -> bytes:
        """The first `size` bytes, when that is all a check needs."""
        ...

    def prefetch(self, files: list[RepoFile]) -> None:
        """Read many files at once when that is cheaper than one by one."""
        ...


def blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class CommitFiles:
    """The tree of one commit, read from the object database in batches."""

    def __init__(self, repo: Path, rev: str) -> None:
        self.repo = repo
        out = git(repo, "ls-tree", "-r", "-z", "-l", "--full-tree", rev).decode()
        self.files: list[RepoFile] = []
        for record in filter(None, out.split("\0")):
            meta, path = record.split("\t", 1)
            mode, kind, sha, size = meta.split()
            if kind == "blob":
                self.files.append(RepoFile(path, sha, int(size), symlink=mode == "120000"))
        self._blobs: dict[str, bytes] = {}

    def prefetch(self, files: list[RepoFile]) -> None:
        missing = sorted({f.blob for f in files} - set(self._blobs))
        if missing:
            self._blobs.update(read_blobs(self.repo, missing))

    def read(self, file: RepoFile) -> bytes:
        if file.blob not in self._blobs:
            self.prefetch([file])
        return self._blobs[file.blob]

    def head(self, file: RepoFile, size: int) -> bytes:
        return self.read(file)[:size]


class WorkingTreeFiles:
    """Tracked files and untracked files that are not ignored, as they are on disk.

    Unchanged tracked files take their blob id from the index without being read."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        index: dict[str, str] = {}
        for record in filter(None, git(repo, "ls-files", "-z", "-s").decode().split("\0")):
            meta, path = record.split("\t", 1)
            mode, sha, _stage = meta.split()
            if mode != "160000":  # submodules are not files
                index[path] = sha
        changed = set(
            filter(
                None,
                git(repo, "ls-files", "-z", "-m", "-o", "--exclude-standard").decode().split("\0"),
            )
        )
        self._contents: dict[str, bytes] = {}
        self.files: list[RepoFile] = []
        root = str(repo)
        for path in sorted(set(index) | changed):
            full = os.path.join(root, path)
            try:
                info = os.lstat(full)
            except FileNotFoundError:
                continue  # deleted in the working tree
            if stat.S_ISLNK(info.st_mode):
                data = os.readlink(full).encode()
                self._contents[path] = data
                self.files.append(RepoFile(path, blob_id(data), len(data), symlink=True))
            elif not stat.S_ISREG(info.st_mode):
                continue  # a directory: a nested repository
            elif path in changed or path not in index:
                with open(full, "rb") as handle:
                    data = handle.read()
                self._contents[path] = data
                self.files.append(RepoFile(path, blob_id(data), len(data)))
            else:
                self.files.append(RepoFile(path, index[path], info.st_size))

    def prefetch(self, files: list[RepoFile]) -> None:
        return None

    def read(self, file: RepoFile) -> bytes:
        if file.path in self._contents:
            return self._contents[file.path]
        with open(os.path.join(self.repo, file.path), "rb") as handle:
            return handle.read()

    def head(self, file: RepoFile, size: int) -> bytes:
        if file.path in self._contents:
            return self._contents[file.path][:size]
        with open(os.path.join(self.repo, file.path), "rb") as handle:
            return handle.read(size)
