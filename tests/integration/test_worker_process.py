"""Comment -> receiver -> Redis -> a real Celery worker process -> the fake GitHub.

Everything real but GitHub: HTTP, Redis, SQLite, Celery's worker (prefork, as deployed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.contract.db import make_engine, migrate
from bot.contract.store import JobStore
from bot.embedded import ThreadedServer
from bot.receiver.app import Receiver, create_app
from bot.receiver.enqueue import RedisJobQueue
from bot.receiver.ledger import DeliveryLedger
from bot.receiver.metrics import ReceiverMetrics
from bot.receiver.signature import sign
from bot.settings import BotSettings
from tests import github_payloads as gh
from tests.conftest import fresh_redis
from tests.fakes.github import FakeGitHub

REDIS_DB = 11
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
SECRET = "worker-test-secret"


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    _, broker = fresh_redis(REDIS_DB)
    fake = FakeGitHub()
    fake.add_repo("octo-org/hello-world", installation_id=42, collaborators={"octocat": "write"})
    fake.add_issue("octo-org/hello-world", 7, "mean() is wrong")
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    engine = make_engine(database)
    migrate(engine)
    settings = BotSettings(
        webhook_secret=[SECRET],
        api_token="t",  # type: ignore[arg-type]
        redis_url=REDIS_URL,
        database_url=database,
    )
    receiver = Receiver(
        settings=settings,
        store=JobStore(engine),
        ledger=DeliveryLedger.from_url(REDIS_URL, 3600),
        queue=RedisJobQueue.from_url(REDIS_URL, "quick"),
        metrics=ReceiverMetrics(),
    )
    with ThreadedServer(fake.asgi()) as github, ThreadedServer(create_app(receiver)) as hook:
        fake.base_url = github.url
        env = {
            **os.environ,
            "QWENFIX_REDIS_URL": REDIS_URL,
            "QWENFIX_DATABASE_URL": database,
            "QWENFIX_GITHUB_API_URL": github.url,
            "QWENFIX_GITHUB_APP_ID": str(fake.app_id),
            "QWENFIX_GITHUB_PRIVATE_KEY": fake.private_key_pem,
        }
        worker = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "qwenfix"),
                "worker",
                "--queues",
                "quick",
                # The pool deployments run: each job in a process forked from the
                # worker's, its own Deps built after the fork.
                "--pool",
                "prefork",
                "--concurrency",
                "2",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            yield {"fake": fake, "hook": hook.url, "store": receiver.store, "broker": broker}
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                output, _ = worker.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                output, _ = worker.communicate()
            print(output[-5000:])


def deliver(url: str, event: str, payload: dict[str, Any], delivery: str) -> httpx.Response:
    body = json.dumps(payload).encode()
    return httpx.post(
        f"{url}/webhook",
        content=body,
        timeout=10,
        headers={
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(SECRET, body),
            "Content-Type": "application/json",
        },
    )


def test_a_comment_is_acknowledged_on_github_by_a_worker(stack: dict[str, Any]) -> None:
    fake: FakeGitHub = stack["fake"]
    comment_id = fake.add_comment("octo-org/hello-world", 7, "@qwenfix fix", "octocat")
    payload = gh.comment_created("@qwenfix fix")
    payload["comment"]["id"] = comment_id
    response = deliver(stack["hook"], "issue_comment", payload, "delivery-1")
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    store: JobStore = stack["store"]
    wait_for(
        lambda: store.get(job_id).status == "acknowledged",  # type: ignore[union-attr]
        "the job to be acknowledged",
    )
    assert [(r["comment_id"], r["content"]) for r in fake.reactions] == [(comment_id, "eyes")]
    status = [
        c for c in fake.issue_comments("octo-org/hello-world", 7) if c["author"] == fake.bot_login
    ]
    assert len(status) == 1 and f"(job {job_id})" in status[0]["body"]
    # The run is queued as the acknowledgement's last step (from the pool's process, whose
    # first message opens its own broker connection): it may land a moment after.
    wait_for(lambda: stack["broker"].llen("agent") > 0, "the agent run to be queued")
    agent = [json.loads(m)["headers"] for m in stack["broker"].lrange("agent", 0, -1)]
    assert [(h["task"], h["argsrepr"]) for h in agent] == [("qwenfix.run", f"[{job_id}]")]


def test_a_commenter_without_write_access_is_refused_by_the_worker(stack: dict[str, Any]) -> None:
    fake: FakeGitHub = stack["fake"]
    payload = gh.comment_created("@qwenfix fix", sender="drive-by", association="COLLABORATOR")
    response = deliver(stack["hook"], "issue_comment", payload, "delivery-2")
    job_id = response.json()["job_id"]
    store: JobStore = stack["store"]
    wait_for(lambda: store.get(job_id).status == "refused", "the refusal")  # type: ignore[union-attr]

    def replies() -> list[str]:
        return [c["body"] for c in fake.issue_comments("octo-org/hello-world", 7)]

    wait_for(lambda: bool(replies()), "the polite reply")
    assert replies() == [
        "Sorry @drive-by, only people with write access to this repository "
        "can ask qwenfix to work on it."
    ]
    assert stack["broker"].llen("agent") == 0
