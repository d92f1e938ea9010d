"""Pull requests: listed, opened, read, edited, and reviewers requested."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.github.model import FakeRepo, timestamp
from tests.fakes.github.routes.common import error, github, repo_access
from tests.fakes.github.routes.paging import page_of

if TYPE_CHECKING:
    from tests.fakes.github.server import FakeGitHub


def _refresh_head(gh: FakeGitHub, repo: FakeRepo, pr: dict[str, Any]) -> None:
    """A branch moves when someone pushes to it."""
    pr["head_sha"] = (
        gh.ref_sha(pr.get("head_repo") or repo.full_name, f"refs/heads/{pr['head']}")
        or pr["head_sha"]
    )


async def list_pulls(
    request: Request, owner: str, name: str, state: str = "open", head: str | None = None
) -> Response:
    repo = repo_access(request, owner, name, "pull_requests")
    if isinstance(repo, Response):
        return repo
    gh = github(request)
    pulls = [p for p in repo.pulls.values() if state == "all" or p["state"] == state]
    if head:
        pulls = [p for p in pulls if f"{repo.owner}:{p['head']}" == head]

    def render(pr: dict[str, Any]) -> dict[str, Any]:
        _refresh_head(gh, repo, pr)
        return gh.pull_json(repo, pr)

    return page_of(request, sorted(pulls, key=lambda p: -p["number"]), render)


def _open_pull(
    gh: FakeGitHub,
    repo: FakeRepo,
    data: dict[str, Any],
    head: str,
    base: str,
    head_sha: str,
    base_sha: str,
) -> dict[str, Any]:
    """The bot's new pull request (and the issue every pull request also is)."""
    number = gh._next_number(repo)
    now = timestamp()
    pr = {
        "number": number,
        "id": next(gh._ids),
        "title": data["title"],
        "body": data.get("body") or "",
        "head": head,
        "base": base,
        "head_sha": head_sha,
        "base_sha": base_sha,
        "state": "open",
        "draft": bool(data.get("draft")),
        "author": gh.bot_login,
        "reviewers": [],
        "created_at": now,
        "updated_at": now,
    }
    repo.pulls[number] = pr
    repo.issues[number] = {
        "number": number,
        "title": pr["title"],
        "body": pr["body"],
        "author": gh.bot_login,
        "state": "open",
        "pull": True,
        "created_at": now,
    }
    return pr


async def create_pull(request: Request, owner: str, name: str) -> Response:
    repo = repo_access(request, owner, name, "pull_requests", "write")
    if isinstance(repo, Response):
        return repo
    gh = github(request)
    data = await request.json()
    head, base = str(data.get("head", "")), str(data.get("base", ""))
    head_sha = gh.ref_sha(repo.full_name, f"refs/heads/{head}")
    base_sha = gh.ref_sha(repo.full_name, f"refs/heads/{base}")
    if not data.get("title") or head_sha is None or base_sha is None:
        return error(422, "Validation Failed")
    with gh._lock:
        if any(p["head"] == head for p in gh.open_pulls(repo.full_name)):
            return error(422, f"A pull request already exists for {owner}:{head}.")
        pr = _open_pull(gh, repo, data, head, base, head_sha, base_sha)
    return JSONResponse(gh.pull_json(repo, pr), status_code=201)


async def get_pull(request: Request, owner: str, name: str, number: int) -> Response:
    repo = repo_access(request, owner, name, "pull_requests")
    if isinstance(repo, Response):
        return repo
    pr = repo.pulls.get(number)
    if pr is None:
        return error(404, "Not Found")
    gh = github(request)
    _refresh_head(gh, repo, pr)
    return JSONResponse(gh.pull_json(repo, pr))


async def update_pull(request: Request, owner: str, name: str, number: int) -> Response:
    repo = repo_access(request, owner, name, "pull_requests", "write")
    if isinstance(repo, Response):
        return repo
    pr = repo.pulls.get(number)
    if pr is None:
        return error(404, "Not Found")
    data = await request.json()
    gh = github(request)
    with gh._lock:
        for key in ("title", "body", "state"):
            if key in data:
                pr[key] = data[key]
        pr["updated_at"] = timestamp()
    return JSONResponse(gh.pull_json(repo, pr))


async def request_reviewers(request: Request, owner: str, name: str, number: int) -> Response:
    repo = repo_access(request, owner, name, "pull_requests", "write")
    if isinstance(repo, Response):
        return repo
    pr = repo.pulls.get(number)
    if pr is None:
        return error(404, "Not Found")
    wanted = (await request.json()).get("reviewers") or []
    if any(login == pr["author"] for login in wanted):
        return error(422, "Review cannot be requested from pull request author.")
    gh = github(request)
    with gh._lock:
        pr["reviewers"] = sorted(set(pr["reviewers"]) | set(wanted))
    return JSONResponse(gh.pull_json(repo, pr), status_code=201)
