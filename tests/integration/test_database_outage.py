"""The production database briefly unreachable: a real PostgreSQL behind a TCP relay the
test cuts (every open connection dropped, new ones refused) and restores. The receiver
answers 503 meanwhile and recovers by itself; after GitHub's redeliveries each delivery
has one job and each job one message. The worker's store fails in a way its retry policy
calls transient, and works again afterwards."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from bot.contract.db import Job, make_engine, migrate
from bot.contract.job import JobKind, Trigger
from bot.contract.store import JobStore
from bot.embedded import ThreadedServer, free_port
from bot.receiver.app import create_app
from bot.receiver.signature import sign
from bot.serve import build_receiver
from bot.settings import BotSettings
from tests import github_payloads as gh
from tests.conftest import fresh_redis
from tests.helpers import POSTGRES_ADMIN_URL, postgres_database
from workers.runtime.retry import transient_delay

SECRET = "outage-secret"
REDIS_DB = 14


class Relay:
    """Forwards 127.0.0.1:port to PostgreSQL until cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.open = True
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self._listener.close()


@pytest.fixture
def relayed_database() -> Iterator[tuple[str, Relay]]:
    with postgres_database("qwenfix_outage") as name:
        relay = Relay(("127.0.0.1", 5432))
        base = POSTGRES_ADMIN_URL.rsplit("@", 1)[0]
        url = f"{base}@127.0.0.1:{relay.port}/{name}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        try:
            yield url, relay
        finally:
            relay.close()


def post(url: str, delivery: str) -> httpx.Response:
    body = json.dumps(gh.comment_created("@qwenfix fix")).encode()
    return httpx.post(
        f"{url}/webhook",
        content=body,
        timeout=15,
        headers={
            "X-GitHub-Event": "issue_comment",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(SECRET, body),
            "Content-Type": "application/json",
        },
    )


def test_the_database_briefly_unreachable(relayed_database: tuple[str, Relay]) -> None:
    url, relay = relayed_database
    redis_url, broker = fresh_redis(REDIS_DB)
    settings = BotSettings(
        webhook_secret=[SECRET],
        api_token="t",  # type: ignore[arg-type]
        redis_url=redis_url,
        database_url=url,
        dependency_timeout_s=3,
    )
    receiver = build_receiver(settings)
    worker_store = JobStore(make_engine(url))  # a worker's own connection pool
    trigger = Trigger(kind=JobKind.FIX, repo="o/r", number=1, sender="octocat", installation_id=1)
    known, _ = worker_store.create("known", "issue_comment", trigger)

    with ThreadedServer(create_app(receiver)) as hook:
        assert post(hook.url, "before").status_code == 202
        relay.cut()
        during = [post(hook.url, f"during-{i}") for i in range(3)]
        assert [r.status_code for r in during] == [503] * 3
        assert all("redeliver" in r.json()["error"] for r in during)
        assert httpx.get(f"{hook.url}/readyz", timeout=15).json()["status"] == "unavailable"
        with pytest.raises(sa.exc.OperationalError) as failed:
            worker_store.set_status(known.id, "acknowledged", expected="queued")
        assert transient_delay(failed.value, 0) is not None  # the task retries it

        relay.restore()
        deadline = time.monotonic() + 20
        while httpx.get(f"{hook.url}/readyz", timeout=15).status_code != 200:
            assert time.monotonic() < deadline, "the receiver did not recover"
            time.sleep(0.2)
        # GitHub's redeliveries of the failed deliveries, and new ones.
        for i in range(3):
            assert post(hook.url, f"during-{i}").status_code == 202
        assert post(hook.url, "after").status_code == 202
        assert worker_store.set_status(known.id, "acknowledged", expected="queued")

    with receiver.store.engine.connect() as connection:
        per_delivery = dict(
            connection.execute(
                select(Job.delivery_id, func.count()).group_by(Job.delivery_id)
            ).all()
        )
        ids = {
            int(i)
            for i in connection.execute(select(Job.id).where(Job.delivery_id != "known")).scalars()
        }
    assert per_delivery == {
        d: 1 for d in ("known", "before", "during-0", "during-1", "during-2", "after")
    }
    queued = [
        json.loads(base64.b64decode(json.loads(raw)["body"]))[0][0]
        for raw in broker.lrange("quick", 0, -1)
    ]
    assert sorted(queued) == sorted(ids)
