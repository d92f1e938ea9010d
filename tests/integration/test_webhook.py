"""The webhook receiver over real HTTP, with real Redis (dedup and Celery's broker) and a
real SQLite database. GitHub itself is the only part played by the test."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from bot.contract.db import make_engine, migrate
from bot.contract.store import JobStore
from bot.embedded import ThreadedServer, free_port
from bot.receiver.app import Receiver, create_app
from bot.receiver.enqueue import RedisJobQueue
from bot.receiver.ledger import PREFIX, DeliveryLedger
from bot.receiver.metrics import ReceiverMetrics
from bot.receiver.signature import sign, verify
from bot.settings import BotSettings
from tests import github_payloads as gh
from tests.conftest import fresh_redis

SECRET = "s3cret-for-tests"
TOKEN = "operator-token"
REDIS_DB = 13


@pytest.fixture(scope="session")
def redis_url() -> str:
    return fresh_redis(REDIS_DB)[0]


@dataclass
class Running:
    url: str
    receiver: Receiver
    broker: redis.Redis

    def post(
        self,
        event: str,
        payload: Any,
        *,
        delivery: str | None = None,
        secret: str = SECRET,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> httpx.Response:
        body = raw if raw is not None else json.dumps(payload).encode()
        sent = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(secret, body),
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/test",
        }
        sent.update(headers or {})
        return httpx.post(
            f"{self.url}/webhook",
            content=body,
            headers={k: v for k, v in sent.items() if v},
            timeout=10,
        )

    def queued(self) -> list[dict[str, Any]]:
        """Messages waiting in the quick queue, decoded from Celery's wire format."""
        out = []
        for raw in self.broker.lrange("quick", 0, -1):
            message = json.loads(raw)
            args = json.loads(base64.b64decode(message["body"]))[0]
            out.append({"task": message["headers"]["task"], "args": args})
        return out


def settings_for(tmp_path: Path, redis_url: str, **overrides: Any) -> BotSettings:
    values: dict[str, Any] = {
        "webhook_secret": [SECRET, "previous-secret"],
        "api_token": TOKEN,
        "redis_url": redis_url,
        "database_url": f"sqlite:///{tmp_path / 'jobs.db'}",
        "deny_users": ["mallory"],
        **overrides,
    }
    return BotSettings(**values)


@pytest.fixture
def start(tmp_path: Path, redis_url: str) -> Iterator[Any]:
    stack: list[ThreadedServer] = []
    broker = redis.Redis.from_url(redis_url)

    def run(
        *,
        ledger_url: str | None = None,
        queue_url: str | None = None,
        database_url: str | None = None,
        **overrides: Any,
    ) -> Running:
        broker.flushdb()
        settings = settings_for(tmp_path, redis_url, **overrides)
        engine = make_engine(database_url or settings.database_url)
        if database_url is None:
            migrate(engine)
        receiver = Receiver(
            settings=settings,
            store=JobStore(engine),
            ledger=DeliveryLedger.from_url(ledger_url or redis_url, settings.dedup_ttl_s),
            queue=RedisJobQueue.from_url(queue_url or redis_url, settings.quick_queue),
            metrics=ReceiverMetrics(),
        )
        server = ThreadedServer(create_app(receiver)).__enter__()
        stack.append(server)
        return Running(server.url, receiver, broker)

    yield run
    for server in stack:
        server.__exit__()


def test_documented_signature_vector() -> None:
    # GitHub Docs, "Validating webhook deliveries": secret, payload and expected signature.
    secret, payload = "It's a Secret to Everybody", b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(secret, payload) == expected
    assert verify(payload, expected, ["rotated-out", secret])
    assert not verify(payload, expected, ["another"])
    assert not verify(payload, expected.replace("sha256=", "sha1="), [secret])
    assert not verify(payload, None, [secret])


