"""The webhook receiver: verify, decide, enqueue — nothing slow in the request.

A 2xx means the delivery is handled: the job is recorded and queued, or the delivery is
deliberately ignored. When Redis or the database cannot be reached the answer is 503, so
GitHub records a failed delivery that can be redelivered; nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.contract.job import Record, Trigger
from bot.contract.logs import DELIVERY
from bot.contract.queues import queue_depths
from bot.contract.schedules import ScheduleStore
from bot.contract.store import JobStore
from bot.dashboard.routes import add_dashboard, has_session
from bot.receiver.enqueue import JobQueue
from bot.receiver.job_writer import JobWriter
from bot.receiver.ledger import DeliveryLedger
from bot.receiver.metrics import ReceiverMetrics
from bot.receiver.routing import ROUTES, ConfigChanged, Ignored, route
from bot.receiver.signature import verify
from bot.settings import BotSettings

log = logging.getLogger("qwenfix.webhook")
KNOWN_EVENTS = frozenset(event for event, _ in ROUTES)
# What a broken dependency raises: the delivery is refused with 503, never lost.
UNAVAILABLE = (RedisError, SQLAlchemyError, OSError)


@dataclass
class Receiver:
    settings: BotSettings
    store: JobStore
    ledger: DeliveryLedger
    queue: JobQueue
    metrics: ReceiverMetrics
    schedules: ScheduleStore | None = None
    writer: JobWriter | None = None


def _answer(code: int, /, **body: Any) -> Response:
    return Response(orjson.dumps(body), status_code=code, media_type="application/json")


class ReceiverApp(FastAPI):
    """FastAPI, except that `POST /webhook` goes straight to its handler. Deliveries are
    most of the traffic, and the middleware stack (error pages, exception handlers, exit
    stacks, routing) cost a third as much again as the delivery's own work; the handler
    answers every outcome itself, and uvicorn still turns an unexpected error into 500."""

    webhook: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.webhook is None or scope["type"] != "http" or scope["path"] != "/webhook":
            await super().__call__(scope, receive, send)
        elif scope["method"] == "POST":
            await self.webhook(scope, receive, send)
        else:
            await PlainTextResponse(
                "Method Not Allowed", status_code=405, headers={"Allow": "POST"}
            )(scope, receive, send)


class ClientGone(Exception):
    """The sender hung up before its body arrived: there is no one to answer."""


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None past `limit` bytes."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def create_app(receiver: Receiver) -> FastAPI:  # noqa: C901 (its routes are closures)
    settings = receiver.settings
    secrets = [s.get_secret_value() for s in settings.webhook_secret]
    api_token = settings.api_token.get_secret_value()
    schedules = receiver.schedules or ScheduleStore(receiver.store.engine)
    writer = receiver.writer or JobWriter(receiver.store)
    queues = [settings.quick_queue, settings.agent_queue]
    app = ReceiverApp(title="qwenfix", version="0.1.0")

    async def webhook(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = Headers(scope=scope)
        event = headers.get("x-github-event", "")
        label = event if event in KNOWN_EVENTS else "other"
        try:
            response, outcome = await handle(headers, receive, event)
        except ClientGone:
            receiver.metrics.observe(label, "disconnected", time.perf_counter() - started)
            return
        receiver.metrics.observe(label, outcome, time.perf_counter() - started)
        await response(scope, receive, send)

    app.webhook = webhook

    async def handle(headers: Headers, receive: Receive, event: str) -> tuple[Response, str]:
        delivery = headers.get("x-github-delivery", "")
        DELIVERY.set(delivery or None)  # every log line of this delivery carries its id
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
            return _answer(413, error="payload too large"), "too_large"
        raw = await read_body(receive, settings.max_body_bytes)
        if raw is None:
            return _answer(413, error="payload too large"), "too_large"
        if not verify(raw, headers.get("x-hub-signature-256"), secrets):
            log.warning("refused: missing or wrong signature")
            return _answer(401, error="missing or invalid X-Hub-Signature-256"), "unsigned"
        if not event or not delivery:
            return _answer(400, error="missing X-GitHub-Event or X-GitHub-Delivery"), "malformed"
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _answer(400, error="the body is not JSON"), "malformed"
        if not isinstance(payload, dict):
            return _answer(400, error="the body is not a JSON object"), "malformed"

        decision = route(event, payload, settings)
        if isinstance(decision, Ignored):
            log.info("%s: %s", event, decision.reason)
            return _answer(200, status="ignored", reason=decision.reason), "ignored"
        try:
            if isinstance(decision, Record):
                await receiver.store.run(receiver.store.record_installation, decision)
                log.info("installation %s %s", decision.installation_id, decision.action)
                return _answer(200, status="recorded"), "recorded"
            if isinstance(decision, ConfigChanged):
                # On the store's own thread: SQLite writes take turns there.
                await receiver.store.run(schedules.mark_stale, decision.repo)
                log.info("%s: the config changed; its schedule will be read again", decision.repo)
                return _answer(200, status="recorded"), "recorded"
            # One deadline for the whole exchange with Redis and the database (cheaper than
            # a timer per command); TimeoutError is an OSError: a 503, as below.
            async with asyncio.timeout(settings.dependency_timeout_s):
                return await queue_job(delivery, event, decision)
        except UNAVAILABLE as exc:
            log.error("dependency unavailable: %s: %s", type(exc).__name__, exc)
            return _answer(
                503, error="temporarily unable to record the delivery; redeliver it later"
            ), "unavailable"

    async def queue_job(delivery: str, event: str, trigger: Trigger) -> tuple[Response, str]:
        if not await receiver.ledger.claim(delivery):
            earlier = await receiver.ledger.job_of(delivery)
            if earlier is None:  # claimed a moment ago, or by a receiver before this one
                existing = await receiver.store.run(receiver.store.by_delivery, delivery)
                earlier = existing.id if existing else None
            if earlier is None:
                # Claimed, and no job yet: another request is handling it, or one died
                # half-way. Not a 2xx: GitHub keeps it failed, so a redelivery can follow.
                return _answer(
                    503, error="this delivery is being handled; redeliver it if no job appears"
                ), "in_flight"
            return _answer(200, status="duplicate", job_id=earlier), "duplicate"
        created = False
        job_id: int | None = None
        try:
            job_id, created = await writer.create(delivery, event, trigger)
            await receiver.queue.enqueue(job_id)
        except UNAVAILABLE:
            # Undo what was done, so that GitHub's redelivery starts from scratch. Each
            # step on its own: with Redis gone the claim stays until it expires, and the
            # job row must go regardless.
            if created and job_id is not None:
                try:
                    await receiver.store.run(receiver.store.discard, job_id)
                except UNAVAILABLE:
                    log.exception(
                        "could not discard job %s of a half-recorded delivery; "
                        "the requeue sweep will send it",
                        job_id,
                    )
            try:
                await receiver.ledger.release(delivery)
            except UNAVAILABLE as exc:
                log.warning(
                    "could not release the claim (%s); a redelivery is accepted once it expires",
                    type(exc).__name__,
                )
            raise
        # Only once the message is queued: a note whose outcome is unknown (Redis gone
        # mid-reply) must never name a job the undo above then discards. Without the note
        # a redelivery still finds the job, by its delivery id.
        try:
            await receiver.ledger.remember(delivery, job_id)
        except UNAVAILABLE as exc:
            log.warning(
                "job %s is queued but its delivery could not be noted (%s); a "
                "redelivery finds it by its delivery id",
                job_id,
                type(exc).__name__,
            )
        # Debug: at thousands a second this line would cost more than the delivery; the
        # job itself is in the jobs API and the dashboard.
        log.debug(
            "queued job %s: %s on %s#%s by %s",
            job_id,
            trigger.kind.value,
            trigger.repo,
            trigger.number,
            trigger.sender,
        )
        return _answer(202, status="queued", job_id=job_id, kind=trigger.kind.value), "queued"

    def authorised(request: Request) -> bool:
        """The bearer token, or the dashboard's session cookie."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return (
            scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), api_token.encode())
        ) or has_session(request, api_token)

    def unauthorised() -> JSONResponse:
        return JSONResponse(
            {"error": "a valid bearer token is required"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.get("/api/jobs")
    async def list_jobs(
        request: Request,
        repo: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Response:
        if not authorised(request):
            return unauthorised()
        jobs = await run_in_threadpool(
            receiver.store.find,
            repo=repo,
            kind=kind,
            status=status,
            limit=max(1, min(limit, 1000)),
            offset=max(0, offset),
        )
        return JSONResponse([json.loads(j.model_dump_json()) for j in jobs])

    @app.get("/api/jobs/{job_id}")
    async def get_job(request: Request, job_id: int) -> Response:
        if not authorised(request):
            return unauthorised()
        job = await run_in_threadpool(receiver.store.get, job_id)
        if job is None:
            return JSONResponse({"error": f"no job {job_id}"}, status_code=404)
        return JSONResponse(json.loads(job.model_dump_json()))

    @app.get("/api/jobs/{job_id}/records")
    async def job_records(
        request: Request, job_id: int, after: int = 0, limit: int = 500
    ) -> Response:
        """The job's trajectory records after id `after` (poll with the last id seen)."""
        if not authorised(request):
            return unauthorised()
        records = await run_in_threadpool(
            receiver.store.records, job_id, max(0, after), max(1, min(limit, 5000))
        )
        return JSONResponse([r.model_dump() for r in records])

    @app.get("/api/schedules")
    async def list_schedules(request: Request) -> Response:
        """Each repository's maintenance schedule as last read, with any config error."""
        if not authorised(request):
            return unauthorised()
        rows = await run_in_threadpool(schedules.all)
        return JSONResponse(
            [
                {
                    **json.loads(r.model_dump_json(exclude={"tasks"})),
                    "tasks": json.loads(r.tasks) if r.tasks else None,
                }
                for r in rows
            ]
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        problems = {}
        try:
            await receiver.ledger.ping()
        except UNAVAILABLE as exc:
            problems["redis"] = f"{type(exc).__name__}: {exc}"
        try:
            await run_in_threadpool(receiver.store.ping)
        except UNAVAILABLE as exc:
            problems["database"] = f"{type(exc).__name__}: {exc}"
        if problems:
            return JSONResponse({"status": "unavailable", **problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def metrics() -> Response:
        try:
            receiver.metrics.set_queue_depths(await queue_depths(receiver.ledger.client, queues))
            receiver.metrics.set_job_counts(await receiver.store.run(receiver.store.counts))
        except UNAVAILABLE as exc:  # the delivery metrics are still worth answering
            log.warning("metrics: %s: %s", type(exc).__name__, exc)
        return Response(
            receiver.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    add_dashboard(
        app, store=receiver.store, redis=receiver.ledger.client, api_token=api_token, queues=queues
    )
    return app
