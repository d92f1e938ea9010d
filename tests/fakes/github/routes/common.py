"""What every route needs: the fake behind the request, GitHub's error shape, and the
installation-token check for /repos/OWNER/NAME/... routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import JSONResponse, Response

if TYPE_CHECKING:
    from tests.fakes.github.model import FakeRepo
    from tests.fakes.github.server import FakeGitHub


def github(request: Request) -> FakeGitHub:
    """The FakeGitHub whose app (FakeGitHub.asgi) is serving this request."""
    fake: FakeGitHub = request.app.state.fake
    return fake


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"message": message, "documentation_url": "https://docs.github.com/rest"},
        status_code=status,
        headers=headers,
    )


def repo_access(
    request: Request, owner: str, name: str, permission: str | None, level: str = "read"
) -> FakeRepo | Response:
    """The repository, if the request's installation token reaches it with `permission`
    at `level` ("read" or "write"); otherwise GitHub's 401, 404 or 403."""
    gh = github(request)
    grant = gh._grant(request)
    if grant is None:
        return error(401, "Bad credentials")
    repo = gh.repos.get(f"{owner}/{name}")
    if (
        repo is None
        or repo.installation_id != grant.installation_id
        or (grant.repositories is not None and name not in grant.repositories)
    ):
        return error(404, "Not Found")
    if permission is not None:
        granted = grant.permissions.get(permission)
        if granted is None or (level == "write" and granted != "write"):
            return error(403, "Resource not accessible by integration")
    return repo


# Route handlers carry no docstrings: FastAPI would publish them in /openapi.json.


async def not_found(path: str) -> Response:  # anything no other route matched
    return error(404, "Not Found")
