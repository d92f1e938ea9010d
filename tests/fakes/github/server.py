"""A fake GitHub for tests and the demo: real HTTP, in-memory state, GitHub's shapes.

githubkit talks to it unchanged (pointed at it by base URL). It checks App JWTs (RS256,
against the App's public key) and installation tokens (scoped to the installation's
repositories and to the permissions asked for), and can be told to fail the next calls to
a route (502s, rate limits) to exercise retries. Responses carry the fields GitHub's
OpenAPI description marks as required for the operations qwenfix calls.

This module holds the state and the dispatch table (ROUTES); the handlers live in
routes/, one module per area of GitHub's API.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.responses import Response
from unidiff.patch import PatchSet

from tests.fakes.github import shapes
from tests.fakes.github.hooks import WebhookLog
from tests.fakes.github.model import WRITE_LEVELS, FakeRepo, Fault, Grant, timestamp
from tests.fakes.github.routes import (
    apps,
    checks,
    hook_deliveries,
    issues,
    pulls,
    reactions,
    refs,
    repos,
    reviews,
    smart_http,
    users,
)
from tests.fakes.github.routes.common import error, not_found

__all__ = ["ROUTES", "WRITE_LEVELS", "FakeGitHub", "FakeRepo", "Fault", "Grant"]

Handler = Callable[..., Awaitable[Response]]

REPO = "/repos/{owner}/{name}"

# The dispatch table: methods (comma-separated), path pattern, handler. Routes are tried in
# this order and the first whose pattern matches serves the request.
ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/app", apps.get_app),
    ("GET", "/users/{username}", users.get_user),
    ("POST", "/app/installations/{installation_id}/access_tokens", apps.access_token),
    ("GET", "/app/hook/deliveries", hook_deliveries.list_deliveries),
    ("POST", "/app/hook/deliveries/{delivery_id}/attempts", hook_deliveries.redeliver),
    ("GET", REPO + "/collaborators/{username}/permission", repos.permission),
    ("GET", REPO + "/issues/{number}/comments", issues.list_comments),
    ("POST", REPO + "/issues/{number}/comments", issues.create_comment),
    ("PATCH", REPO + "/issues/comments/{comment_id}", issues.update_comment),
    ("POST", REPO + "/issues/comments/{comment_id}/reactions", reactions.react_issue_comment),
    ("POST", REPO + "/pulls/comments/{comment_id}/reactions", reactions.react_review_comment),
    ("GET", REPO, repos.get_repo),
    ("GET", REPO + "/issues/{number}", issues.get_issue),
    ("GET", REPO + "/contents/{path:path}", repos.get_content),
    ("GET", REPO + "/git/ref/{ref:path}", refs.get_ref),
    ("GET", REPO + "/git/matching-refs/{ref:path}", refs.matching_refs),
    ("POST", REPO + "/git/refs", refs.create_ref),
    ("PATCH", REPO + "/git/refs/{ref:path}", refs.update_ref),
    ("DELETE", REPO + "/git/refs/{ref:path}", refs.delete_ref),
    ("POST", REPO + "/check-runs", checks.create_check_run),
    ("PATCH", REPO + "/check-runs/{run_id}", checks.update_check_run),
    ("GET", REPO + "/commits/{ref}/check-runs", checks.check_runs_for_ref),
    ("GET", REPO + "/check-runs/{run_id}/annotations", checks.annotations),
    ("GET", REPO + "/pulls", pulls.list_pulls),
    ("POST", REPO + "/pulls", pulls.create_pull),
    ("GET", REPO + "/pulls/{number}", pulls.get_pull),
    ("PATCH", REPO + "/pulls/{number}", pulls.update_pull),
    ("POST", REPO + "/pulls/{number}/requested_reviewers", pulls.request_reviewers),
    ("POST", REPO + "/pulls/{number}/reviews", reviews.create_review),
    ("GET", REPO + "/pulls/{number}/reviews", reviews.list_reviews),
    ("GET", REPO + "/pulls/{number}/comments", reviews.list_review_comments),
    ("POST", REPO + "/pulls/{number}/comments/{comment_id}/replies", reviews.reply),
    ("GET,POST", "/{owner}/{name}.git/{rest:path}", smart_http.git_smart_http),
    ("GET,POST,PATCH,PUT,DELETE", "/{path:path}", not_found),
)


class FakeGitHub:
    """State, and the app serving it (asgi). Thread-safe: the app may serve requests
    from several threads."""

    def __init__(
        self, *, app_id: int = 4242, app_slug: str = "qwenfix", base_url: str = "http://127.0.0.1"
    ) -> None:
        self.app_id = app_id
        self.app_slug = app_slug
        self.bot_login = f"{app_slug}[bot]"
        self.base_url = base_url
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
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
        self.user_agents: list[tuple[str, str, str]] = []
        """(method, path, User-Agent) of every request, the API's and git's."""
        self._faults: list[Fault] = []
        self._ids = iter(range(10_000, 10**9))
        self._lock = threading.RLock()
        self.root = Path(tempfile.mkdtemp(prefix="fake-github-"))
        self.webhooks = WebhookLog()
        """The App's webhook: what was sent where, every attempt (tests/fakes/github/hooks.py)."""

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the App's webhook ---------------------------------------------------------------

    def configure_webhook(self, url: str, secret: str) -> None:
        """Send the App's deliveries to `url` (the receiver's /webhook), signed with
        `secret`."""
        self.webhooks.configure(url, secret)

    def send_webhook(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Deliver an event as GitHub would (a new guid, signed): the attempt recorded,
        with the receiver's `status_code` (0: no answer)."""
        return self.webhooks.send(event, payload)

    # -- arranging the world ---------------------------------------------------------

    def add_repo(
        self,
        full_name: str,
        *,
        installation_id: int = 1,
        collaborators: dict[str, str] | None = None,
        source: Path | None = None,
    ) -> FakeRepo:
        """A repository; with `source` (a local git repository) also its git data,
        served over smart HTTP at /OWNER/NAME.git."""
        owner, name = full_name.split("/")
        with self._lock:
            self.installations.setdefault(installation_id, owner)
            repo = FakeRepo(
                owner,
                name,
                next(self._ids),
                installation_id,
                collaborators=dict(collaborators or {}),
            )
            if source is not None:
                repo.bare = self.root / owner / f"{name}.git"
                subprocess.run(
                    ["git", "clone", "-q", "--bare", str(source), str(repo.bare)],
                    check=True,
                    capture_output=True,
                )
                head = subprocess.run(
                    ["git", "-C", str(repo.bare), "symbolic-ref", "--short", "HEAD"],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                repo.default_branch = head.stdout.strip()
            self.repos[full_name] = repo
            return repo

    def ref_sha(self, full_name: str, ref: str) -> str | None:
        repo = self.repos[full_name]
        if repo.bare is None:
            return None
        out = subprocess.run(
            ["git", "-C", str(repo.bare), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
            capture_output=True,
            text=True,
        )
        return out.stdout.strip() or None

    def refs(self, full_name: str, prefix: str) -> list[tuple[str, str]]:
        repo = self.repos[full_name]
        if repo.bare is None:
            return []
        out = subprocess.run(
            [
                "git",
                "-C",
                str(repo.bare),
                "for-each-ref",
                "--format=%(refname) %(objectname)",
                prefix,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [(ref, sha) for ref, sha in (line.split() for line in out.splitlines())]

    def update_ref(self, full_name: str, ref: str, sha: str) -> bool:
        repo = self.repos[full_name]
        if repo.bare is None:
            return False
        return (
            subprocess.run(
                ["git", "-C", str(repo.bare), "update-ref", ref, sha], capture_output=True
            ).returncode
            == 0
        )

    def pull_diff_lines(
        self, full_name: str, pr: dict[str, Any]
    ) -> tuple[dict[tuple[str, int, str], str], dict[str, str]]:
        """(path, line, side) -> the hunk it is in, for every line of the pull request's
        diff: where GitHub accepts review comments."""
        repo = self.repos[full_name]
        head = (
            f"refs/pull/{pr['number']}/head" if pr.get("head_repo") else f"refs/heads/{pr['head']}"
        )
        diff = subprocess.run(
            ["git", "-C", str(repo.bare), "diff", "--no-color", f"{pr['base_sha']}...{head}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
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

    def add_issue(
        self,
        full_name: str,
        number: int,
        title: str,
        body: str = "",
        author: str = "octocat",
        pull: bool = False,
    ) -> dict[str, Any]:
        with self._lock:
            issue = {
                "number": number,
                "title": title,
                "body": body,
                "author": author,
                "state": "open",
                "pull": pull,
                "created_at": timestamp(),
            }
            self.repos[full_name].issues[number] = issue
            return issue

    def add_comment(self, full_name: str, number: int, body: str, author: str) -> int:
        with self._lock:
            return int(self._new_comment(full_name, number, body, author)["id"])

    def add_pull(
        self,
        full_name: str,
        *,
        head: str,
        base: str,
        title: str,
        body: str = "",
        author: str = "octocat",
        head_repo: str | None = None,
    ) -> int:
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
                subprocess.run(
                    [
                        "git",
                        "-C",
                        str(repo.bare),
                        "fetch",
                        "-q",
                        str(fork.bare),
                        f"refs/heads/{head}:refs/pull/{number}/head",
                    ],
                    check=True,
                    capture_output=True,
                )
            now = timestamp()
            repo.pulls[number] = {
                "number": number,
                "id": next(self._ids),
                "title": title,
                "body": body,
                "head": head,
                "base": base,
                "head_sha": head_sha,
                "base_sha": base_sha,
                "state": "open",
                "draft": False,
                "author": author,
                "reviewers": [],
                "created_at": now,
                "updated_at": now,
                "head_repo": head_repo,
            }
            repo.issues[number] = {
                "number": number,
                "title": title,
                "body": body,
                "author": author,
                "state": "open",
                "pull": True,
                "created_at": now,
            }
            return number

    def add_review(
        self,
        full_name: str,
        number: int,
        *,
        author: str,
        state: str,
        body: str,
        comments: Sequence[tuple[str, int, str]] = (),
    ) -> int:
        """A review by a person, with inline comments (path, line, body) on the new side."""
        with self._lock:
            pr = self.repos[full_name].pulls[number]
            review: dict[str, Any] = {
                "id": next(self._ids),
                "repo": full_name,
                "number": number,
                "body": body,
                "state": state,
                "author": author,
                "commit_id": self.ref_sha(full_name, f"refs/heads/{pr['head']}"),
                "created_at": timestamp(),
            }
            self.reviews[review["id"]] = review
            for path, line, text in comments:
                rc: dict[str, Any] = {
                    "id": next(self._ids),
                    "repo": full_name,
                    "number": number,
                    "review_id": review["id"],
                    "path": path,
                    "line": line,
                    "side": "RIGHT",
                    "body": text,
                    "diff_hunk": "@@",
                    "author": author,
                    "commit_id": review["commit_id"],
                    "created_at": timestamp(),
                }
                self.review_comments[rc["id"]] = rc
            return int(review["id"])

    def add_check_run(
        self, full_name: str, *, head_sha: str, name: str, conclusion: str, output: dict[str, Any]
    ) -> int:
        """A finished check run, as a CI system would report it."""
        with self._lock:
            run: dict[str, Any] = {
                "id": next(self._ids),
                "repo": full_name,
                "name": name,
                "head_sha": head_sha,
                "status": "completed",
                "conclusion": conclusion,
                "output": output,
                "details_url": None,
                "external_id": None,
                "started_at": timestamp(),
                "completed_at": timestamp(),
            }
            self.check_runs[run["id"]] = run
            return int(run["id"])

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        message: str = "Server Error",
    ) -> None:
        with self._lock:
            self._faults.append(
                Fault(
                    method.upper(),
                    re.compile(path_pattern),
                    status,
                    times,
                    dict(headers or {}),
                    message,
                )
            )

    def issue_comments(self, full_name: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [
                c
                for c in self.comments.values()
                if c["repo"] == full_name and c["number"] == number
            ]

    def open_pulls(self, full_name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.repos[full_name].pulls.values() if p["state"] == "open"]

    # -- shapes -----------------------------------------------------------------------

    def user(self, login: str) -> dict[str, Any]:
        kind = "Bot" if login.endswith("[bot]") else "User"
        url = f"{self.base_url}/users/{login}"
        return {
            "login": login,
            "id": abs(hash(login)) % 10**8,
            "node_id": f"U_{login}",
            "avatar_url": f"{self.base_url}/avatars/{login}",
            "gravatar_id": "",
            "url": url,
            "html_url": f"{self.base_url}/{login}",
            "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}",
            "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs",
            "repos_url": f"{url}/repos",
            "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events",
            "type": kind,
            "site_admin": False,
            "user_view_type": "public",
        }

    def _comment_json(self, comment: dict[str, Any]) -> dict[str, Any]:
        repo_url = f"{self.base_url}/repos/{comment['repo']}"
        return {
            "id": comment["id"],
            "node_id": f"IC_{comment['id']}",
            "url": f"{repo_url}/issues/comments/{comment['id']}",
            "html_url": f"{self.base_url}/{comment['repo']}/issues/{comment['number']}"
            f"#issuecomment-{comment['id']}",
            "issue_url": f"{repo_url}/issues/{comment['number']}",
            "body": comment["body"],
            "user": self.user(comment["author"]),
            "created_at": comment["created_at"],
            "updated_at": comment["updated_at"],
            "author_association": "NONE",
        }

    def _new_comment(self, full_name: str, number: int, body: str, author: str) -> dict[str, Any]:
        now = timestamp()
        comment: dict[str, Any] = {
            "id": next(self._ids),
            "repo": full_name,
            "number": number,
            "body": body,
            "author": author,
            "created_at": now,
            "updated_at": now,
        }
        self.comments[comment["id"]] = comment
        return comment

    def check_run_json(self, run: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/repos/{run['repo']}/check-runs/{run['id']}"
        output = run["output"]
        return {
            "id": run["id"],
            "node_id": f"CR_{run['id']}",
            "head_sha": run["head_sha"],
            "name": run["name"],
            "url": url,
            "html_url": f"{self.base_url}/{run['repo']}/runs/{run['id']}",
            "details_url": run["details_url"],
            "status": run["status"],
            "conclusion": run["conclusion"],
            "started_at": run["started_at"],
            "completed_at": run["completed_at"],
            "external_id": run["external_id"],
            "check_suite": {"id": run["id"] + 1},
            "output": {
                "title": output.get("title"),
                "summary": output.get("summary"),
                "text": output.get("text"),
                "annotations_count": len(output.get("annotations") or []),
                "annotations_url": f"{url}/annotations",
            },
            "app": None,
            "pull_requests": [],
        }

    def repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        return shapes.repository(
            self.base_url,
            self.base_url,
            full_name=repo.full_name,
            repo_id=repo.id,
            owner=self.user(repo.owner),
            private=repo.private,
            default_branch=repo.default_branch,
            now=timestamp(),
        )

    def pull_json(self, repo: FakeRepo, pr: dict[str, Any]) -> dict[str, Any]:
        out = shapes.pull_request(
            self.base_url,
            self.base_url,
            full_name=repo.full_name,
            pr=pr,
            repo_json=self.repo_json(repo),
            user=self.user(pr["author"]),
            reviewers=[self.user(r) for r in pr["reviewers"]],
        )
        if pr.get("head_repo"):  # from a fork
            fork = self.repos[pr["head_repo"]]
            out["head"]["repo"] = self.repo_json(fork)
            out["head"]["label"] = f"{fork.owner}:{pr['head']}"
        return out

    def _reaction_json(self, reaction: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": reaction["id"],
            "node_id": f"REA_{reaction['id']}",
            "user": self.user(reaction["user"]),
            "content": reaction["content"],
            "created_at": reaction["created_at"],
        }

    # -- auth -------------------------------------------------------------------------

    def _jwt_ok(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                options={"require": ["iss", "iat", "exp"]},
                leeway=60,
            )
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
        app.state.fake = self  # how the handlers in routes/ find this fake
        app.middleware("http")(self._faults_and_log)
        for methods, path, handler in ROUTES:
            app.add_api_route(path, handler, methods=methods.split(","))
        return app

    async def _faults_and_log(self, request: Request, call_next: Any) -> Response:
        """Records every request, and answers it with an injected fault if one is due."""
        with self._lock:
            self.requests.append((request.method, request.url.path))
            self.user_agents.append(
                (request.method, request.url.path, request.headers.get("user-agent", ""))
            )
            fault = self._due_fault(request)
            if fault is not None:
                return error(fault.status, fault.message, fault.headers)
        response: Response = await call_next(request)
        return response

    def _due_fault(self, request: Request) -> Fault | None:
        for fault in self._faults:
            if (
                fault.remaining > 0
                and fault.method == request.method
                and fault.path.search(request.url.path)
            ):
                fault.remaining -= 1
                return fault
        return None
