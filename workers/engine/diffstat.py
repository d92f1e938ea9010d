"""Diff facts for PR bodies and checks, computed with unidiff."""

from __future__ import annotations

from pydantic import BaseModel
from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet


class FileStat(BaseModel):
    path: str
    status: str  # added | removed | renamed | modified
    added: int
    removed: int


class DiffStat(BaseModel):
    files: list[FileStat]

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def removed(self) -> int:
        return sum(f.removed for f in self.files)


def diffstat(diff: str) -> DiffStat:
    try:
        patch = PatchSet(diff)
    except UnidiffParseError:
        return DiffStat(files=[])
    files = []
    for f in patch:
        status = (
            "added"
            if f.is_added_file
            else "removed"
            if f.is_removed_file
            else "renamed"
            if f.is_rename
            else "modified"
        )
        files.append(FileStat(path=f.path, status=status, added=f.added, removed=f.removed))
    return DiffStat(files=files)
