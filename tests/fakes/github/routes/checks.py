"""Checks: check runs (created, updated, listed by commit) and their annotations."""

# No `from __future__ import annotations` here: its name would clash with the
# `annotations` route (whose name FastAPI publishes, as before, in its operation id).

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.github.model import timestamp
from tests.fakes.github.routes.common import error, github, repo_access
from tests.fakes.github.routes.paging import page_of

UPDATABLE = ("name", "status", "conclusion", "output", "details_url")


async def create_check_run(request: Request, owner: str, name: str) -> Response:
    repo = repo_access(request, owner, name, "checks", "write")
    if isinstance(repo, Response):
        return repo
    data = await request.json()
    if not data.get("name") or not data.get("head_sha"):
        return error(422, "Validation Failed")
    gh = github(request)
    with gh._lock:
        run = {
            "id": next(gh._ids),
            "repo": repo.full_name,
            "name": data["name"],
            "head_sha": data["head_sha"],
            "status": data.get("status", "queued"),
            "conclusion": data.get("conclusion"),
            "output": data.get("output") or {},
            "details_url": data.get("details_url"),
            "external_id": data.get("external_id"),
            "started_at": timestamp(),
            "completed_at": timestamp() if data.get("conclusion") else None,
        }
        gh.check_runs[run["id"]] = run
    return JSONResponse(gh.check_run_json(run), status_code=201)


async def update_check_run(request: Request, owner: str, name: str, run_id: int) -> Response:
    repo = repo_access(request, owner, name, "checks", "write")
    if isinstance(repo, Response):
        return repo
    gh = github(request)
    run = gh.check_runs.get(run_id)
    if run is None or run["repo"] != repo.full_name:
        return error(404, "Not Found")
    data = await request.json()
    with gh._lock:
        run.update({key: data[key] for key in UPDATABLE if key in data})
        if data.get("conclusion"):
            run["status"], run["completed_at"] = "completed", timestamp()
    return JSONResponse(gh.check_run_json(run))


async def check_runs_for_ref(request: Request, owner: str, name: str, ref: str) -> Response:
    repo = repo_access(request, owner, name, "checks")
    if isinstance(repo, Response):
        return repo
    gh = github(request)
    sha = gh.ref_sha(repo.full_name, ref) or ref
    runs = sorted(
        (r for r in gh.check_runs.values() if r["repo"] == repo.full_name and r["head_sha"] == sha),
        key=lambda r: int(r["id"]),
    )
    return page_of(request, runs, gh.check_run_json, wrap="check_runs")


def _annotation(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": a.get("path", ""),
        "start_line": a.get("start_line", 1),
        "end_line": a.get("end_line", a.get("start_line", 1)),
        "start_column": None,
        "end_column": None,
        "annotation_level": a.get("annotation_level", "failure"),
        "title": a.get("title"),
        "message": a.get("message", ""),
        "raw_details": None,
        "blob_href": "",
        "source": None,
    }


async def annotations(request: Request, owner: str, name: str, run_id: int) -> Response:
    repo = repo_access(request, owner, name, "checks")
    if isinstance(repo, Response):
        return repo
    run = github(request).check_runs.get(run_id)
    if run is None or run["repo"] != repo.full_name:
        return error(404, "Not Found")
    return page_of(request, run["output"].get("annotations") or [], _annotation)
