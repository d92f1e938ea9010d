"""The redelivery sweep: ask GitHub again for the webhook deliveries the receiver could not
take (answered 503 while Redis or the database was away, or never answered).

GitHub does not redeliver a failed delivery by itself, and keeps deliveries for three
days. So, on beat's schedule, a worker lists the App's recent delivery attempts (newest
first, no further back than the window), groups them by guid, and asks for each delivery
none of whose attempts succeeded — unless the receiver has a job for it all the same
(a 202 lost on the way back) or it was asked for within the interval (a Redis `SET NX EX`
per guid, so neither two sweeps at once nor a redelivery GitHub has not made yet lead to
a second request). A sweep that cannot reach GitHub stops, says why in its summary, and
the next one starts over: nothing is lost by stopping early.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from githubkit import AppAuthStrategy, GitHub
from githubkit.exception import GitHubException, RateLimitExceeded, RequestFailed
from sqlalchemy.exc import SQLAlchemyError

from bot.contract.deliveries import (
    ASKED_KEPT,
    ASKED_KEY,
    DELIVERY_PREFIX,
    GUARD_PREFIX,
    PAUSE_KEY,
    RUNS_KEPT,
    RUNS_KEY,
    SUMMARY_TTL_S,
    Redelivery,
    SweepRun,
)
from bot.contract.store import JobStore
from workers.github.hook_deliveries import Attempt, recent_attempts, redeliver
from workers.runtime.metrics import RedeliveryMetrics
from workers.runtime.retry import transient_delay
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepLimits:
    window_s: int
    interval_s: int
    max_pages: int
    max_requests: int

    @classmethod
    def of(cls, settings: WorkerSettings) -> SweepLimits:
        return cls(
            window_s=settings.redeliver_window_s,
            interval_s=settings.redeliver_interval_s,
            max_pages=settings.redeliver_max_pages,
            max_requests=settings.redeliver_max_requests,
        )


def needing_redelivery(attempts: list[Attempt]) -> list[Attempt]:
    """The latest attempt of each delivery none of whose attempts succeeded, oldest first
    (the nearest to leaving GitHub's retention go first when a sweep's budget runs out).
    Any answer but a 2xx counts as failed, a 401 too: after a secret rotated on one side
    only, the deliveries are worth having once the secret is fixed."""
    by_guid: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        by_guid.setdefault(attempt.guid, []).append(attempt)
    latest = [
        max(tries, key=lambda a: (a.delivered_at, a.id))
        for tries in by_guid.values()
        if not any(a.succeeded for a in tries)
    ]
    return sorted(latest, key=lambda a: (a.delivered_at, a.id))


def handled(client: redis.Redis, jobs: JobStore, guid: str) -> bool:
    """Whether the receiver has this delivery: a job noted on its key, a claim being
    handled right now (a redelivery would be answered 503 until it is done or expires),
    or a job row whose note was lost."""
    if client.get(DELIVERY_PREFIX + guid) is not None:
        return True
    return jobs.by_delivery(guid) is not None


def describe(exc: GitHubException) -> str:
    if isinstance(exc, RateLimitExceeded):
        return f"rate limited by GitHub for {exc.retry_after.total_seconds():.0f}s"
    if isinstance(exc, RequestFailed):
        return f"GitHub answered {exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}"


class Sweep:
    """One sweep's collaborators; `run` may be called again (each call is one sweep)."""

    def __init__(
        self,
        *,
        github: GitHub[AppAuthStrategy],
        client: redis.Redis,
        jobs: JobStore,
        limits: SweepLimits,
        metrics: RedeliveryMetrics | None = None,
    ) -> None:
        self.github, self.client, self.jobs = github, client, jobs
        self.limits, self.metrics = limits, metrics

    def run(self, now: datetime) -> SweepRun:
        """Never raises for GitHub, Redis or the database being away: the summary (and
        the log) say why the sweep stopped, and the next one starts over."""
        started = time.monotonic()
        report = SweepRun(at=now)
        asked: list[Redelivery] = []  # kept when the sweep stops half-way
        try:
            self._sweep(now, report, asked)
        except GitHubException as exc:
            report.error = f"listing deliveries: {describe(exc)}"
            self._pause_for(exc)
        except (redis.RedisError, SQLAlchemyError) as exc:
            report.error = f"{type(exc).__name__}: {exc}"
        report.took_s = round(time.monotonic() - started, 3)
        if report.error:
            log.warning("redelivery sweep stopped early: %s", report.error)
        log.info(
            "redelivery sweep: %d deliveries in %d attempt(s) over %d page(s); %d failed, "
            "%d asked for again, %d not (refused), %d handled meanwhile, %d asked for recently",
            report.deliveries,
            report.attempts,
            report.pages,
            report.failed,
            report.requested,
            report.request_failed,
            report.known,
            report.recent,
        )
        if self.metrics is not None:
            self.metrics.observe(report)
        try:
            self._record(report, asked)
        except redis.RedisError as exc:
            log.warning("could not record the sweep's summary: %s", exc)
        return report

    def _sweep(self, now: datetime, report: SweepRun, asked: list[Redelivery]) -> None:
        paused_ms = int(self.client.pttl(PAUSE_KEY))  # type: ignore[arg-type]
        if paused_ms > 0:
            report.error = f"GitHub asked to wait; {paused_ms / 1000:.0f}s to go"
            return
        since = now - timedelta(seconds=self.limits.window_s)
        listing = recent_attempts(self.github, since, self.limits.max_pages)
        report.pages, report.complete = listing.pages, listing.complete
        report.attempts = len(listing.attempts)
        report.deliveries = len({a.guid for a in listing.attempts})
        failed = needing_redelivery(listing.attempts)
        report.failed = len(failed)
        for attempt in failed:
            if report.requested + report.request_failed >= self.limits.max_requests:
                log.info("redelivery sweep: %d asked for; the rest wait", len(asked))
                break
            if handled(self.client, self.jobs, attempt.guid):
                report.known += 1
                continue
            guard = GUARD_PREFIX + attempt.guid
            if not self.client.set(guard, attempt.id, nx=True, ex=self.limits.interval_s):
                report.recent += 1
                continue
            try:
                redeliver(self.github, attempt.id)
            except GitHubException as exc:
                report.request_failed += 1
                asked.append(self._entry(now, attempt, describe(exc)))
                if transient_delay(exc, 0) is None:
                    continue  # refused for this delivery (gone, too old): asked, done
                # Not asked after all: the next sweep does it. Nor anything else now.
                self.client.delete(guard)
                self._pause_for(exc)
                report.error = f"asking for a redelivery: {describe(exc)}"
                return
            report.requested += 1
            asked.append(self._entry(now, attempt, "requested"))

    def _pause_for(self, exc: GitHubException) -> None:
        """Honour a rate limit's retry-after across sweeps: until it passes, a sweep asks
        GitHub nothing."""
        if isinstance(exc, RateLimitExceeded):
            wait = max(1, int(exc.retry_after.total_seconds()))
            try:
                self.client.set(PAUSE_KEY, "1", ex=wait)
            except redis.RedisError as lost:
                log.warning("could not note GitHub's retry-after: %s", lost)

    @staticmethod
    def _entry(now: datetime, attempt: Attempt, outcome: str) -> Redelivery:
        return Redelivery(
            at=now,
            guid=attempt.guid,
            delivery_id=attempt.id,
            event=attempt.event,
            action=attempt.action,
            status_code=attempt.status_code,
            delivered_at=attempt.delivered_at,
            outcome=outcome,
        )

    def _record(self, report: SweepRun, asked: list[Redelivery]) -> None:
        """The dashboard's view: the last runs and what they asked for, bounded and
        expiring."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.lpush(RUNS_KEY, report.model_dump_json())
            pipe.ltrim(RUNS_KEY, 0, RUNS_KEPT - 1)
            pipe.expire(RUNS_KEY, SUMMARY_TTL_S)
            if asked:
                # Pushed oldest first, so the list reads newest first.
                pipe.lpush(ASKED_KEY, *(item.model_dump_json() for item in asked))
                pipe.ltrim(ASKED_KEY, 0, ASKED_KEPT - 1)
                pipe.expire(ASKED_KEY, SUMMARY_TTL_S)
            pipe.execute()
