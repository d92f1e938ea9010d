"""Where a review comment may go: GitHub accepts inline comments only on lines that are
part of the pull request's diff — added and context lines on the new side (RIGHT), removed
and context lines on the old side (LEFT). Comments elsewhere are not dropped silently:
they are returned so the review's summary can carry them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

Side = Literal["LEFT", "RIGHT"]


class ReviewComment(BaseModel):
    path: str
    line: int
    body: str
    side: Side = "RIGHT"


class Placement(BaseModel):
    inline: list[ReviewComment]
    """Comments GitHub will accept, as the API wants them."""
    elsewhere: list[ReviewComment]
    """Comments on lines outside the diff, for the review's summary."""


class DiffMap:
    def __init__(self, diff: str) -> None:
        try:
            patch = PatchSet(diff)
        except UnidiffParseError as exc:
            raise ValueError(f"not a unified diff: {exc}") from exc
        self.lines: dict[str, set[tuple[int, Side]]] = {}
        self.renamed: dict[str, str] = {}
        self.added: dict[str, set[int]] = {}
        for patched in patch:
            path = patched.path
            old = (patched.source_file or "").removeprefix("a/")
            if patched.is_rename and old and old != path:
                self.renamed[old] = path
            lines = self.lines.setdefault(path, set())
            added = self.added.setdefault(path, set())
            for hunk in patched:
                for line in hunk:
                    if line.target_line_no is not None:
                        lines.add((line.target_line_no, "RIGHT"))
                        if line.is_added:
                            added.add(line.target_line_no)
                    if line.source_line_no is not None and not line.is_added:
                        lines.add((line.source_line_no, "LEFT"))

    def commentable(self, path: str, line: int, side: Side = "RIGHT") -> bool:
        return (line, side) in self.lines.get(self.renamed.get(path, path), set())

    def place(self, comments: list[ReviewComment]) -> Placement:
        inline, elsewhere = [], []
        for comment in comments:
            path = self.renamed.get(comment.path, comment.path)  # old name of a rename
            fixed = comment.model_copy(update={"path": path})
            if self.commentable(path, comment.line, comment.side):
                if comment.side == "LEFT" and "```suggestion" in comment.body:
                    # A suggestion replaces new-side lines; on a removed line it means
                    # nothing, so it is kept as prose.
                    fixed.body = comment.body.replace("```suggestion", "```")
                inline.append(fixed)
            else:
                elsewhere.append(fixed)
        return Placement(inline=inline, elsewhere=elsewhere)
