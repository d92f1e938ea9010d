"""Pull request reviews and review comments (inline on the diff, and replies)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.github import shapes
from tests.fakes.github.model import FakeRepo, timestamp
from tests.fakes.github.routes.common import error, github, repo_access
from tests.fakes.github.routes.paging import page_of

if TYPE_CHECKING:
    from tests.fakes.github.server import FakeGitHub

STATES = {
    "COMMENT": "COMMENTED",
    "APPROVE": "APPROVED",
    "REQUEST_CHANGES": "CHANGES_REQUESTED",
    "PENDING": "PENDING",
}

Placed = tuple[tuple[str, int, str], str, str]  # (path, line, side), body, diff hunk


def _event_error(event: str, data: dict[str, Any]) -> Response | None:
    if event not in STATES:
        return error(422, "Unprocessable Entity")
    if (
        event in ("COMMENT", "REQUEST_CHANGES")
        and not data.get("body")
        and not data.get("comments")
    ):
        return error(422, "Unprocessable Entity")
    return None


def _place(
    comments: list[dict[str, Any]], lines: dict[tuple[str, int, str], str]
) -> list[Placed] | Response:
    """Each inline comment on its line of the diff; GitHub refuses the review if any
    comment is on a line the diff does not show."""
    placed = []
    for comment in comments:
        key = (
            str(comment.get("path")),
            int(comment.get("line") or 0),
            str(comment.get("side") or "RIGHT"),
        )
        if key not in lines:
            return JSONResponse(
                {
                    "message": "Unprocessable Entity",
                    "errors": ["Pull request review thread line must be part of the diff"],
                    "documentation_url": "https://docs.github.com/rest",
                },
                status_code=422,
            )
        placed.append((key, str(comment.get("body") or ""), lines[key]))
    return placed


def _record_review(
    gh: FakeGitHub,
    repo: FakeRepo,
    number: int,
    data: dict[str, Any],
    state: str,
    head_sha: str,
    placed: list[Placed],
) -> dict[str, Any]:
    with gh._lock:
        item: dict[str, Any] = {
            "id": next(gh._ids),
            "repo": repo.full_name,
            "number": number,
            "body": data.get("body") or "",
            "state": state,
            "commit_id": data.get("commit_id") or head_sha,
            "author": gh.bot_login,
            "created_at": timestamp(),
        }
        gh.reviews[item["id"]] = item
        for (path, line, side), body, hunk in placed:
            rc = {
                "id": next(gh._ids),
                "repo": repo.full_name,
                "number": number,
                "review_id": item["id"],
                "path": path,
                "line": line,
                "side": side,
                "body": body,
                "diff_hunk": hunk,
                "commit_id": item["commit_id"],
                "author": gh.bot_login,
                "created_at": timestamp(),
            }
            gh.review_comments[rc["id"]] = rc
    return item


async def create_review(request: Request, owner: str, name: str, number: int) -> Response:
    repo = repo_access(request, owner, name, "pull_requests", "write")
    if isinstance(repo, Response):
        return repo
    pr = repo.pulls.get(number)
    if pr is None:
        return error(404, "Not Found")
    data = await request.json()
    event = str(data.get("event") or "PENDING")
    refused = _event_error(event, data)
    if refused is not None:
        return refused
    gh = github(request)
    lines, _ = gh.pull_diff_lines(repo.full_name, pr)
    placed = _place(data.get("comments") or [], lines)
    if isinstance(placed, Response):
        return placed
    head_sha = gh.ref_sha(repo.full_name, f"refs/heads/{pr['head']}") or pr["head_sha"]
    item = _record_review(gh, repo, number, data, STATES[event], head_sha, placed)
    return JSONResponse(
        shapes.review(
            gh.base_url,
            gh.base_url,
            full_name=repo.full_name,
            number=number,
            item=item,
            user=gh.user(item["author"]),
        )
    )


async def list_reviews(request: Request, owner: str, name: str, number: int) -> Response:
    repo = repo_access(request, owner, name, "pull_requests")
    if isinstance(repo, Response):
        return repo
    gh = github(request)
    items = sorted(
        (r for r in gh.reviews.values() if r["repo"] == repo.full_name and r["number"] == number),
        key=lambda r: r["id"],
    )
    return page_of(
        request,
        items,
        lambda r: shapes.review(
            gh.base_url,
            gh.base_url,
            full_name=repo.full_name,
            number=number,
            item=r,
            user=gh.user(r["author"]),
        ),
    )


async def list_review_comments(request: Request, owner: str, name: str, number: int) -> Response:
    repo = repo_access(request, owner, name, "pull_requests")
    if isinstance(repo, Response):
        return repo
    gh = github(request)
    items = sorted(
        (
            c
            for c in gh.review_comments.values()
            if c["repo"] == repo.full_name and c["number"] == number
        ),
        key=lambda c: c["id"],
    )
    return page_of(
        request,
        items,
        lambda c: shapes.review_comment(
            gh.base_url,
            gh.base_url,
            full_name=repo.full_name,
            number=number,
            item=c,
            user=gh.user(c["author"]),
        ),
    )


async def reply(request: Request, owner: str, name: str, number: int, comment_id: int) -> Response:
    repo = repo_access(request, owner, name, "pull_requests", "write")
    if isinstance(repo, Response):
        return repo
    gh = github(request)
    parent = gh.review_comments.get(comment_id)
    if parent is None or parent["repo"] != repo.full_name or parent["number"] != number:
        return error(404, "Not Found")
    body = (await request.json()).get("body")
    if not body:
        return error(422, "Validation Failed")
    with gh._lock:
        rc = {
            **parent,
            "id": next(gh._ids),
            "body": body,
            "reply_to": comment_id,
            "author": gh.bot_login,
            "created_at": timestamp(),
        }
        gh.review_comments[rc["id"]] = rc
    return JSONResponse(
        shapes.review_comment(
            gh.base_url,
            gh.base_url,
            full_name=repo.full_name,
            number=number,
            item=rc,
            user=gh.user(rc["author"]),
        ),
        status_code=201,
    )
