"""The fake GitHub's App webhook, through githubkit: every delivery it sends is signed and
logged as GitHub logs it (hook-delivery-item, newest first, cursor pages), and an attempt
asked for again is sent again with the same guid and body."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import RequestFailed

from bot.embedded import ThreadedServer, free_port
from bot.receiver.signature import verify
from tests import github_payloads as gh
from tests.fakes.github import FakeGitHub

SECRET = "hook-secret"


class Endpoint:
    """A webhook endpoint answering each delivery with the next of `codes` (then 202),
    keeping what it was sent."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.app = FastAPI()
        self.app.add_api_route("/webhook", self.hook, methods=["POST"])

    async def hook(self, request: Request) -> Response:
        raw = await request.body()
        with self.lock:
            self.received.append(
                {
                    "guid": request.headers["x-github-delivery"],
                    "event": request.headers["x-github-event"],
                    "signed": verify(raw, request.headers.get("x-hub-signature-256"), [SECRET]),
                    "body": raw,
                }
            )
            code = self.codes.pop(0) if self.codes else 202
        return JSONResponse({"status": "ok"}, status_code=code)


@pytest.fixture
def world() -> Iterator[tuple[FakeGitHub, Endpoint]]:
    fake, endpoint = FakeGitHub(), Endpoint()
    with ThreadedServer(fake.asgi()) as api, ThreadedServer(endpoint.app) as hook:
        fake.base_url = api.url
        fake.configure_webhook(f"{hook.url}/webhook", SECRET)
        yield fake, endpoint
    fake.close()


def as_app(fake: FakeGitHub, app_id: int | None = None) -> GitHub[AppAuthStrategy]:
    return GitHub(
        AppAuthStrategy(app_id or fake.app_id, fake.private_key_pem),
        base_url=fake.base_url,
        auto_retry=False,
        cache_strategy=MemCacheStrategy(),  # JWTs of this fake's key only
    )


def test_sent_deliveries_are_signed_and_listed_as_github_lists_them(
    world: tuple[FakeGitHub, Endpoint],
) -> None:
    fake, endpoint = world
    endpoint.codes = [503]
    first = fake.send_webhook("issue_comment", gh.comment_created("@qwenfix fix"))
    second = fake.send_webhook("issues", gh.labeled())
    assert (first["status_code"], second["status_code"]) == (503, 202)
    assert [r["signed"] for r in endpoint.received] == [True, True]
    assert [r["guid"] for r in endpoint.received] == [first["guid"], second["guid"]]

    github = as_app(fake)
    items = github.rest.apps.list_webhook_deliveries(per_page=100).parsed_data
    assert [i.id for i in items] == [second["id"], first["id"]]  # newest first
    failed = items[1]
    assert (failed.guid, failed.status_code, failed.redelivery) == (first["guid"], 503, False)
    assert (failed.event, failed.action) == ("issue_comment", "created")
    assert failed.installation_id == gh.INSTALLATION["id"]
    assert failed.repository_id == gh.REPO["id"]
    assert failed.status == "Invalid HTTP Response: 503" and items[0].status == "OK"
    assert failed.delivered_at.tzinfo is not None

    stranger = as_app(fake, fake.app_id + 1)
    with pytest.raises(RequestFailed) as refused:
        stranger.rest.apps.list_webhook_deliveries()
    assert refused.value.response.status_code == 401


def test_the_log_pages_by_cursor_through_the_link_header(
    world: tuple[FakeGitHub, Endpoint],
) -> None:
    fake, _ = world
    now = datetime.now(UTC)
    made = [
        fake.webhooks.add(
            "issues", gh.labeled(), status_code=202, delivered_at=now - timedelta(minutes=i)
        )
        for i in range(5)
    ]
    github = as_app(fake)
    first = github.rest.apps.list_webhook_deliveries(per_page=2)
    assert 'rel="next"' in first.headers["link"] and "cursor=" in first.headers["link"]
    every = list(github.rest.paginate(github.rest.apps.list_webhook_deliveries, per_page=2))
    assert [i.id for i in every] == [a["id"] for a in made]  # newest first, all of them
    assert "link" not in github.rest.apps.list_webhook_deliveries(per_page=5).headers
    with pytest.raises(RequestFailed) as bad:
        github.rest.apps.list_webhook_deliveries(cursor="v1_1")
    assert bad.value.response.status_code == 422


def test_a_redelivery_sends_the_same_delivery_again_under_its_guid(
    world: tuple[FakeGitHub, Endpoint],
) -> None:
    fake, endpoint = world
    endpoint.codes = [503]
    failed = fake.send_webhook("issue_comment", gh.comment_created("@qwenfix fix"))
    github = as_app(fake)
    answer = github.rest.apps.redeliver_webhook_delivery(failed["id"])
    assert answer.status_code == 202
    fake.webhooks.settle()
    attempts = fake.webhooks.of(failed["guid"])
    assert [(a["status_code"], a["redelivery"]) for a in attempts] == [(503, False), (202, True)]
    assert attempts[1]["id"] != failed["id"]
    assert endpoint.received[1]["body"] == endpoint.received[0]["body"]
    assert endpoint.received[1]["guid"] == failed["guid"] and endpoint.received[1]["signed"]
    latest = github.rest.apps.list_webhook_deliveries().parsed_data[0]
    assert (latest.guid, latest.redelivery, latest.status_code) == (failed["guid"], True, 202)

    with pytest.raises(RequestFailed) as unknown:
        github.rest.apps.redeliver_webhook_delivery(failed["id"] + 1000)
    assert unknown.value.response.status_code == 404


def test_no_answer_is_status_code_zero(world: tuple[FakeGitHub, Endpoint]) -> None:
    fake, _ = world
    fake.configure_webhook(f"http://127.0.0.1:{free_port()}/webhook", SECRET)  # nobody there
    attempt = fake.send_webhook("issues", gh.labeled())
    assert (attempt["status_code"], attempt["status"]) == (0, "failed to connect")
