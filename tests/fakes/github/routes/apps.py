"""GitHub Apps: the App itself (App JWT) and installation access tokens."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.github.model import Grant, timestamp
from tests.fakes.github.routes.common import error, github

DEFAULT_PERMISSIONS = {
    "contents": "write",
    "issues": "write",
    "pull_requests": "write",
    "metadata": "read",
}


async def get_app(request: Request) -> Response:
    gh = github(request)
    if not gh._jwt_ok(request):
        return error(401, "A JSON web token could not be decoded")
    return JSONResponse(
        {
            "id": gh.app_id,
            "slug": gh.app_slug,
            "node_id": "A_1",
            "client_id": "Iv1.fake",
            "owner": gh.user("octo-org"),
            "name": gh.app_slug,
            "description": "",
            "external_url": gh.base_url,
            "html_url": f"{gh.base_url}/apps/{gh.app_slug}",
            "created_at": timestamp(),
            "updated_at": timestamp(),
            "permissions": {
                "contents": "write",
                "issues": "write",
                "pull_requests": "write",
                "checks": "write",
                "metadata": "read",
            },
            "events": ["issues", "issue_comment", "pull_request"],
        }
    )


async def access_token(request: Request, installation_id: int) -> Response:
    gh = github(request)
    if not gh._jwt_ok(request):
        return error(401, "A JSON web token could not be decoded")
    if installation_id not in gh.installations:
        return error(404, "Not Found")
    body = await request.json() if await request.body() else {}
    permissions = body.get("permissions") or dict(DEFAULT_PERMISSIONS)
    repositories = body.get("repositories")
    token = "ghs_" + secrets.token_urlsafe(27)
    expires = datetime.now(UTC) + timedelta(hours=1)
    with gh._lock:
        gh.grants[token] = Grant(
            installation_id, dict(permissions), repositories, expires.timestamp()
        )
        gh.token_requests.append(
            {
                "installation_id": installation_id,
                "permissions": permissions,
                "repositories": repositories,
            }
        )
    return JSONResponse(
        {
            "token": token,
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "permissions": permissions,
            "repository_selection": "selected" if repositories else "all",
        },
        status_code=201,
    )
