"""Redis killed and restarted while deliveries pour in: the receiver answers 503 while it is
gone and carries on when it is back; after GitHub's redeliveries every delivery has
exactly one job, and every job its message. Also what persistence cannot save: jobs whose
messages were lost are sent again by the sweep on beat's tick (test_maintenance_beat.py)."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import func, select

from bot.contract.db import Job
from bot.embedded import ThreadedServer, free_port
from bot.receiver.app import create_app
from bot.receiver.signature import sign
from bot.serve import build_receiver
from bot.settings import BotSettings
from tests import github_payloads as gh

SECRET = "restart-secret"


class PrivateRedis:
    """A redis-server of the test's own, persisting every write (as production should:
    deploy/compose.yaml runs it with --appendonly yes)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.workdir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()  # SIGKILL: no chance to save anything more
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def post(client: httpx.Client, url: str, delivery: str) -> httpx.Response:
    body = json.dumps(gh.comment_created("@qwenfix fix")).encode()
    return client.post(
        f"{url}/webhook",
        content=body,
        headers={
            "X-GitHub-Event": "issue_comment",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(SECRET, body),
            "Content-Type": "application/json",
        },
    )


def test_redis_restarted_under_load_loses_nothing(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    settings = BotSettings(
        webhook_secret=[SECRET],
        api_token="t",  # type: ignore[arg-type]
        redis_url=private_redis.url,
        database_url=f"sqlite:///{tmp_path / 'jobs.db'}",
        claim_ttl_s=2,
        dependency_timeout_s=1,
    )
    receiver = build_receiver(settings)
    answers: dict[str, list[int]] = {}
    lock, stop = threading.Lock(), threading.Event()

    def sender(name: str, url: str) -> None:
        with httpx.Client(timeout=10) as client:
            n = 0
            while not stop.is_set():
                delivery = f"{name}-{n}"
                status = post(client, url, delivery).status_code
                with lock:
                    answers.setdefault(delivery, []).append(status)
                n += 1

    with ThreadedServer(create_app(receiver)) as hook:
        senders = [threading.Thread(target=sender, args=(f"s{i}", hook.url)) for i in range(6)]
        for thread in senders:
            thread.start()
        time.sleep(1.0)
        private_redis.kill()
        time.sleep(0.7)
        private_redis.start()
        time.sleep(1.5)
        stop.set()
        for thread in senders:
            thread.join(20)

        during = [codes[0] for codes in answers.values()]
        assert set(during) <= {202, 503}, f"unexpected answers: {set(during)}"
        assert during.count(503) > 0, "the outage was never seen"
        assert during.count(202) > 50
        # After the outage the receiver accepts again, without a restart of its own.
        for i in range(len(senders)):
            sent = sum(1 for d in answers if d.startswith(f"s{i}-"))
            assert [answers[f"s{i}-{n}"][0] for n in range(sent - 3, sent)] == [202] * 3
        assert httpx.get(f"{hook.url}/readyz", timeout=10).status_code == 200

        # GitHub's redelivery of every failed delivery, until each is accepted (a claim
        # left behind by the kill stands for claim_ttl_s; until then the answer is 503).
        failed = {d for d, codes in answers.items() if codes[0] != 202}
        print(f"{len(answers)} deliveries, {len(failed)} answered 503 during the outage")
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=10) as client:
            while failed:
                assert time.monotonic() < deadline, f"never accepted: {sorted(failed)[:5]}"
                for delivery in sorted(failed):
                    answer = post(client, hook.url, delivery)
                    assert answer.status_code in (202, 200, 503), answer.text
                    if answer.status_code != 503:
                        assert answer.json()["job_id"] is not None
                        failed.discard(delivery)
                time.sleep(0.3)

    engine = receiver.store.engine
    with engine.connect() as connection:
        per_delivery = dict(
            connection.execute(
                select(Job.delivery_id, func.count()).group_by(Job.delivery_id)
            ).all()
        )
        job_ids = {int(i) for i in connection.execute(select(Job.id)).scalars()}
    assert set(per_delivery) == set(answers), "a delivery without a job, or a stray job"
    assert set(per_delivery.values()) == {1}, "a delivery with two jobs"
    broker = redis.Redis.from_url(private_redis.url)
    messages = [
        json.loads(base64.b64decode(json.loads(raw)["body"]))[0][0]
        for raw in broker.lrange("quick", 0, -1)
    ]
    # Every job has its message. (A message whose LPUSH landed just before the kill, for
    # a job then undone, names an id that acknowledging finds missing or already taken:
    # harmless, as acknowledging is compare-and-set.)
    assert job_ids <= set(messages), f"jobs without a message: {sorted(job_ids - set(messages))}"
