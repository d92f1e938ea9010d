"""Reactions to issue comments and to pull request review comments."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.github.model import timestamp
from tests.fakes.github.routes.common import error, github, repo_access

CONTENTS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


async def _react(
    request: Request, owner: str, name: str, comment_id: int, kind: str, permission: str
) -> Response:
    """The bot's reaction: 201 when new, 200 with the existing one when it already did."""
    repo = repo_access(request, owner, name, permission, "write")
    if isinstance(repo, Response):
        return repo
    content = (await request.json()).get("content")
    if content not in CONTENTS:
        return error(422, "Validation Failed")
    gh = github(request)
    with gh._lock:
        for r in gh.reactions:
            if (r["comment_id"], r["kind"], r["content"], r["user"]) == (
                comment_id,
                kind,
                content,
                gh.bot_login,
            ):
                return JSONResponse(gh._reaction_json(r), status_code=200)
        reaction = {
            "id": next(gh._ids),
            "comment_id": comment_id,
            "kind": kind,
            "content": content,
            "user": gh.bot_login,
            "created_at": timestamp(),
        }
        gh.reactions.append(reaction)
    return JSONResponse(gh._reaction_json(reaction), status_code=201)


async def react_issue_comment(request: Request, owner: str, name: str, comment_id: int) -> Response:
    return await _react(request, owner, name, comment_id, "issue_comment", "issues")


async def react_review_comment(
    request: Request, owner: str, name: str, comment_id: int
) -> Response:
    return await _react(request, owner, name, comment_id, "review_comment", "pull_requests")
