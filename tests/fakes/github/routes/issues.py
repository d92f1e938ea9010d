"""Issues and their comments."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.github import shapes
from tests.fakes.github.model import timestamp
from tests.fakes.github.routes.common import error, github, repo_access
from tests.fakes.github.routes.paging import page_of


async def get_issue(request: Request, owner: str, name: str, number: int) -> Response:
    repo = repo_access(request, owner, name, "issues")
    if isinstance(repo, Response):
        return repo
    item = repo.issues.get(number)
    if item is None:
        return error(404, "Not Found")
    gh = github(request)
    return JSONResponse(
        shapes.issue(
            gh.base_url,
            gh.base_url,
            full_name=repo.full_name,
            number=number,
            issue_id=repo.id * 1000 + number,
            title=item["title"],
            body=item["body"],
            user=gh.user(item["author"]),
            state=item["state"],
            created_at=item["created_at"],
            pull=item["pull"],
        )
    )


async def list_comments(request: Request, owner: str, name: str, number: int) -> Response:
    repo = repo_access(request, owner, name, "issues")
    if isinstance(repo, Response):
        return repo
    gh = github(request)
    every = sorted(gh.issue_comments(repo.full_name, number), key=lambda c: c["id"])
    return page_of(request, every, gh._comment_json)


async def create_comment(request: Request, owner: str, name: str, number: int) -> Response:
    repo = repo_access(request, owner, name, "issues", "write")
    if isinstance(repo, Response):
        return repo
    if number not in repo.issues:
        return error(404, "Not Found")
    body = (await request.json()).get("body")
    if not isinstance(body, str) or not body:
        return error(422, "Validation Failed")
    gh = github(request)
    with gh._lock:
        comment = gh._new_comment(repo.full_name, number, body, gh.bot_login)
    return JSONResponse(gh._comment_json(comment), status_code=201)


async def update_comment(request: Request, owner: str, name: str, comment_id: int) -> Response:
    repo = repo_access(request, owner, name, "issues", "write")
    if isinstance(repo, Response):
        return repo
    gh = github(request)
    comment = gh.comments.get(comment_id)
    if comment is None or comment["repo"] != repo.full_name:
        return error(404, "Not Found")
    if comment["author"] != gh.bot_login:
        return error(403, "Resource not accessible by integration")
    with gh._lock:
        comment["body"] = (await request.json()).get("body", comment["body"])
        comment["updated_at"] = timestamp()
    return JSONResponse(gh._comment_json(comment))
