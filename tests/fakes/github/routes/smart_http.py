"""Git over HTTPS (clone, fetch, push) at /OWNER/NAME.git, with installation tokens as
basic credentials (`x-access-token:<token>`)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from tests.fakes.github.git_http import http_backend
from tests.fakes.github.model import FakeRepo, Grant
from tests.fakes.github.routes.common import github


def _refusal(repo: FakeRepo, name: str, grant: Grant | None, pushing: bool) -> Response | None:
    """Why this grant may not fetch (or push to) the repository, if it may not."""
    anonymous_read = grant is None and not pushing and not repo.private
    if anonymous_read:  # public repositories are readable by anyone
        return None
    if (
        grant is None
        or repo.installation_id != grant.installation_id
        or (grant.repositories is not None and name not in grant.repositories)
    ):
        return Response(
            "Authentication required.",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="GitHub"'},
        )
    if pushing and grant.permissions.get("contents") != "write":
        return Response("Permission denied.", status_code=403)
    if not pushing and "contents" not in grant.permissions:
        return Response("Permission denied.", status_code=403)
    return None


async def git_smart_http(request: Request, owner: str, name: str, rest: str) -> Response:
    gh = github(request)
    repo = gh.repos.get(f"{owner}/{name}")
    if repo is None or repo.bare is None:
        return Response("Repository not found.", status_code=404)
    pushing = "git-receive-pack" in (rest + request.url.query)
    grant = gh._basic_grant(request)
    refused = _refusal(repo, name, grant, pushing)
    if refused is not None:
        return refused
    status, headers, body = await http_backend(
        gh.root,
        method=request.method,
        path=f"/{owner}/{name}.git/{rest}",
        query=request.url.query,
        content_type=request.headers.get("content-type", ""),
        content_encoding=request.headers.get("content-encoding", ""),
        body=await request.body(),
        user="x-access-token",
        workflows=grant.permissions.get("workflows", "") if grant else "",
    )
    return Response(body, status_code=status, headers=headers)
