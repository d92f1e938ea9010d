"""Checks on a verified diff before anything is pushed."""

from __future__ import annotations

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchedFile, PatchSet

from workers.engine.secrets import secret_in

WORKFLOWS = ".github/workflows/"


def _is_workflow(f: PatchedFile) -> bool:
    return f.path.startswith(WORKFLOWS) or (f.source_file or "").startswith(f"a/{WORKFLOWS}")


def changes_workflows(diff: str) -> bool:
    """Whether the diff adds, changes or removes a file under .github/workflows/."""
    try:
        return any(_is_workflow(f) for f in PatchSet(diff))
    except UnidiffParseError:
        return False  # `blocked` refuses such a diff before any push


def blocked(diff: str, *, max_lines: int, allow_workflows: bool) -> str | None:
    """Why this diff must not be pushed, or None."""
    try:
        patch = PatchSet(diff)
    except UnidiffParseError as exc:
        return f"the diff could not be read ({exc})"
    changed = sum(f.added + f.removed for f in patch)
    if changed > max_lines:
        return f"the change is {changed} lines, over the limit of {max_lines}"
    for f in patch:
        if not allow_workflows and _is_workflow(f):
            return (
                f"it changes {f.path}; changes under {WORKFLOWS} need "
                "`allow_workflow_changes: true` in .qwenfix.yml"
            )
        for hunk in f:
            for line in hunk:
                if line.is_added:
                    kind = secret_in(line.value.encode())
                    if kind:
                        return f"an added line in {f.path} looks like a credential ({kind})"
    return None
