"""Git references through the REST API (git/ref, git/matching-refs, git/refs)."""

from __future__ import annotations

import subprocess

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.github import shapes
from tests.fakes.github.routes.common import error, github, repo_access


async def get_ref(request: Request, owner: str, name: str, ref: str) -> Response:
    repo = repo_access(request, owner, name, "contents")
    if isinstance(repo, Response):
        return repo
    gh = github(request)
    sha = gh.ref_sha(repo.full_name, f"refs/{ref}")
    if sha is None:
        return error(404, "Not Found")
    return JSONResponse(shapes.git_ref(gh.base_url, repo.full_name, f"refs/{ref}", sha))


async def matching_refs(request: Request, owner: str, name: str, ref: str) -> Response:
    repo = repo_access(request, owner, name, "contents")
    if isinstance(repo, Response):
        return repo
    gh = github(request)
    return JSONResponse(
        [
            shapes.git_ref(gh.base_url, repo.full_name, r, sha)
            for r, sha in gh.refs(repo.full_name, f"refs/{ref}")
        ]
    )


async def create_ref(request: Request, owner: str, name: str) -> Response:
    repo = repo_access(request, owner, name, "contents", "write")
    if isinstance(repo, Response):
        return repo
    gh = github(request)
    data = await request.json()
    ref, sha = str(data.get("ref", "")), str(data.get("sha", ""))
    if not ref.startswith("refs/") or gh.ref_sha(repo.full_name, ref) is not None:
        return error(
            422, "Reference already exists" if ref.startswith("refs/") else "Validation Failed"
        )
    if not gh.update_ref(repo.full_name, ref, sha):
        return error(422, "Object does not exist")
    return JSONResponse(shapes.git_ref(gh.base_url, repo.full_name, ref, sha), status_code=201)


async def update_ref(request: Request, owner: str, name: str, ref: str) -> Response:
    repo = repo_access(request, owner, name, "contents", "write")
    if isinstance(repo, Response):
        return repo
    gh = github(request)
    data = await request.json()
    full, sha = f"refs/{ref}", str(data.get("sha", ""))
    current = gh.ref_sha(repo.full_name, full)
    if current is None:
        return error(422, "Reference does not exist")
    ancestor = subprocess.run(
        ["git", "-C", str(repo.bare), "merge-base", "--is-ancestor", current, sha],
        capture_output=True,
    )
    if not data.get("force") and ancestor.returncode != 0:
        return error(422, "Update is not a fast forward")
    if not gh.update_ref(repo.full_name, full, sha):
        return error(422, "Object does not exist")
    return JSONResponse(shapes.git_ref(gh.base_url, repo.full_name, full, sha))


async def delete_ref(request: Request, owner: str, name: str, ref: str) -> Response:
    repo = repo_access(request, owner, name, "contents", "write")
    if isinstance(repo, Response):
        return repo
    if github(request).ref_sha(repo.full_name, f"refs/{ref}") is None:
        return error(422, "Reference does not exist")
    subprocess.run(["git", "-C", str(repo.bare), "update-ref", "-d", f"refs/{ref}"], check=True)
    return Response(status_code=204)
