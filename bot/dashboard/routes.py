"""The dashboard's pages: jobs, one job (live), its trajectory, its diff, the queues, the
webhook redeliveries.

Server-rendered; each live part is a fragment the page fetches again every two seconds
until the job is finished. Behind the operator token: a login form sets a session cookie
(HttpOnly, SameSite=Strict) that the JSON API accepts too.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from redis.exceptions import RedisError

from bot.contract.db import as_utc
from bot.contract.deliveries import sweep_summary
from bot.contract.job import FINISHED, JobKind, JobStatus
from bot.contract.queues import in_flight, queue_depths, workers_online
from bot.contract.store import JobStore, JobView
from bot.contract.summary import JobSummary, StageView, pull_url, summarise

COOKIE = "qwenfix_session"
STATUSES = (
    *(s.value for s in (JobStatus.QUEUED, JobStatus.ACKNOWLEDGED, JobStatus.RUNNING)),
    *sorted(s.value for s in FINISHED),
)


def session_value(api_token: str) -> str:
    """What the session cookie holds: derived from the token, never the token itself."""
    return hmac.new(api_token.encode(), b"qwenfix dashboard session", hashlib.sha256).hexdigest()


def has_session(request: Request, api_token: str) -> bool:
    return hmac.compare_digest(request.cookies.get(COOKIE, ""), session_value(api_token))


def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def diff_lines(diff: str) -> list[tuple[str, str]]:
    out = []
    for line in diff.splitlines():
        kind = (
            "file"
            if line.startswith(("diff --git", "+++ ", "--- "))
            else "hunk"
            if line.startswith("@@")
            else "add"
            if line.startswith("+")
            else "del"
            if line.startswith("-")
            else ""
        )
        out.append((kind, line))
    return out


def timeline(job: JobView, events: list[Any], summary: JobSummary) -> list[StageView]:
    stages = [
        StageView(
            at=as_utc(job.created_at),
            label="queued",
            detail=f"{job.event}{f' by @{job.sender}' if job.sender else ''}",
        )
    ]
    stages += [StageView(at=as_utc(e.at), label=e.status, detail=e.reason or "") for e in events]
    return sorted(stages + summary.stages, key=lambda s: s.at)


# The routes are closures over the store, counted as one function by mccabe.
def add_dashboard(  # noqa: C901
    app: FastAPI,
    *,
    store: JobStore,
    redis: Any,
    api_token: str,
    queues: list[str],
) -> None:
    env = _templates()

    def page(name: str, request: Request, **context: Any) -> HTMLResponse:
        return HTMLResponse(
            env.get_template(name).render(authed=has_session(request, api_token), **context)
        )

    def guard(request: Request) -> Response | None:
        if has_session(request, api_token):
            return None
        if request.url.path.endswith(("/rows", "/live")):
            return Response("log in again", status_code=401)
        target = urlencode({"next": request.url.path})
        return RedirectResponse(f"/login?{target}", status_code=303)

    async def job_facts(job_id: int) -> dict[str, Any] | None:
        job = await run_in_threadpool(store.get, job_id)
        if job is None:
            return None
        records = await run_in_threadpool(store.records, job_id, 0, 100_000)
        events = await run_in_threadpool(store.events, job_id)
        summary = summarise(records)
        end = as_utc(events[-1].at) if events and job.status in FINISHED else datetime.now(UTC)
        return {
            "job": job,
            "s": summary,
            "finished": job.status in FINISHED,
            "pull": pull_url(job.reason),
            "timeline": timeline(job, events, summary),
            "wall_s": (end - as_utc(job.created_at)).total_seconds(),
        }

    def job_page(template: str) -> Callable[..., Any]:
        async def handler(request: Request, job_id: int) -> Response:
            if (refused := guard(request)) is not None:
                return refused
            facts = await job_facts(job_id)
            if facts is None:
                return HTMLResponse(f"There is no job {job_id}.", status_code=404)
            if template == "diff.html":
                facts["lines"] = diff_lines(facts["s"].diff)
            return page(template, request, **facts)

        return handler

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/jobs", status_code=303)

    @app.get("/login", include_in_schema=False)
    async def login_form(request: Request, next: str = "/jobs") -> Response:
        return page("login.html", request, error=None, next=_safe(next))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        token = (form.get("token") or [""])[0]
        target = _safe((form.get("next") or ["/jobs"])[0])
        if not hmac.compare_digest(token.encode(), api_token.encode()):
            refused = page(
                "login.html", request, error="That is not the operator token.", next=target
            )
            refused.status_code = 401
            return refused
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            session_value(api_token),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=12 * 3600,
        )
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def jobs_context(
        repo: str | None, kind: str | None, status: str | None
    ) -> dict[str, Any]:
        jobs = await run_in_threadpool(
            store.find, repo=repo or None, kind=kind or None, status=status or None, limit=200
        )
        query = urlencode(
            {k: v for k, v in (("repo", repo), ("kind", kind), ("status", status)) if v}
        )
        return {
            "jobs": jobs,
            "repo": repo,
            "kind": kind,
            "status": status,
            "query": query,
            "kinds": [k.value for k in JobKind],
            "statuses": STATUSES,
            "filtered": bool(query),
        }

    @app.get("/jobs", include_in_schema=False)
    async def jobs_page(
        request: Request,
        repo: str | None = None,
        kind: str | None = None,
        status: str | None = None,
    ) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        return page("jobs.html", request, **await jobs_context(repo, kind, status))

    @app.get("/jobs/rows", include_in_schema=False)
    async def jobs_rows(
        request: Request,
        repo: str | None = None,
        kind: str | None = None,
        status: str | None = None,
    ) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        return page("job_rows.html", request, **await jobs_context(repo, kind, status))

    app.get("/jobs/{job_id}", include_in_schema=False)(job_page("job.html"))
    app.get("/jobs/{job_id}/live", include_in_schema=False)(job_page("job_live.html"))
    app.get("/jobs/{job_id}/trajectory", include_in_schema=False)(job_page("trajectory.html"))
    app.get("/jobs/{job_id}/trajectory/live", include_in_schema=False)(
        job_page("trajectory_live.html")
    )
    app.get("/jobs/{job_id}/diff", include_in_schema=False)(job_page("diff.html"))

    async def queues_context() -> dict[str, Any]:
        running = [
            j
            for status in ("running", "acknowledged")
            for j in await run_in_threadpool(store.find, status=status, limit=200)
        ]
        return {
            "depths": await queue_depths(redis, queues),
            "running": running,
            "taken": await in_flight(redis, queues),
            "workers": await workers_online(redis),
            "now": time.time(),
        }

    @app.get("/queues", include_in_schema=False)
    async def queues_page(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        return page("queues.html", request, **await queues_context())

    @app.get("/queues/live", include_in_schema=False)
    async def queues_live(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        return page("queues_live.html", request, **await queues_context())

    @app.get("/deliveries", include_in_schema=False)
    async def deliveries_page(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        try:
            runs, asked = await sweep_summary(redis)
        except RedisError as exc:  # the page still says what it would show
            return page(
                "deliveries.html", request, runs=[], asked=[], error=f"Redis unavailable: {exc}"
            )
        return page("deliveries.html", request, runs=runs, asked=asked, error=None)


def _safe(target: str) -> str:
    """Only a path on this site: never an open redirect."""
    return target if target.startswith("/") and not target.startswith("//") else "/jobs"
