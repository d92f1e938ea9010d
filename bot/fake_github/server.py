"""A fake GitHub for tests and the demo: real HTTP, in-memory state, GitHub's shapes.

githubkit talks to it unchanged (pointed at it by base URL). It checks App JWTs (RS256,
against the App's public key) and installation tokens (scoped to the installation's
repositories and to the permissions asked for), and can be told to fail the next calls to
a route (502s, rate limits) to exercise retries. Responses carry the fields GitHub's
OpenAPI description marks as required for the operations qwenfix calls.
"""

from __future__ import annotations

import base64
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from unidiff.patch import PatchSet

from bot.fake_github import shapes
from bot.fake_github.git_http import http_backend

WRITE_LEVELS = {"admin": 4, "maintain": 3, "write": 2, "triage": 1, "read": 0}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    remaining: int
    headers: dict[str, str]
    message: str


@dataclass
class Grant:
    installation_id: int
    permissions: dict[str, str]
    repositories: list[str] | None
    expires: float


@dataclass
class FakeRepo:
    owner: str
    name: str
    id: int
    installation_id: int
    private: bool = False
    default_branch: str = "main"
    collaborators: dict[str, str] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    bare: Path | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class FakeGitHub:
    """State and routes. Thread-safe: the app may serve requests from several threads."""

    def __init__(self, *, app_id: int = 4242, app_slug: str = "qwenfix",
                 base_url: str = "http://127.0.0.1") -> None:
        self.app_id = app_id
        self.app_slug = app_slug
        self.bot_login = f"{app_slug}[bot]"
        self.base_url = base_url
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()
        self._public_key = key.public_key()
        self.installations: dict[int, str] = {}
        self.repos: dict[str, FakeRepo] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.reactions: list[dict[str, Any]] = []
        self.grants: dict[str, Grant] = {}
        self.check_runs: dict[int, dict[str, Any]] = {}
        self.reviews: dict[int, dict[str, Any]] = {}
        self.review_comments: dict[int, dict[str, Any]] = {}
        self.token_requests: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self._faults: list[Fault] = []
        self._ids = iter(range(10_000, 10**9))
        self._lock = threading.RLock()
        self.root = Path(tempfile.mkdtemp(prefix="fake-github-"))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # -- arranging the world ---------------------------------------------------------

    def add_repo(self, full_name: str, *, installation_id: int = 1,
                 collaborators: dict[str, str] | None = None,
                 source: Path | None = None) -> FakeRepo:
        """A repository; with `source` (a local git repository) also its git data,
        served over smart HTTP at /OWNER/NAME.git."""
        owner, name = full_name.split("/")
        with self._lock:
            self.installations.setdefault(installation_id, owner)
            repo = FakeRepo(owner, name, next(self._ids), installation_id,
                            collaborators=dict(collaborators or {}))
            if source is not None:
                repo.bare = self.root / owner / f"{name}.git"
                subprocess.run(["git", "clone", "-q", "--bare", str(source), str(repo.bare)],
                               check=True, capture_output=True)
                head = subprocess.run(["git", "-C", str(repo.bare), "symbolic-ref", "--short",
                                       "HEAD"], capture_output=True, text=True, check=True)
                repo.default_branch = head.stdout.strip()
            self.repos[full_name] = repo
            return repo

    def ref_sha(self, full_name: str, ref: str) -> str | None:
        repo = self.repos[full_name]
        if repo.bare is None:
            return None
        out = subprocess.run(["git", "-C", str(repo.bare), "rev-parse", "--verify", "--quiet",
                              f"{ref}^{{commit}}"], capture_output=True, text=True)
        return out.stdout.strip() or None

    def refs(self, full_name: str, prefix: str) -> list[tuple[str, str]]:
        repo = self.repos[full_name]
        if repo.bare is None:
            return []
        out = subprocess.run(["git", "-C", str(repo.bare), "for-each-ref",
                              "--format=%(refname) %(objectname)", prefix],
                             capture_output=True, text=True, check=True).stdout
        return [(ref, sha) for ref, sha in (line.split() for line in out.splitlines())]

    def update_ref(self, full_name: str, ref: str, sha: str) -> bool:
        repo = self.repos[full_name]
        if repo.bare is None:
            return False
        return subprocess.run(["git", "-C", str(repo.bare), "update-ref", ref, sha],
                              capture_output=True).returncode == 0

    def pull_diff_lines(self, full_name: str, pr: dict[str, Any]
                        ) -> tuple[dict[tuple[str, int, str], str], dict[str, str]]:
        """(path, line, side) -> the hunk it is in, for every line of the pull request's
        diff: where GitHub accepts review comments."""
        repo = self.repos[full_name]
        head = f"refs/pull/{pr['number']}/head" if pr.get("head_repo") \
            else f"refs/heads/{pr['head']}"
        diff = subprocess.run(["git", "-C", str(repo.bare), "diff", "--no-color",
                               f"{pr['base_sha']}...{head}"],
                              capture_output=True, text=True, check=True).stdout
        lines: dict[tuple[str, int, str], str] = {}
        hunks: dict[str, str] = {}
        for patched in PatchSet(diff):
            for hunk in patched:
                text = str(hunk)
                hunks.setdefault(patched.path, text)
                for line in hunk:
                    if line.target_line_no is not None:
                        lines[(patched.path, line.target_line_no, "RIGHT")] = text
                    if line.source_line_no is not None and not line.is_added:
                        lines[(patched.path, line.source_line_no, "LEFT")] = text
        return lines, hunks

    def _next_number(self, repo: FakeRepo) -> int:
        return max([0, *repo.issues, *repo.pulls]) + 1

    def add_issue(self, full_name: str, number: int, title: str, body: str = "",
                  author: str = "octocat", pull: bool = False) -> dict[str, Any]:
        with self._lock:
            issue = {"number": number, "title": title, "body": body, "author": author,
                     "state": "open", "pull": pull, "created_at": _now()}
            self.repos[full_name].issues[number] = issue
            return issue

    def add_comment(self, full_name: str, number: int, body: str, author: str) -> int:
        with self._lock:
            return int(self._new_comment(full_name, number, body, author)["id"])

    def add_pull(self, full_name: str, *, head: str, base: str, title: str, body: str = "",
                 author: str = "octocat", head_repo: str | None = None) -> int:
        """A pull request from a branch already in the repository's git data (or in the
        fork `head_repo`)."""
        with self._lock:
            repo = self.repos[full_name]
            head_sha = self.ref_sha(head_repo or full_name, f"refs/heads/{head}")
            base_sha = self.ref_sha(full_name, f"refs/heads/{base}")
            if head_sha is None or base_sha is None:
                raise ValueError(f"{head} or {base} is not a branch of {full_name}")
            number = self._next_number(repo)
            if head_repo is not None and repo.bare is not None:
                # As on GitHub, a fork's commits are kept in the base repository too.
                fork = self.repos[head_repo]
                subprocess.run(["git", "-C", str(repo.bare), "fetch", "-q", str(fork.bare),
                                f"refs/heads/{head}:refs/pull/{number}/head"],
                               check=True, capture_output=True)
            now = _now()
            repo.pulls[number] = {"number": number, "id": next(self._ids), "title": title,
                                  "body": body, "head": head, "base": base,
                                  "head_sha": head_sha, "base_sha": base_sha, "state": "open",
                                  "draft": False, "author": author, "reviewers": [],
                                  "created_at": now, "updated_at": now,
                                  "head_repo": head_repo}
            repo.issues[number] = {"number": number, "title": title, "body": body,
                                   "author": author, "state": "open", "pull": True,
                                   "created_at": now}
            return number

    def add_review(self, full_name: str, number: int, *, author: str, state: str, body: str,
                   comments: Sequence[tuple[str, int, str]] = ()) -> int:
        """A review by a person, with inline comments (path, line, body) on the new side."""
        with self._lock:
            pr = self.repos[full_name].pulls[number]
            review: dict[str, Any] = {
                      "id": next(self._ids), "repo": full_name, "number": number,
                      "body": body, "state": state, "author": author,
                      "commit_id": self.ref_sha(full_name, f"refs/heads/{pr['head']}"),
                      "created_at": _now()}
            self.reviews[review["id"]] = review
            for path, line, text in comments:
                rc: dict[str, Any] = {
                      "id": next(self._ids), "repo": full_name, "number": number,
                      "review_id": review["id"], "path": path, "line": line,
                      "side": "RIGHT", "body": text, "diff_hunk": "@@", "author": author,
                      "commit_id": review["commit_id"], "created_at": _now()}
                self.review_comments[rc["id"]] = rc
            return int(review["id"])

    def add_check_run(self, full_name: str, *, head_sha: str, name: str, conclusion: str,
                      output: dict[str, Any]) -> int:
        """A finished check run, as a CI system would report it."""
        with self._lock:
            run: dict[str, Any] = {
                   "id": next(self._ids), "repo": full_name, "name": name,
                   "head_sha": head_sha, "status": "completed", "conclusion": conclusion,
                   "output": output, "details_url": None, "external_id": None,
                   "started_at": _now(), "completed_at": _now()}
            self.check_runs[run["id"]] = run
            return int(run["id"])

    def fail_next(self, method: str, path_pattern: str, status: int, *, times: int = 1,
                  headers: dict[str, str] | None = None, message: str = "Server Error") -> None:
        with self._lock:
            self._faults.append(Fault(method.upper(), re.compile(path_pattern), status, times,
                                      dict(headers or {}), message))

    def issue_comments(self, full_name: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [c for c in self.comments.values()
                    if c["repo"] == full_name and c["number"] == number]

    # -- shapes -----------------------------------------------------------------------

    def user(self, login: str) -> dict[str, Any]:
        kind = "Bot" if login.endswith("[bot]") else "User"
        url = f"{self.base_url}/users/{login}"
        return {
            "login": login, "id": abs(hash(login)) % 10**8, "node_id": f"U_{login}",
            "avatar_url": f"{self.base_url}/avatars/{login}", "gravatar_id": "",
            "url": url, "html_url": f"{self.base_url}/{login}",
            "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}",
            "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{url}/subscriptions", "organizations_url": f"{url}/orgs",
            "repos_url": f"{url}/repos", "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events", "type": kind,
            "site_admin": False, "user_view_type": "public",
        }

    def _comment_json(self, comment: dict[str, Any]) -> dict[str, Any]:
        repo_url = f"{self.base_url}/repos/{comment['repo']}"
        return {
            "id": comment["id"], "node_id": f"IC_{comment['id']}",
            "url": f"{repo_url}/issues/comments/{comment['id']}",
            "html_url": f"{self.base_url}/{comment['repo']}/issues/{comment['number']}"
                        f"#issuecomment-{comment['id']}",
            "issue_url": f"{repo_url}/issues/{comment['number']}", "body": comment["body"],
            "user": self.user(comment["author"]), "created_at": comment["created_at"],
            "updated_at": comment["updated_at"], "author_association": "NONE",
        }

    def _new_comment(self, full_name: str, number: int, body: str,
                     author: str) -> dict[str, Any]:
        now = _now()
        comment: dict[str, Any] = {
            "id": next(self._ids), "repo": full_name, "number": number, "body": body,
            "author": author, "created_at": now, "updated_at": now}
        self.comments[comment["id"]] = comment
        return comment

    # -- auth -------------------------------------------------------------------------

    def _jwt_ok(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        try:
            claims = jwt.decode(token, self._public_key, algorithms=["RS256"],
                                options={"require": ["iss", "iat", "exp"]}, leeway=60)
        except jwt.PyJWTError:
            return False
        return str(claims["iss"]) == str(self.app_id) and claims["exp"] - claims["iat"] <= 660

    def _grant(self, request: Request) -> Grant | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        grant = self.grants.get(token)
        if grant is None or grant.expires < time.time():
            return None
        return grant

    def _basic_grant(self, request: Request) -> Grant | None:
        """git over HTTPS: `x-access-token:<token>` as basic credentials."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            _user, _, token = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        grant = self.grants.get(token)
        return grant if grant is not None and grant.expires >= time.time() else None

    # -- the HTTP app -------------------------------------------------------------------

    def asgi(self) -> FastAPI:
        app = FastAPI(title="fake GitHub")
        gh = self

        def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
            return JSONResponse({"message": message,
                                 "documentation_url": "https://docs.github.com/rest"},
                                status_code=status, headers=headers)

        @app.middleware("http")
        async def faults_and_log(request: Request, call_next: Any) -> Response:
            with gh._lock:
                gh.requests.append((request.method, request.url.path))
                for fault in gh._faults:
                    if fault.remaining > 0 and fault.method == request.method \
                            and fault.path.search(request.url.path):
                        fault.remaining -= 1
                        return error(fault.status, fault.message, fault.headers)
            response: Response = await call_next(request)
            return response

        def repo_access(request: Request, owner: str, name: str, permission: str | None,
                        level: str = "read") -> FakeRepo | Response:
            grant = gh._grant(request)
            if grant is None:
                return error(401, "Bad credentials")
            repo = gh.repos.get(f"{owner}/{name}")
            if repo is None or repo.installation_id != grant.installation_id or (
                    grant.repositories is not None and name not in grant.repositories):
                return error(404, "Not Found")
            if permission is not None:
                granted = grant.permissions.get(permission)
                if granted is None or (level == "write" and granted != "write"):
                    return error(403, "Resource not accessible by integration")
            return repo

        @app.get("/app")
        async def get_app(request: Request) -> Response:
            if not gh._jwt_ok(request):
                return error(401, "A JSON web token could not be decoded")
            return JSONResponse({
                "id": gh.app_id, "slug": gh.app_slug, "node_id": "A_1", "client_id": "Iv1.fake",
                "owner": gh.user("octo-org"), "name": gh.app_slug, "description": "",
                "external_url": gh.base_url, "html_url": f"{gh.base_url}/apps/{gh.app_slug}",
                "created_at": _now(), "updated_at": _now(),
                "permissions": {"contents": "write", "issues": "write",
                                "pull_requests": "write", "checks": "write",
                                "metadata": "read"},
                "events": ["issues", "issue_comment", "pull_request"]})

        @app.post("/app/installations/{installation_id}/access_tokens")
        async def access_token(request: Request, installation_id: int) -> Response:
            if not gh._jwt_ok(request):
                return error(401, "A JSON web token could not be decoded")
            if installation_id not in gh.installations:
                return error(404, "Not Found")
            body = await request.json() if await request.body() else {}
            permissions = body.get("permissions") or {"contents": "write", "issues": "write",
                                                       "pull_requests": "write",
                                                       "metadata": "read"}
            repositories = body.get("repositories")
            token = "ghs_" + secrets.token_urlsafe(27)
            expires = datetime.now(UTC) + timedelta(hours=1)
            with gh._lock:
                gh.grants[token] = Grant(installation_id, dict(permissions), repositories,
                                         expires.timestamp())
                gh.token_requests.append({"installation_id": installation_id,
                                          "permissions": permissions,
                                          "repositories": repositories})
            return JSONResponse({
                "token": token, "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "permissions": permissions,
                "repository_selection": "selected" if repositories else "all"},
                status_code=201)

        @app.get("/repos/{owner}/{name}/collaborators/{username}/permission")
        async def permission(request: Request, owner: str, name: str,
                             username: str) -> Response:
            repo = repo_access(request, owner, name, "metadata")
            if isinstance(repo, Response):
                return repo
            role = repo.collaborators.get(username)
            if role is None:
                role = "none" if repo.private else "read"
            level = {"maintain": "write", "triage": "read"}.get(role, role)
            rank = WRITE_LEVELS.get(role, -1)
            collaborator = {**gh.user(username), "role_name": role, "permissions": {
                "pull": rank >= 0, "triage": rank >= 1, "push": rank >= 2,
                "maintain": rank >= 3, "admin": rank >= 4}}
            return JSONResponse({"permission": level, "role_name": role,
                                 "user": collaborator})

        @app.get("/repos/{owner}/{name}/issues/{number}/comments")
        async def list_comments(request: Request, owner: str, name: str, number: int,
                                per_page: int = 30, page: int = 1) -> Response:
            repo = repo_access(request, owner, name, "issues")
            if isinstance(repo, Response):
                return repo
            per_page = max(1, min(per_page, 100))
            every = sorted(gh.issue_comments(repo.full_name, number), key=lambda c: c["id"])
            chunk = every[(page - 1) * per_page : page * per_page]
            headers = {}
            if page * per_page < len(every):
                nxt = (f"{gh.base_url}/repos/{owner}/{name}/issues/{number}/comments"
                       f"?per_page={per_page}&page={page + 1}")
                headers["Link"] = f'<{nxt}>; rel="next"'
            return JSONResponse([gh._comment_json(c) for c in chunk], headers=headers)

        @app.post("/repos/{owner}/{name}/issues/{number}/comments")
        async def create_comment(request: Request, owner: str, name: str,
                                 number: int) -> Response:
            repo = repo_access(request, owner, name, "issues", "write")
            if isinstance(repo, Response):
                return repo
            if number not in repo.issues:
                return error(404, "Not Found")
            body = (await request.json()).get("body")
            if not isinstance(body, str) or not body:
                return error(422, "Validation Failed")
            with gh._lock:
                comment = gh._new_comment(repo.full_name, number, body, gh.bot_login)
            return JSONResponse(gh._comment_json(comment), status_code=201)

        @app.patch("/repos/{owner}/{name}/issues/comments/{comment_id}")
        async def update_comment(request: Request, owner: str, name: str,
                                 comment_id: int) -> Response:
            repo = repo_access(request, owner, name, "issues", "write")
            if isinstance(repo, Response):
                return repo
            comment = gh.comments.get(comment_id)
            if comment is None or comment["repo"] != repo.full_name:
                return error(404, "Not Found")
            if comment["author"] != gh.bot_login:
                return error(403, "Resource not accessible by integration")
            with gh._lock:
                comment["body"] = (await request.json()).get("body", comment["body"])
                comment["updated_at"] = _now()
            return JSONResponse(gh._comment_json(comment))

        async def react(request: Request, owner: str, name: str, comment_id: int,
                        kind: str, permission: str) -> Response:
            repo = repo_access(request, owner, name, permission, "write")
            if isinstance(repo, Response):
                return repo
            content = (await request.json()).get("content")
            if content not in ("+1", "-1", "laugh", "confused", "heart", "hooray",
                               "rocket", "eyes"):
                return error(422, "Validation Failed")
            with gh._lock:
                for r in gh.reactions:
                    if (r["comment_id"], r["kind"], r["content"], r["user"]) == \
                            (comment_id, kind, content, gh.bot_login):
                        return JSONResponse(gh._reaction_json(r), status_code=200)
                reaction = {"id": next(gh._ids), "comment_id": comment_id, "kind": kind,
                            "content": content, "user": gh.bot_login, "created_at": _now()}
                gh.reactions.append(reaction)
            return JSONResponse(gh._reaction_json(reaction), status_code=201)

        @app.post("/repos/{owner}/{name}/issues/comments/{comment_id}/reactions")
        async def react_issue_comment(request: Request, owner: str, name: str,
                                      comment_id: int) -> Response:
            return await react(request, owner, name, comment_id, "issue_comment", "issues")

        @app.post("/repos/{owner}/{name}/pulls/comments/{comment_id}/reactions")
        async def react_review_comment(request: Request, owner: str, name: str,
                                       comment_id: int) -> Response:
            return await react(request, owner, name, comment_id, "review_comment",
                               "pull_requests")

        @app.get("/repos/{owner}/{name}")
        async def get_repo(request: Request, owner: str, name: str) -> Response:
            repo = repo_access(request, owner, name, "metadata")
            if isinstance(repo, Response):
                return repo
            return JSONResponse(gh.repo_json(repo))

        @app.get("/repos/{owner}/{name}/issues/{number}")
        async def get_issue(request: Request, owner: str, name: str, number: int) -> Response:
            repo = repo_access(request, owner, name, "issues")
            if isinstance(repo, Response):
                return repo
            item = repo.issues.get(number)
            if item is None:
                return error(404, "Not Found")
            return JSONResponse(shapes.issue(
                gh.base_url, gh.base_url, full_name=repo.full_name, number=number,
                issue_id=repo.id * 1000 + number, title=item["title"], body=item["body"],
                user=gh.user(item["author"]), state=item["state"],
                created_at=item["created_at"], pull=item["pull"]))

        @app.get("/repos/{owner}/{name}/contents/{path:path}")
        async def get_content(request: Request, owner: str, name: str, path: str,
                              ref: str | None = None) -> Response:
            repo = repo_access(request, owner, name, "contents")
            if isinstance(repo, Response):
                return repo
            if repo.bare is None:
                return error(404, "Not Found")
            rev = f"{ref or repo.default_branch}:{path}"
            sha = subprocess.run(["git", "-C", str(repo.bare), "rev-parse", "--verify",
                                  "--quiet", rev], capture_output=True, text=True).stdout.strip()
            kind = subprocess.run(["git", "-C", str(repo.bare), "cat-file", "-t", sha or "-"],
                                  capture_output=True, text=True).stdout.strip()
            if not sha or kind != "blob":
                return error(404, "Not Found")
            content = subprocess.run(["git", "-C", str(repo.bare), "cat-file", "blob", sha],
                                     capture_output=True, check=True).stdout
            return JSONResponse(shapes.content_file(gh.base_url, full_name=repo.full_name,
                                                    path=path, sha=sha, content=content))

        @app.get("/repos/{owner}/{name}/git/ref/{ref:path}")
        async def get_ref(request: Request, owner: str, name: str, ref: str) -> Response:
            repo = repo_access(request, owner, name, "contents")
            if isinstance(repo, Response):
                return repo
            sha = gh.ref_sha(repo.full_name, f"refs/{ref}")
            if sha is None:
                return error(404, "Not Found")
            return JSONResponse(shapes.git_ref(gh.base_url, repo.full_name, f"refs/{ref}", sha))

        @app.get("/repos/{owner}/{name}/git/matching-refs/{ref:path}")
        async def matching_refs(request: Request, owner: str, name: str, ref: str) -> Response:
            repo = repo_access(request, owner, name, "contents")
            if isinstance(repo, Response):
                return repo
            return JSONResponse([shapes.git_ref(gh.base_url, repo.full_name, r, sha)
                                 for r, sha in gh.refs(repo.full_name, f"refs/{ref}")])

        @app.post("/repos/{owner}/{name}/git/refs")
        async def create_ref(request: Request, owner: str, name: str) -> Response:
            repo = repo_access(request, owner, name, "contents", "write")
            if isinstance(repo, Response):
                return repo
            data = await request.json()
            ref, sha = str(data.get("ref", "")), str(data.get("sha", ""))
            if not ref.startswith("refs/") or gh.ref_sha(repo.full_name, ref) is not None:
                return error(422, "Reference already exists" if ref.startswith("refs/")
                             else "Validation Failed")
            if not gh.update_ref(repo.full_name, ref, sha):
                return error(422, "Object does not exist")
            return JSONResponse(shapes.git_ref(gh.base_url, repo.full_name, ref, sha),
                                status_code=201)

        @app.patch("/repos/{owner}/{name}/git/refs/{ref:path}")
        async def update_ref(request: Request, owner: str, name: str, ref: str) -> Response:
            repo = repo_access(request, owner, name, "contents", "write")
            if isinstance(repo, Response):
                return repo
            data = await request.json()
            full, sha = f"refs/{ref}", str(data.get("sha", ""))
            current = gh.ref_sha(repo.full_name, full)
            if current is None:
                return error(422, "Reference does not exist")
            ancestor = subprocess.run(["git", "-C", str(repo.bare), "merge-base",
                                       "--is-ancestor", current, sha], capture_output=True)
            if not data.get("force") and ancestor.returncode != 0:
                return error(422, "Update is not a fast forward")
            if not gh.update_ref(repo.full_name, full, sha):
                return error(422, "Object does not exist")
            return JSONResponse(shapes.git_ref(gh.base_url, repo.full_name, full, sha))

        @app.delete("/repos/{owner}/{name}/git/refs/{ref:path}")
        async def delete_ref(request: Request, owner: str, name: str, ref: str) -> Response:
            repo = repo_access(request, owner, name, "contents", "write")
            if isinstance(repo, Response):
                return repo
            if gh.ref_sha(repo.full_name, f"refs/{ref}") is None:
                return error(422, "Reference does not exist")
            subprocess.run(["git", "-C", str(repo.bare), "update-ref", "-d", f"refs/{ref}"],
                           check=True)
            return Response(status_code=204)

        @app.post("/repos/{owner}/{name}/check-runs")
        async def create_check_run(request: Request, owner: str, name: str) -> Response:
            repo = repo_access(request, owner, name, "checks", "write")
            if isinstance(repo, Response):
                return repo
            data = await request.json()
            if not data.get("name") or not data.get("head_sha"):
                return error(422, "Validation Failed")
            with gh._lock:
                run = {"id": next(gh._ids), "repo": repo.full_name, "name": data["name"],
                       "head_sha": data["head_sha"], "status": data.get("status", "queued"),
                       "conclusion": data.get("conclusion"), "output": data.get("output") or {},
                       "details_url": data.get("details_url"),
                       "external_id": data.get("external_id"), "started_at": _now(),
                       "completed_at": _now() if data.get("conclusion") else None}
                gh.check_runs[run["id"]] = run
            return JSONResponse(gh.check_run_json(run), status_code=201)

        @app.patch("/repos/{owner}/{name}/check-runs/{run_id}")
        async def update_check_run(request: Request, owner: str, name: str,
                                   run_id: int) -> Response:
            repo = repo_access(request, owner, name, "checks", "write")
            if isinstance(repo, Response):
                return repo
            run = gh.check_runs.get(run_id)
            if run is None or run["repo"] != repo.full_name:
                return error(404, "Not Found")
            data = await request.json()
            with gh._lock:
                for key in ("name", "status", "conclusion", "output", "details_url"):
                    if key in data:
                        run[key] = data[key]
                if data.get("conclusion"):
                    run["status"], run["completed_at"] = "completed", _now()
            return JSONResponse(gh.check_run_json(run))

        @app.get("/repos/{owner}/{name}/commits/{ref}/check-runs")
        async def check_runs_for_ref(request: Request, owner: str, name: str,
                                     ref: str) -> Response:
            repo = repo_access(request, owner, name, "checks")
            if isinstance(repo, Response):
                return repo
            sha = gh.ref_sha(repo.full_name, ref) or ref
            runs = [gh.check_run_json(r) for r in gh.check_runs.values()
                    if r["repo"] == repo.full_name and r["head_sha"] == sha]
            return JSONResponse({"total_count": len(runs), "check_runs": runs})

        @app.get("/repos/{owner}/{name}/check-runs/{run_id}/annotations")
        async def annotations(request: Request, owner: str, name: str,
                              run_id: int) -> Response:
            repo = repo_access(request, owner, name, "checks")
            if isinstance(repo, Response):
                return repo
            run = gh.check_runs.get(run_id)
            if run is None or run["repo"] != repo.full_name:
                return error(404, "Not Found")
            return JSONResponse([{
                "path": a.get("path", ""), "start_line": a.get("start_line", 1),
                "end_line": a.get("end_line", a.get("start_line", 1)),
                "start_column": None, "end_column": None,
                "annotation_level": a.get("annotation_level", "failure"),
                "title": a.get("title"), "message": a.get("message", ""),
                "raw_details": None, "blob_href": "", "source": None}
                for a in (run["output"].get("annotations") or [])])

        @app.get("/repos/{owner}/{name}/pulls")
        async def list_pulls(request: Request, owner: str, name: str, state: str = "open",
                             head: str | None = None) -> Response:
            repo = repo_access(request, owner, name, "pull_requests")
            if isinstance(repo, Response):
                return repo
            pulls = [p for p in repo.pulls.values() if state == "all" or p["state"] == state]
            if head:
                pulls = [p for p in pulls if f"{repo.owner}:{p['head']}" == head]
            for pr in pulls:  # a branch moves when someone pushes to it
                pr["head_sha"] = gh.ref_sha(pr.get("head_repo") or repo.full_name,
                                            f"refs/heads/{pr['head']}") or pr["head_sha"]
            return JSONResponse([gh.pull_json(repo, p) for p in sorted(
                pulls, key=lambda p: -p["number"])])

        @app.post("/repos/{owner}/{name}/pulls")
        async def create_pull(request: Request, owner: str, name: str) -> Response:
            repo = repo_access(request, owner, name, "pull_requests", "write")
            if isinstance(repo, Response):
                return repo
            data = await request.json()
            head, base = str(data.get("head", "")), str(data.get("base", ""))
            head_sha = gh.ref_sha(repo.full_name, f"refs/heads/{head}")
            base_sha = gh.ref_sha(repo.full_name, f"refs/heads/{base}")
            if not data.get("title") or head_sha is None or base_sha is None:
                return error(422, "Validation Failed")
            with gh._lock:
                if any(p["head"] == head for p in gh.open_pulls(repo.full_name)):
                    return error(422, f"A pull request already exists for {owner}:{head}.")
                number = gh._next_number(repo)
                now = _now()
                pr = {"number": number, "id": next(gh._ids), "title": data["title"],
                      "body": data.get("body") or "", "head": head, "base": base,
                      "head_sha": head_sha, "base_sha": base_sha, "state": "open",
                      "draft": bool(data.get("draft")), "author": gh.bot_login,
                      "reviewers": [], "created_at": now, "updated_at": now}
                repo.pulls[number] = pr
                repo.issues[number] = {"number": number, "title": pr["title"],
                                       "body": pr["body"], "author": gh.bot_login,
                                       "state": "open", "pull": True, "created_at": now}
            return JSONResponse(gh.pull_json(repo, pr), status_code=201)

        @app.get("/repos/{owner}/{name}/pulls/{number}")
        async def get_pull(request: Request, owner: str, name: str, number: int) -> Response:
            repo = repo_access(request, owner, name, "pull_requests")
            if isinstance(repo, Response):
                return repo
            pr = repo.pulls.get(number)
            if pr is None:
                return error(404, "Not Found")
            pr["head_sha"] = gh.ref_sha(pr.get("head_repo") or repo.full_name,
                                        f"refs/heads/{pr['head']}") or pr["head_sha"]
            return JSONResponse(gh.pull_json(repo, pr))

        @app.patch("/repos/{owner}/{name}/pulls/{number}")
        async def update_pull(request: Request, owner: str, name: str, number: int) -> Response:
            repo = repo_access(request, owner, name, "pull_requests", "write")
            if isinstance(repo, Response):
                return repo
            pr = repo.pulls.get(number)
            if pr is None:
                return error(404, "Not Found")
            data = await request.json()
            with gh._lock:
                for key in ("title", "body", "state"):
                    if key in data:
                        pr[key] = data[key]
                pr["updated_at"] = _now()
            return JSONResponse(gh.pull_json(repo, pr))

        @app.post("/repos/{owner}/{name}/pulls/{number}/requested_reviewers")
        async def request_reviewers(request: Request, owner: str, name: str,
                                    number: int) -> Response:
            repo = repo_access(request, owner, name, "pull_requests", "write")
            if isinstance(repo, Response):
                return repo
            pr = repo.pulls.get(number)
            if pr is None:
                return error(404, "Not Found")
            wanted = (await request.json()).get("reviewers") or []
            if any(login == pr["author"] for login in wanted):
                return error(422, "Review cannot be requested from pull request author.")
            with gh._lock:
                pr["reviewers"] = sorted(set(pr["reviewers"]) | set(wanted))
            return JSONResponse(gh.pull_json(repo, pr), status_code=201)

        @app.post("/repos/{owner}/{name}/pulls/{number}/reviews")
        async def create_review(request: Request, owner: str, name: str,
                                number: int) -> Response:
            repo = repo_access(request, owner, name, "pull_requests", "write")
            if isinstance(repo, Response):
                return repo
            pr = repo.pulls.get(number)
            if pr is None:
                return error(404, "Not Found")
            data = await request.json()
            event = str(data.get("event") or "PENDING")
            states = {"COMMENT": "COMMENTED", "APPROVE": "APPROVED",
                      "REQUEST_CHANGES": "CHANGES_REQUESTED", "PENDING": "PENDING"}
            if event not in states:
                return error(422, "Unprocessable Entity")
            if event in ("COMMENT", "REQUEST_CHANGES") and not data.get("body") \
                    and not data.get("comments"):
                return error(422, "Unprocessable Entity")
            lines, _ = gh.pull_diff_lines(repo.full_name, pr)
            placed = []
            for comment in data.get("comments") or []:
                key = (str(comment.get("path")), int(comment.get("line") or 0),
                       str(comment.get("side") or "RIGHT"))
                if key not in lines:
                    return JSONResponse({"message": "Unprocessable Entity", "errors": [
                        "Pull request review thread line must be part of the diff"],
                        "documentation_url": "https://docs.github.com/rest"}, status_code=422)
                placed.append((key, str(comment.get("body") or ""), lines[key]))
            head_sha = gh.ref_sha(repo.full_name, f"refs/heads/{pr['head']}") or pr["head_sha"]
            with gh._lock:
                item: dict[str, Any] = {
                        "id": next(gh._ids), "repo": repo.full_name, "number": number,
                        "body": data.get("body") or "", "state": states[event],
                        "commit_id": data.get("commit_id") or head_sha, "author": gh.bot_login,
                        "created_at": _now()}
                gh.reviews[item["id"]] = item
                for (path, line, side), body, hunk in placed:
                    rc = {"id": next(gh._ids), "repo": repo.full_name, "number": number,
                          "review_id": item["id"], "path": path, "line": line, "side": side,
                          "body": body, "diff_hunk": hunk, "commit_id": item["commit_id"],
                          "author": gh.bot_login, "created_at": _now()}
                    gh.review_comments[rc["id"]] = rc
            return JSONResponse(shapes.review(gh.base_url, gh.base_url,
                                              full_name=repo.full_name, number=number,
                                              item=item, user=gh.user(item["author"])))

        @app.get("/repos/{owner}/{name}/pulls/{number}/reviews")
        async def list_reviews(request: Request, owner: str, name: str,
                               number: int) -> Response:
            repo = repo_access(request, owner, name, "pull_requests")
            if isinstance(repo, Response):
                return repo
            items = sorted((r for r in gh.reviews.values()
                            if r["repo"] == repo.full_name and r["number"] == number),
                           key=lambda r: r["id"])
            return JSONResponse([shapes.review(gh.base_url, gh.base_url,
                                               full_name=repo.full_name, number=number,
                                               item=r, user=gh.user(r["author"]))
                                 for r in items])

        @app.get("/repos/{owner}/{name}/pulls/{number}/comments")
        async def list_review_comments(request: Request, owner: str, name: str,
                                       number: int) -> Response:
            repo = repo_access(request, owner, name, "pull_requests")
            if isinstance(repo, Response):
                return repo
            items = sorted((c for c in gh.review_comments.values()
                            if c["repo"] == repo.full_name and c["number"] == number),
                           key=lambda c: c["id"])
            return JSONResponse([shapes.review_comment(
                gh.base_url, gh.base_url, full_name=repo.full_name, number=number, item=c,
                user=gh.user(c["author"])) for c in items])

        @app.post("/repos/{owner}/{name}/pulls/{number}/comments/{comment_id}/replies")
        async def reply(request: Request, owner: str, name: str, number: int,
                        comment_id: int) -> Response:
            repo = repo_access(request, owner, name, "pull_requests", "write")
            if isinstance(repo, Response):
                return repo
            parent = gh.review_comments.get(comment_id)
            if parent is None or parent["repo"] != repo.full_name or parent["number"] != number:
                return error(404, "Not Found")
            body = (await request.json()).get("body")
            if not body:
                return error(422, "Validation Failed")
            with gh._lock:
                rc = {**parent, "id": next(gh._ids), "body": body, "reply_to": comment_id,
                      "author": gh.bot_login, "created_at": _now()}
                gh.review_comments[rc["id"]] = rc
            return JSONResponse(shapes.review_comment(
                gh.base_url, gh.base_url, full_name=repo.full_name, number=number, item=rc,
                user=gh.user(rc["author"])), status_code=201)

        @app.api_route("/{owner}/{name}.git/{rest:path}", methods=["GET", "POST"])
        async def git_smart_http(request: Request, owner: str, name: str,
                                 rest: str) -> Response:
            repo = gh.repos.get(f"{owner}/{name}")
            if repo is None or repo.bare is None:
                return Response("Repository not found.", status_code=404)
            pushing = "git-receive-pack" in (rest + request.url.query)
            grant = gh._basic_grant(request)
            anonymous_read = grant is None and not pushing and not repo.private
            if anonymous_read:  # public repositories are readable by anyone
                pass
            elif grant is None or repo.installation_id != grant.installation_id or (
                    grant.repositories is not None and name not in grant.repositories):
                return Response("Authentication required.", status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="GitHub"'})
            if grant is not None and pushing and grant.permissions.get("contents") != "write":
                return Response("Permission denied.", status_code=403)
            if grant is not None and not pushing and "contents" not in grant.permissions:
                return Response("Permission denied.", status_code=403)
            status, headers, body = await http_backend(
                gh.root, method=request.method, path=f"/{owner}/{name}.git/{rest}",
                query=request.url.query,
                content_type=request.headers.get("content-type", ""),
                content_encoding=request.headers.get("content-encoding", ""),
                body=await request.body(), user="x-access-token")
            return Response(body, status_code=status, headers=headers)

        @app.api_route("/{path:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
        async def not_found(path: str) -> Response:
            return error(404, "Not Found")

        return app

    def check_run_json(self, run: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/repos/{run['repo']}/check-runs/{run['id']}"
        output = run["output"]
        return {
            "id": run["id"], "node_id": f"CR_{run['id']}", "head_sha": run["head_sha"],
            "name": run["name"], "url": url, "html_url": f"{self.base_url}/{run['repo']}/runs/"
            f"{run['id']}", "details_url": run["details_url"], "status": run["status"],
            "conclusion": run["conclusion"], "started_at": run["started_at"],
            "completed_at": run["completed_at"], "external_id": run["external_id"],
            "check_suite": {"id": run["id"] + 1},
            "output": {"title": output.get("title"), "summary": output.get("summary"),
                       "text": output.get("text"), "annotations_count":
                       len(output.get("annotations") or []), "annotations_url":
                       f"{url}/annotations"},
            "app": None, "pull_requests": []}

    def repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        return shapes.repository(self.base_url, self.base_url, full_name=repo.full_name,
                                 repo_id=repo.id, owner=self.user(repo.owner),
                                 private=repo.private, default_branch=repo.default_branch,
                                 now=_now())

    def pull_json(self, repo: FakeRepo, pr: dict[str, Any]) -> dict[str, Any]:
        out = shapes.pull_request(self.base_url, self.base_url, full_name=repo.full_name,
                                  pr=pr, repo_json=self.repo_json(repo),
                                  user=self.user(pr["author"]),
                                  reviewers=[self.user(r) for r in pr["reviewers"]])
        if pr.get("head_repo"):  # from a fork
            fork = self.repos[pr["head_repo"]]
            out["head"]["repo"] = self.repo_json(fork)
            out["head"]["label"] = f"{fork.owner}:{pr['head']}"
        return out

    def open_pulls(self, full_name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.repos[full_name].pulls.values() if p["state"] == "open"]

    def _reaction_json(self, reaction: dict[str, Any]) -> dict[str, Any]:
        return {"id": reaction["id"], "node_id": f"REA_{reaction['id']}",
                "user": self.user(reaction["user"]), "content": reaction["content"],
                "created_at": reaction["created_at"]}