@pytest.mark.parametrize(
    ("event", "payload", "kind", "number"),
    [
        ("issue_comment", gh.comment_created("@qwenfix fix please keep the API"), "fix", 7),
        ("issue_comment", gh.comment_created("/qwenfix fix"), "fix", 7),
        ("issues", gh.labeled("qwenfix"), "fix", 7),
        ("issue_comment", gh.comment_created("@qwenfix review", on_pull=True), "review", 7),
        ("pull_request", gh.review_requested("qwenfix"), "review", 12),
        ("pull_request", gh.review_requested(None, team="qwenfix"), "review", 12),
        ("pull_request_review", gh.review_submitted("changes_requested"), "address-feedback", 9),
        (
            "pull_request_review",
            gh.review_submitted("commented", "@qwenfix use a dict"),
            "address-feedback",
            9,
        ),
        (
            "pull_request_review_comment",
            gh.review_comment("@qwenfix rename this"),
            "address-feedback",
            9,
        ),
        (
            "issue_comment",
            gh.comment_created(
                "@qwenfix also handle None", on_pull=True, issue_author="qwenfix[bot]"
            ),
            "address-feedback",
            7,
        ),
        ("check_suite", gh.check_suite("failure"), "fix-ci", 9),
        ("workflow_run", gh.workflow_run("timed_out"), "fix-ci", 9),
    ],
)
def test_each_trigger_becomes_one_job(
    start: Any, event: str, payload: Any, kind: str, number: int
) -> None:
    app = start()
    response = app.post(event, payload, delivery="d-" + uuid.uuid4().hex)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued" and body["kind"] == kind
    job = app.receiver.store.get(body["job_id"])
    assert job is not None
    assert (job.kind, job.repo, job.number, job.status) == (
        kind,
        "octo-org/hello-world",
        number,
        "queued",
    )
    assert app.queued() == [{"task": "qwenfix.acknowledge", "args": [body["job_id"]]}]


def test_extra_instructions_are_kept(start: Any) -> None:
    app = start()
    response = app.post(
        "issue_comment",
        gh.comment_created("Thanks!\n@qwenfix fix keep the public API\nand add a test"),
    )
    job = app.receiver.store.get(response.json()["job_id"])
    assert job is not None and job.instructions == "keep the public API\nand add a test"


@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        (
            "issue_comment",
            gh.comment_created("@qwenfix fix", sender="dependabot[bot]", sender_type="Bot"),
            "the sender is a bot",
        ),
        (
            "issue_comment",
            gh.comment_created("@qwenfix fix", sender="qwenfix[bot]"),
            "the sender is a bot",
        ),
        # Other Apps, even with look-alike names, and whatever their author association.
        (
            "issue_comment",
            gh.comment_created("@qwenfix fix", sender="qwenfix-helper[bot]", sender_type="Bot"),
            "the sender is a bot",
        ),
        (
            "issue_comment",
            gh.comment_created("@qwenfix fix", sender="qwenfix", sender_type="Bot"),
            "the sender is a bot",
        ),
        (
            "issue_comment",
            gh.comment_created("<!-- @qwenfix fix -->\nnothing visible"),
            "no @qwenfix command",
        ),
        (
            "issue_comment",
            gh.comment_created("@qwenfix fix", association="CONTRIBUTOR"),
            "not a collaborator (CONTRIBUTOR)",
        ),
        (
            "issue_comment",
            gh.comment_created("@qwenfix fix", association="NONE"),
            "not a collaborator (NONE)",
        ),
        (
            "issue_comment",
            gh.comment_created("@qwenfix fix", sender="mallory"),
            "mallory may not trigger",
        ),
        ("issue_comment", gh.comment_created("great work, thanks"), "no @qwenfix command"),
        (
            "issue_comment",
            gh.comment_created("> @qwenfix fix\nquoting the docs"),
            "no @qwenfix command",
        ),
        (
            "issue_comment",
            {**gh.comment_created("@qwenfix fix"), "action": "edited"},
            "issue_comment.edited is not something qwenfix acts on",
        ),
        ("issues", gh.labeled("bug"), "label 'bug' is not 'qwenfix'"),
        ("pull_request", gh.review_requested("someone-else"), "requested from someone else"),
        (
            "pull_request_review",
            gh.review_submitted("approved", "LGTM"),
            "neither requests changes nor mentions",
        ),
        ("pull_request_review", gh.review_submitted(author="octocat"), "did not open"),
        ("check_suite", gh.check_suite("success"), "concluded success"),
        ("check_suite", gh.check_suite("failure", branch="main"), "a branch qwenfix does not own"),
        ("star", {"action": "created", "sender": gh.user()}, "star is not something"),
    ],
)
def test_everything_else_is_ignored_with_a_reason(
    start: Any, event: str, payload: Any, reason: str
) -> None:
    app = start()
    response = app.post(event, payload)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ignored"
    assert reason in response.json()["reason"]
    assert app.receiver.store.find() == [] and app.queued() == []


