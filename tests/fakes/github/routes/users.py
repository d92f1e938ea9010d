"""Users: `GET /users/{username}`, for the App's bot user (whose id qwenfix's commits carry)
and the repositories' collaborators."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.github.routes.common import error, github

CREATED = "2020-01-01T00:00:00Z"


async def get_user(request: Request, username: str) -> Response:
    gh = github(request)
    # Anonymous calls are allowed, as on GitHub; a token that is sent must be valid.
    if request.headers.get("authorization") and gh._grant(request) is None:
        return error(401, "Bad credentials")
    known = {gh.bot_login} | {login for repo in gh.repos.values() for login in repo.collaborators}
    if username not in known:
        return error(404, "Not Found")
    return JSONResponse(
        {
            **gh.user(username),
            "name": username,
            "company": None,
            "blog": "",
            "location": None,
            "email": None,
            "hireable": None,
            "bio": None,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": CREATED,
            "updated_at": CREATED,
        }
    )
