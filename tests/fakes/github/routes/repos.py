"""Repositories: the repository, a collaborator's permission, file contents."""

from __future__ import annotations

import subprocess

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.github import shapes
from tests.fakes.github.model import WRITE_LEVELS, FakeRepo
from tests.fakes.github.routes.common import error, github, repo_access


async def get_repo(request: Request, owner: str, name: str) -> Response:
    repo = repo_access(request, owner, name, "metadata")
    if isinstance(repo, Response):
        return repo
    return JSONResponse(github(request).repo_json(repo))


async def permission(request: Request, owner: str, name: str, username: str) -> Response:
    repo = repo_access(request, owner, name, "metadata")
    if isinstance(repo, Response):
        return repo
    role = repo.collaborators.get(username)
    if role is None:
        role = "none" if repo.private else "read"
    level = {"maintain": "write", "triage": "read"}.get(role, role)
    rank = WRITE_LEVELS.get(role, -1)
    collaborator = {
        **github(request).user(username),
        "role_name": role,
        "permissions": {
            "pull": rank >= 0,
            "triage": rank >= 1,
            "push": rank >= 2,
            "maintain": rank >= 3,
            "admin": rank >= 4,
        },
    }
    return JSONResponse({"permission": level, "role_name": role, "user": collaborator})


def _blob_sha(repo: FakeRepo, rev: str) -> str | None:
    """The blob at `rev` (REF:PATH), or None if there is none (missing, or a tree)."""
    sha = subprocess.run(
        ["git", "-C", str(repo.bare), "rev-parse", "--verify", "--quiet", rev],
        capture_output=True,
        text=True,
    ).stdout.strip()
    kind = subprocess.run(
        ["git", "-C", str(repo.bare), "cat-file", "-t", sha or "-"], capture_output=True, text=True
    ).stdout.strip()
    return sha if sha and kind == "blob" else None


async def get_content(
    request: Request, owner: str, name: str, path: str, ref: str | None = None
) -> Response:
    repo = repo_access(request, owner, name, "contents")
    if isinstance(repo, Response):
        return repo
    if repo.bare is None:
        return error(404, "Not Found")
    sha = _blob_sha(repo, f"{ref or repo.default_branch}:{path}")
    if sha is None:
        return error(404, "Not Found")
    content = subprocess.run(
        ["git", "-C", str(repo.bare), "cat-file", "blob", sha], capture_output=True, check=True
    ).stdout
    return JSONResponse(
        shapes.content_file(
            github(request).base_url, full_name=repo.full_name, path=path, sha=sha, content=content
        )
    )
