"""The dashboard over HTTP: who gets in, what a job's records become on the page, and
that nothing a model or a repository wrote can run in the operator's browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.contract.job import JobKind, Trigger
from bot.dashboard.routes import COOKIE
from bot.embedded import ThreadedServer
from bot.receiver.app import create_app
from tests.conftest import fresh_redis
from tests.helpers import make_receiver
from workers.engine.agent.trajectory import Trajectory
from workers.runtime.recorder import MAX_TEXT, JobRecorder

SECRET = "s"


class Dashboard:
    def __init__(self, tmp: Path) -> None:
        url, _ = fresh_redis(13)
        self.store, receiver = make_receiver(f"sqlite:///{tmp / 'jobs.db'}", url, SECRET)
        self.server = ThreadedServer(create_app(receiver)).__enter__()
        self.url = self.server.url
        job, _ = self.store.create(
            "d-1",
            "issue_comment",
            Trigger(
                kind=JobKind.FIX,
                repo="octo-org/app",
                number=3,
                sender="octocat",
                installation_id=1,
                instructions="keep it <b>small</b>",
            ),
        )
        self.job = job.id
        self.recorder = JobRecorder(self.store, job.id)
        with Trajectory(tmp / "run.jsonl", self.recorder) as trajectory:
            trajectory.record(
                "start",
                base="abc1234def",
                issue="Fix <script>alert(1)</script>",
                config_source=".qwenfix.yml",
            )
            trajectory.record(
                "tests_before",
                command="pytest",
                exit_code=1,
                duration_s=2.5,
                tests={"t::a": "failed", "t::b": "passed"},
            )
            trajectory.record("message", message={"role": "user", "content": "x" * 100_000})
            trajectory.record(
                "message",
                message={
                    "role": "assistant",
                    "content": "<img src=x onerror=alert(1)> looking",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "function": {"name": "bash", "arguments": '{"command": "seq 30"}'},
                        }
                    ],
                },
                usage={"prompt_tokens": 1000, "completion_tokens": 20, "cached_tokens": 800},
                latency_s=1.5,
            )
            trajectory.record(
                "message",
                message={
                    "role": "tool",
                    "tool_call_id": "c1",
                    "content": "\n".join(str(i) for i in range(1, 31)),
                },
                tool="bash",
                arguments={"command": "seq 30"},
                elapsed_s=0.25,
            )
            trajectory.record("diff", diff="--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-old\n+new\n")
        self.store.set_status(
            job.id, "resolved", reason="https://github.example/octo-org/app/pull/9"
        )

    def close(self) -> None:
        self.server.__exit__()

    def client(self, logged_in: bool = True) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=10, follow_redirects=False)
        if logged_in:
            answer = client.post(
                "/login",
                content="token=t&next=%2Fjobs",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert answer.status_code == 303
        return client


@pytest.fixture
def dash(tmp_path: Path) -> Iterator[Dashboard]:
    d = Dashboard(tmp_path)
    yield d
    d.close()


def test_only_the_operator_gets_in(dash: Dashboard) -> None:
    anonymous = dash.client(logged_in=False)
    page = anonymous.get("/jobs")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fjobs"
    assert anonymous.get(f"/jobs/{dash.job}/live").status_code == 401
    assert anonymous.get("/api/jobs").status_code == 401
    wrong = anonymous.post(
        "/login",
        content="token=nope",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert wrong.status_code == 401 and "That is not the operator token." in wrong.text

    client = dash.client()
    cookie = client.cookies.get(COOKIE)
    assert cookie and cookie != "t"  # derived from the token, not the token
    assert client.get("/jobs").status_code == 200
    assert [j["id"] for j in client.get("/api/jobs").json()] == [dash.job]  # cookie works
    out = client.post("/logout")
    assert out.status_code == 303
    assert client.get("/jobs").status_code == 303


def test_login_never_redirects_off_the_site(dash: Dashboard) -> None:
    client = dash.client(logged_in=False)
    assert 'value="/jobs"' in client.get("/login", params={"next": "//evil.example"}).text
    answer = client.post(
        "/login",
        content="token=t&next=https%3A%2F%2Fevil.example",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.headers["location"] == "/jobs"
    answer = client.post(
        "/login",
        content="token=t&next=%2Fqueues",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.headers["location"] == "/queues"


def test_a_job_page_shows_what_the_records_say_and_escapes_them(dash: Dashboard) -> None:
    client = dash.client()
    page = client.get(f"/jobs/{dash.job}").text
    assert "https://github.example/octo-org/app/pull/9" in page
    assert "failed (exit 1): 1 failed, 1 passed → not run" in page
    assert "1000 prompt (800 from the prefix cache, 80%)" in page
    assert "1.5 s model" in page and "2.8 s sandbox" in page  # 2.5 tests + 0.25 tool
    assert "keep it &lt;b&gt;small&lt;/b&gt;" in page
    trajectory = client.get(f"/jobs/{dash.job}/trajectory").text
    assert "<img src=x" not in trajectory and "&lt;img src=x onerror=alert(1)&gt;" in trajectory
    assert "<script>alert(1)</script>" not in trajectory
    assert "22 more line(s)" in trajectory
    diff = client.get(f"/jobs/{dash.job}/diff").text
    assert '<span class="add">+new</span>' in diff and '<span class="del">-old</span>' in diff
    assert client.get("/jobs/999").status_code == 404
    assert "data-done" in client.get(f"/jobs/{dash.job}/live").text  # no more polling


def test_records_are_served_in_order_and_long_texts_cut(dash: Dashboard) -> None:
    client = dash.client()
    records = client.get(f"/api/jobs/{dash.job}/records").json()
    assert [r["event"] for r in records] == [
        "start",
        "tests_before",
        "message",
        "message",
        "message",
        "diff",
    ]
    long = records[2]["data"]["message"]["content"]
    assert len(long) < 100_000 and long.startswith("x" * MAX_TEXT)
    assert "the trajectory file has the whole text" in long
    later = client.get(f"/api/jobs/{dash.job}/records", params={"after": records[3]["id"]})
    assert [r["event"] for r in later.json()] == ["message", "diff"]
    total = dash.recorder.total
    assert (total.prompt_tokens, total.cached_tokens, total.model_calls) == (1000, 800, 1)
    assert total.model_s == 1.5 and total.sandbox_s == 2.75
    events = dash.store.events(dash.job)
    assert [e.status for e in events] == ["resolved"]


def test_the_queue_view_counts_waiting_and_taken_messages(dash: Dashboard) -> None:
    """Waiting: the queue's list; running: what kombu's Redis transport keeps in its
    `unacked` hash ([message, exchange, routing key]) until a worker acknowledges it."""
    import json as _json

    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/13")
    client.lpush("agent", "m1", "m2")
    client.hset(
        "unacked",
        mapping={
            "t1": _json.dumps([{"body": "…"}, "", "agent"]),
            "t2": _json.dumps([{"body": "…"}, "", "quick"]),
            "t3": "not json",
        },
    )
    client.set(
        "qwenfix:worker:celery@box",
        _json.dumps({"hostname": "celery@box", "queues": ["agent"], "concurrency": 2, "seen": 0}),
    )
    page = dash.client().get("/queues/live").text
    assert (
        '<div class="card queue" data-queue="agent"><div class="muted">agent queue</div>'
        '<div class="n">2 ' in page
    )
    assert page.count('<span class="taken">1</span>') == 2
    assert "celery@box" in page and '<div class="n" id="worker-count">1</div>' in page
