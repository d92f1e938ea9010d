"""The redelivery sweep against the fake GitHub's delivery log, a real receiver and a
Redis of the test's own: only deliveries none of whose attempts succeeded are asked for,
within the window, once per interval, pages followed until the window ends; GitHub away
stops a sweep without an error; and deliveries refused while Redis was down each end up
with exactly one job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from githubkit import AppAuthStrategy, GitHub
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.contract.db import Job
from bot.contract.deliveries import (
    ASKED_KEY,
    DELIVERY_PREFIX,
    GUARD_PREFIX,
    PAUSE_KEY,
    RUNS_KEY,
    SUMMARY_TTL_S,
    SweepRun,
)
from bot.contract.job import JobKind, Trigger
from bot.contract.store import JobStore
from bot.embedded import ThreadedServer, free_port
from bot.receiver.app import create_app
from bot.serve import build_receiver
from bot.settings import BotSettings
from tests import github_payloads as gh
from tests.fakes.github import FakeGitHub
from tests.helpers import wait_for
from tests.integration.test_redis_restart import PrivateRedis
from workers.github.app_auth import AppCredentials, GitHubApp
from workers.runtime.deps import Deps
from workers.runtime.metrics import RedeliveryMetrics, WorkerMetrics
from workers.runtime.redeliver import Sweep, SweepLimits
from workers.settings import WorkerSettings

SECRET = "redeliver-secret"
WINDOW_S = 71 * 3600
ATTEMPTS = "/app/hook/deliveries/{}/attempts"


@dataclass
class World:
    fake: FakeGitHub
    server: PrivateRedis
    client: redis.Redis
    store: JobStore
    receiver_url: str
    github: GitHub[AppAuthStrategy]
    registry: CollectorRegistry
    metrics: RedeliveryMetrics

    def sweep(self, interval_s: int = 3600, max_pages: int = 50) -> SweepRun:
        limits = SweepLimits(
            window_s=WINDOW_S, interval_s=interval_s, max_pages=max_pages, max_requests=500
        )
        return Sweep(
            github=self.github,
            client=self.client,
            jobs=self.store,
            limits=limits,
            metrics=self.metrics,
        ).run(datetime.now(UTC))

    def asked(self) -> list[int]:
        """The attempt ids the sweep asked GitHub to redeliver, in order."""
        return [
            int(path.split("/")[4])
            for method, path in self.fake.requests
            if method == "POST" and path.endswith("/attempts")
        ]

    def listed_pages(self) -> int:
        return self.fake.requests.count(("GET", "/app/hook/deliveries"))

    def counter(self, name: str) -> float:
        return self.registry.get_sample_value(name) or 0.0


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    server = PrivateRedis(tmp_path)
    server.start()
    settings = BotSettings(
        webhook_secret=[SECRET],
        api_token="t",  # type: ignore[arg-type]
        redis_url=server.url,
        database_url=f"sqlite:///{tmp_path / 'jobs.db'}",
        claim_ttl_s=2,
        dependency_timeout_s=1,
    )
    receiver = build_receiver(settings)
    fake = FakeGitHub()
    registry = CollectorRegistry()
    client = redis.Redis.from_url(server.url)
    try:
        with ThreadedServer(fake.asgi()) as api, ThreadedServer(create_app(receiver)) as hook:
            fake.base_url = api.url
            fake.configure_webhook(f"{hook.url}/webhook", SECRET)
            app = GitHubApp(
                AppCredentials(
                    app_id=fake.app_id,
                    private_key=SecretStr(fake.private_key_pem),
                    api_url=api.url,
                )
            )
            yield World(
                fake=fake,
                server=server,
                client=client,
                store=receiver.store,
                receiver_url=hook.url,
                github=app.as_app(),
                registry=registry,
                metrics=RedeliveryMetrics(registry),
            )
    finally:
        client.close()
        fake.close()
        server.kill()


def comment() -> dict[str, Any]:
    return gh.comment_created("@qwenfix fix")


def failed(world: World, minutes_ago: float, code: int = 503, guid: str | None = None) -> int:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    attempt = world.fake.webhooks.add(
        "issue_comment", comment(), status_code=code, delivered_at=at, guid=guid
    )
    return int(attempt["id"])


def test_only_deliveries_that_never_succeeded_are_asked_for_once_per_interval(
    world: World,
) -> None:
    log = world.fake.webhooks
    now = datetime.now(UTC)
    plain = failed(world, 10)
    timed_out = failed(world, 20, code=0)
    # Failed, then delivered: the receiver has it.
    failed(world, 30, guid="recovered")
    log.add("issue_comment", comment(), status_code=202, delivered_at=now, guid="recovered")
    # Delivered, then a redelivery someone asked for failed: handled all the same.
    log.add(
        "issues", gh.labeled(), status_code=200, delivered_at=now - timedelta(hours=1), guid="ok"
    )
    failed(world, 5, guid="ok")
    log.add("issues", gh.labeled(), status_code=202, delivered_at=now)
    # Too old to be redelivered.
    failed(world, 3 * 24 * 60 + 60)
    # Failed as GitHub saw it, yet the receiver has a job for it (the 202 was lost).
    failed(world, 15, guid="has-a-job")
    trigger = Trigger(kind=JobKind.FIX, repo="o/r", number=1, sender="octocat", installation_id=1)
    world.store.create("has-a-job", "issue_comment", trigger)
    failed(world, 16, guid="noted")
    world.client.set(DELIVERY_PREFIX + "noted", "77")
    # The receiver is away now: every redelivery fails again (no answer).
    world.fake.configure_webhook(f"http://127.0.0.1:{free_port()}/webhook", SECRET)

    first = world.sweep(interval_s=2)
    assert (first.deliveries, first.failed, first.known) == (7, 4, 2)
    assert (first.requested, first.request_failed, first.error) == (2, 0, None)
    assert world.asked() == [timed_out, plain]  # oldest first
    log.settle()
    again = {guid: log.of(guid)[-1]["id"] for guid in (log.guid_of(timed_out), log.guid_of(plain))}

    # Within the interval: not asked again, though the redeliveries failed too.
    second = world.sweep(interval_s=2)
    assert (second.failed, second.recent, second.requested) == (4, 2, 0)
    assert len(world.asked()) == 2

    # After it: asked again, for the latest attempt of each.
    time.sleep(2.2)
    third = world.sweep(interval_s=2)
    assert third.requested == 2
    assert world.asked()[2:] == list(again.values())
    assert world.counter("qwenfix_redeliveries_requested_total") == 4
    assert (
        world.registry.get_sample_value(
            "qwenfix_webhook_deliveries_seen_total", {"state": "failed"}
        )
        == 12
    )


def test_pages_are_followed_until_the_window_ends(world: World) -> None:
    log, now = world.fake.webhooks, datetime.now(UTC)
    for i in range(150):
        log.add("issues", gh.labeled(), status_code=202, delivered_at=now - timedelta(seconds=i))
    on_page_two = failed(world, 60)
    for i in range(150):  # older than the window: never listed, never asked for
        failed(world, WINDOW_S / 60 + 10 + i)

    short = world.sweep(max_pages=1)  # the page limit: said so, nothing wrongly asked
    assert (short.pages, short.complete, short.failed, short.requested) == (1, False, 0, 0)
    run = world.sweep()
    assert (run.pages, run.deliveries, run.failed, run.requested) == (2, 151, 1, 1)
    assert run.complete
    assert world.listed_pages() == 3
    assert world.asked() == [on_page_two]
    log.settle()
    assert [a["status_code"] for a in log.of(log.guid_of(on_page_two))] == [503, 202]


def test_github_away_or_refusing_stops_a_sweep_without_raising(world: World) -> None:
    client = world.client
    world.fake.fail_next("GET", r"^/app/hook/deliveries$", 502)
    down = world.sweep()
    assert down.error == "listing deliveries: GitHub answered 502" and down.requested == 0

    nowhere = GitHubApp(
        AppCredentials(
            app_id=world.fake.app_id,
            private_key=SecretStr(world.fake.private_key_pem),
            api_url=f"http://127.0.0.1:{free_port()}",
        )
    ).as_app()
    unreachable = Sweep(
        github=nowhere,
        client=client,
        jobs=world.store,
        limits=SweepLimits(window_s=WINDOW_S, interval_s=60, max_pages=5, max_requests=5),
    ).run(datetime.now(UTC))
    assert unreachable.error and unreachable.error.startswith("listing deliveries: RequestError")

    # A delivery GitHub will not redeliver (gone): asked, refused, the others still asked.
    gone, kept = failed(world, 30), failed(world, 20)
    world.fake.fail_next("POST", ATTEMPTS.format(gone) + "$", 404, message="Not Found")
    refused = world.sweep()
    assert (refused.request_failed, refused.requested, refused.error) == (1, 1, None)
    assert world.asked() == [gone, kept]
    world.fake.webhooks.settle()

    # Rate limited: the delivery was not asked for after all, and no sweep asks GitHub
    # anything until the retry-after has passed.
    limited = failed(world, 10)
    world.fake.fail_next(
        "POST", r"/attempts$", 403, headers={"retry-after": "30"}, message="secondary rate limit"
    )
    paused = world.sweep()
    assert paused.error == "asking for a redelivery: rate limited by GitHub for 30s"
    assert (paused.requested, paused.request_failed) == (0, 1)
    assert not client.exists(GUARD_PREFIX + world.fake.webhooks.guid_of(limited))
    assert 0 < int(client.ttl(PAUSE_KEY)) <= 30  # type: ignore[arg-type]
    pages = world.listed_pages()
    waiting = world.sweep()
    assert waiting.error and waiting.error.startswith("GitHub asked to wait")
    assert world.listed_pages() == pages

    client.delete(PAUSE_KEY)
    resumed = world.sweep()
    assert (resumed.requested, resumed.error) == (1, None)
    assert world.asked()[-1] == limited
    assert [r.error is None for r in runs(client)] == [True, False, False, True, False, False]


def runs(client: redis.Redis) -> list[SweepRun]:
    return [SweepRun.model_validate_json(raw) for raw in client.lrange(RUNS_KEY, 0, -1)]  # type: ignore[union-attr]


def test_deliveries_refused_while_redis_was_down_each_get_one_job(world: World) -> None:
    world.server.kill()
    sent = [world.fake.send_webhook("issue_comment", comment()) for _ in range(4)]
    assert [a["status_code"] for a in sent] == [503] * 4
    world.server.start()
    wait_for(
        lambda: httpx.get(f"{world.receiver_url}/readyz", timeout=5).status_code == 200,
        "the receiver to reach Redis again",
        timeout=30,
    )

    run = world.sweep()
    assert (run.failed, run.requested, run.error) == (4, 4, None)
    world.fake.webhooks.settle()
    guids = {a["guid"] for a in sent}
    for guid in guids:
        assert [a["status_code"] for a in world.fake.webhooks.of(guid)] == [503, 202]
        assert world.store.by_delivery(guid) is not None
    with world.store.engine.connect() as connection:
        per_delivery = dict(
            connection.execute(
                select(Job.delivery_id, func.count()).group_by(Job.delivery_id)
            ).all()
        )
    assert per_delivery == dict.fromkeys(guids, 1)

    again = world.sweep()
    assert (again.deliveries, again.failed, again.requested) == (4, 0, 0)
    assert len(world.asked()) == 4


def test_the_dashboard_shows_the_last_sweeps(world: World) -> None:
    with httpx.Client(base_url=world.receiver_url, timeout=10) as browser:
        anonymous = browser.get("/deliveries")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/login?next=%2Fdeliveries"
        login = browser.post(
            "/login",
            content="token=t&next=%2Fdeliveries",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert login.status_code == 303
        empty = browser.get("/deliveries")
        assert empty.status_code == 200 and "No sweep has run in the last week." in empty.text
        assert 'href="/deliveries"' in browser.get("/jobs").text

        asked = failed(world, 10, code=502, guid="guid-<b>-asked")
        world.sweep()
        world.fake.webhooks.settle()
        world.sweep()
        page = browser.get("/deliveries").text
        # The newest sweep first: it found the delivery redelivered and asked nothing.
        assert 'id="requested">0<' in page and 'id="seen">1<' in page
        assert 'id="last-error"' not in page
        assert page.count('<tr><td class="muted">') == 3  # two sweeps, one delivery asked for
        assert "guid-&lt;b&gt;-asked" in page and "<b>" not in page.split("<main>")[1]
        assert f"<td>{asked}</td><td>502</td>" in page and "issue_comment.created" in page

        world.fake.fail_next("GET", r"^/app/hook/deliveries$", 502)
        world.sweep()
        stopped = browser.get("/deliveries").text
        assert "Stopped early: listing deliveries: GitHub answered 502" in stopped
    assert 0 < int(world.client.ttl(ASKED_KEY)) <= SUMMARY_TTL_S  # type: ignore[arg-type]
    assert 0 < int(world.client.ttl(RUNS_KEY)) <= SUMMARY_TTL_S  # type: ignore[arg-type]


def test_the_celery_task_sweeps_with_the_workers_deps(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from workers.runtime import tasks

    settings = WorkerSettings(
        redis_url=world.server.url,
        database_url=f"sqlite:///{tmp_path / 'jobs.db'}",
        github_api_url=world.fake.base_url,
    )
    app = GitHubApp(
        AppCredentials(
            app_id=world.fake.app_id,
            private_key=SecretStr(world.fake.private_key_pem),
            api_url=world.fake.base_url,
        )
    )
    metrics = WorkerMetrics()
    deps = Deps(
        settings=settings, jobs=world.store, github=app, redis=world.client, metrics=metrics
    )
    monkeypatch.setattr(tasks.app, "qwenfix_deps", deps, raising=False)
    asked = failed(world, 10)

    assert tasks.redeliver(beat="test") == 1
    assert world.asked() == [asked]
    world.fake.webhooks.settle()
    world.fake.fail_next("GET", r"^/app/hook/deliveries$", 503, times=5)
    assert tasks.redeliver(beat="test") == 0  # GitHub away: nothing raised
    sweeps = metrics.registry.get_sample_value
    assert sweeps("qwenfix_redelivery_sweeps_total", {"result": "complete"}) == 1
    assert sweeps("qwenfix_redelivery_sweeps_total", {"result": "stopped"}) == 1
    assert sweeps("qwenfix_redeliveries_requested_total") == 1