def test_ping_and_installations(start: Any) -> None:
    app = start()
    assert app.post("ping", gh.ping()).json() == {"status": "ignored", "reason": "pong"}
    assert app.post("installation", gh.installation("created")).json() == {"status": "recorded"}
    store = app.receiver.store
    assert store.installed_repositories() == ["octo-org/docs", "octo-org/hello-world"]
    app.post("installation_repositories", gh.installation_repositories(["octo-org/api"], []))
    app.post("installation_repositories", gh.installation_repositories([], ["octo-org/docs"]))
    assert store.installed_repositories() == ["octo-org/api", "octo-org/hello-world"]
    app.post("installation", gh.installation("deleted"))
    assert store.installed_repositories() == []


def test_redelivery_never_makes_a_second_job(start: Any) -> None:
    app = start()
    payload = gh.comment_created("@qwenfix fix")
    first = app.post("issue_comment", payload, delivery="same-delivery")
    second = app.post("issue_comment", payload, delivery="same-delivery")
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate", "job_id": first.json()["job_id"]}
    assert len(app.receiver.store.find()) == 1 and len(app.queued()) == 1


@pytest.mark.parametrize(
    ("headers", "raw", "status", "error"),
    [
        ({"X-Hub-Signature-256": ""}, None, 401, "X-Hub-Signature-256"),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, None, 401, "X-Hub-Signature-256"),
        ({"X-GitHub-Event": ""}, None, 400, "X-GitHub-Event"),
        ({"X-GitHub-Delivery": ""}, None, 400, "X-GitHub-Delivery"),
        ({}, b'{"action": "created", ', 400, "not JSON"),
        ({}, b"[1, 2, 3]", 400, "not a JSON object"),
        ({}, b"\xff\xfe not utf-8", 400, "not JSON"),
    ],
)
def test_bad_requests_are_refused_clearly(
    start: Any, headers: dict[str, str], raw: bytes | None, status: int, error: str
) -> None:
    app = start()
    response = app.post(
        "issue_comment", gh.comment_created("@qwenfix fix"), headers=headers, raw=raw
    )
    assert response.status_code == status
    assert error in response.json()["error"]
    assert app.receiver.store.find() == []


def test_wrong_secret_and_rotated_secret(start: Any) -> None:
    app = start()
    payload = gh.comment_created("@qwenfix fix")
    assert app.post("issue_comment", payload, secret="guess").status_code == 401
    assert app.post("issue_comment", payload, secret="previous-secret").status_code == 202


def test_oversized_body_is_413(start: Any) -> None:
    app = start(max_body_bytes=100_000)
    payload = gh.comment_created("@qwenfix fix " + "x" * 200_000)
    response = app.post("issue_comment", payload)
    assert response.status_code == 413
    chunks = (b"x" * 50_000 for _ in range(4))  # no Content-Length: counted as it streams
    streamed = httpx.post(
        f"{app.url}/webhook",
        content=chunks,
        timeout=10,
        headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "big"},
    )
    assert streamed.status_code == 413


def test_a_claim_left_without_a_job_is_503_until_it_expires(start: Any) -> None:
    app = start()
    payload = gh.comment_created("@qwenfix fix")
    # A receiver claimed this delivery and died (or Redis restarted) before its job.
    app.broker.set(PREFIX + "orphan", "", px=1500)
    first = app.post("issue_comment", payload, delivery="orphan")
    assert first.status_code == 503 and "redeliver" in first.json()["error"]
    assert app.receiver.store.find() == []
    time.sleep(1.6)
    again = app.post("issue_comment", payload, delivery="orphan")
    assert again.status_code == 202
    assert 0 < app.broker.ttl(PREFIX + "orphan") <= app.receiver.settings.dedup_ttl_s


def test_other_methods_on_the_webhook_are_405(start: Any) -> None:
    app = start()
    response = httpx.get(f"{app.url}/webhook", timeout=10)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert httpx.get(f"{app.url}/no-such-page", timeout=10).status_code == 404


def test_a_sender_hanging_up_mid_body_leaves_nothing_and_the_receiver_carries_on(
    start: Any,
) -> None:
    app = start()
    host, port = app.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: issue_comment\r\n"
            b'X-GitHub-Delivery: cut\r\nContent-Length: 5000\r\n\r\n{"act'
        )
    deadline = time.monotonic() + 10
    while "disconnected" not in app.receiver.metrics.exposition().decode():
        assert time.monotonic() < deadline, "the receiver never noticed the hang-up"
        time.sleep(0.05)
    assert app.receiver.store.find() == [] and not app.broker.exists(PREFIX + "cut")
    assert app.post("issue_comment", gh.comment_created("@qwenfix fix")).status_code == 202


def test_redis_down_is_503_and_nothing_is_recorded(start: Any) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = start(ledger_url=dead, queue_url=dead)
    response = app.post("issue_comment", gh.comment_created("@qwenfix fix"))
    assert response.status_code == 503
    assert "redeliver" in response.json()["error"]
    assert app.receiver.store.find() == []
    ready = httpx.get(f"{app.url}/readyz", timeout=10)
    assert ready.status_code == 503 and "redis" in ready.json()


def test_broker_down_releases_the_delivery_for_a_redelivery(
    start: Any, tmp_path: Path, redis_url: str
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = start(queue_url=dead)
    payload = gh.comment_created("@qwenfix fix")
    assert app.post("issue_comment", payload, delivery="retry-me").status_code == 503
    assert app.receiver.store.find() == []
    assert not app.broker.exists(PREFIX + "retry-me")
    healthy = start()  # GitHub redelivers once the broker is back
    response = healthy.post("issue_comment", payload, delivery="retry-me")
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert healthy.queued() == [{"task": "qwenfix.acknowledge", "args": [job_id]}]


def test_database_down_is_503(start: Any, tmp_path: Path) -> None:
    app = start(database_url=f"sqlite:///{tmp_path}/missing-dir/jobs.db")
    response = app.post("issue_comment", gh.comment_created("@qwenfix fix"), delivery="db-down")
    assert response.status_code == 503
    assert not app.broker.exists(PREFIX + "db-down")
    assert httpx.get(f"{app.url}/readyz", timeout=10).json()["status"] == "unavailable"


def test_jobs_api_health_and_metrics(start: Any) -> None:
    app = start()
    fix = app.post("issue_comment", gh.comment_created("@qwenfix fix")).json()["job_id"]
    app.post("check_suite", gh.check_suite("failure"))
    app.post("issue_comment", gh.comment_created("@qwenfix fix", association="NONE"))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{app.url}/api/jobs", timeout=10).status_code == 401
    assert (
        httpx.get(
            f"{app.url}/api/jobs", headers={"Authorization": "Bearer nope"}, timeout=10
        ).status_code
        == 401
    )
    jobs = httpx.get(f"{app.url}/api/jobs", headers=auth, timeout=10).json()
    assert [j["kind"] for j in jobs] == ["fix-ci", "fix"]
    assert set(jobs[0]) >= {
        "id",
        "delivery_id",
        "kind",
        "repo",
        "number",
        "sender",
        "status",
        "created_at",
    }
    only_fix = httpx.get(
        f"{app.url}/api/jobs", params={"kind": "fix"}, headers=auth, timeout=10
    ).json()
    assert [j["id"] for j in only_fix] == [fix]
    one = httpx.get(f"{app.url}/api/jobs/{fix}", headers=auth, timeout=10).json()
    assert one["sender"] == "octocat" and one["status"] == "queued"
    assert httpx.get(f"{app.url}/api/jobs/999999", headers=auth, timeout=10).status_code == 404
    assert httpx.get(f"{app.url}/healthz", timeout=10).json() == {"status": "ok"}
    assert httpx.get(f"{app.url}/readyz", timeout=10).json() == {"status": "ready"}
    metrics = httpx.get(f"{app.url}/metrics", timeout=10).text
    assert 'qwenfix_webhook_deliveries_total{event="issue_comment",outcome="queued"} 1.0' in metrics
    assert (
        'qwenfix_webhook_deliveries_total{event="issue_comment",outcome="ignored"} 1.0' in metrics
    )
    assert "qwenfix_webhook_handling_seconds_bucket" in metrics


def test_serve_names_missing_settings(tmp_path: Path) -> None:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "COLUMNS": "300",
    }
    proc = subprocess.run(["qwenfix", "serve"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert "QWENFIX_WEBHOOK_SECRET is required" in proc.stderr
    assert "QWENFIX_API_TOKEN is required" in proc.stderr
