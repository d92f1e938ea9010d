"""Scheduled maintenance through every real part: the receiver records the installation,
two `qwenfix beat` processes (one leads), a Celery worker process reads each repository's
`.qwenfix.yml` from the fake GitHub, runs the due tasks in Docker with the scripted model.
Also the manual triggers: `qwenfix maintain` and `@qwenfix maintain`."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from bot.contract.db import Job, utcnow
from bot.contract.job import JobKind, Trigger
from bot.embedded import ThreadedServer
from bot.receiver.app import create_app
from tests import github_payloads as gh
from tests.conftest import fresh_redis
from tests.fakes.github import FakeGitHub
from tests.fakes.model_server import ScriptedModelServer
from tests.helpers import (
    BUGGY_REPO,
    FIX_STEPS,
    deliver,
    make_receiver,
    make_repo,
    stop_process,
    wait_for,
    worker_env,
)

REDIS_DB = 7
SECRET = "beat-secret"
SCHEDULE = (
    "test: python -m pytest -q\nmaintenance:\n"
    "  - task: fix-failing-tests\n    schedule: '* * * * *'\n"
)
RED, GREEN = "octo-org/red", "octo-org/green"
QWENFIX = str(Path(sys.executable).parent / "qwenfix")
FINISHED = {
    "resolved",
    "unresolved",
    "error",
    "blocked",
    "refused",
    "failed",
    "skipped",
    "nothing-to-do",
}


class Deployment:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.redis_url, self.redis = fresh_redis(REDIS_DB)
        self.fake = FakeGitHub()
        green = {**BUGGY_REPO, "mathlib.py": "def double(x):\n    return x * 2\n"}
        for name, files in ((RED, BUGGY_REPO), (GREEN, green)):
            source = make_repo(tmp / name, {**files, ".qwenfix.yml": SCHEDULE})
            self.fake.add_repo(
                name, installation_id=77, source=source, collaborators={"octocat": "admin"}
            )
        self.fake.add_issue(GREEN, 5, "Chores")
        database = f"sqlite:///{tmp / 'jobs.db'}"
        self.store, receiver = make_receiver(database, self.redis_url, SECRET)
        self.model = ScriptedModelServer({"steps": FIX_STEPS}).start()
        self.github = ThreadedServer(self.fake.asgi()).__enter__()
        self.fake.base_url = self.github.url
        self.hook = ThreadedServer(create_app(receiver)).__enter__()
        self.env = worker_env(
            tmp,
            redis_url=self.redis_url,
            database=database,
            fake=self.fake,
            github_url=self.github.url,
            model_url=self.model.base_url,
            maintenance_tick_s="1",
            beat_lease_s="3",
        )
        self.processes: dict[str, subprocess.Popen[str]] = {}

    def start(self, name: str, *args: str) -> None:
        with open(self.log_path(name), "a") as log:  # the child holds its own copy of it
            self.processes[name] = subprocess.Popen(
                [QWENFIX, *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            stop_process(process, sig)

    def log_path(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def log(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text() if path.exists() else ""

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        self.hook.__exit__()
        self.github.__exit__()
        self.model.stop()
        self.fake.close()
        for name in ("worker", "beat-a", "beat-b"):
            print(f"--- {name}\n{self.log(name)[-4000:]}")

    def deliver(self, event: str, payload: dict[str, Any], delivery: str) -> dict[str, Any]:
        answer: dict[str, Any] = deliver(self.hook.url, SECRET, event, payload, delivery).json()
        return answer

    def jobs(self, repo: str) -> list[Any]:
        return [j for j in self.store.find(repo=repo) if j.kind == "maintenance"]

    def first_finished(self, repo: str) -> Any:
        done = [j for j in self.jobs(repo) if j.status in FINISHED]
        return min(done, key=lambda j: j.id) if done else None

    def tick_senders(self) -> list[str]:
        return re.findall(r"maintenance tick from beat (\S+):", self.log("worker"))


@pytest.fixture
def deployment(tmp_path: Path, docker_client: Any) -> Iterator[Deployment]:
    d = Deployment(tmp_path)
    yield d
    d.close()


def test_the_schedule_fixes_the_red_repository_once_and_leaves_the_green_alone(
    deployment: Deployment,
) -> None:
    d = deployment
    installed = gh.installation()
    installed["installation"]["id"] = 77
    installed["repositories"] = [
        {"id": 1, "name": "red", "full_name": RED},
        {"id": 2, "name": "green", "full_name": GREEN},
    ]
    assert d.deliver("installation", installed, "install-1")["status"] == "recorded"

    # A job whose message was lost an hour ago (Redis restarted without persistence):
    # the sweep on beat's tick sends it again. (Without an installation, acknowledging it
    # is quick and says nothing on GitHub.)
    lost, _ = d.store.create(
        "lost-message",
        "issue_comment",
        Trigger(kind=JobKind.FIX, repo=GREEN, number=5, sender="octocat", installation_id=None),
    )
    with d.store.engine.begin() as connection:
        connection.execute(
            update(Job).where(Job.id == lost.id).values(updated_at=utcnow() - timedelta(hours=1))
        )

    d.start(
        "worker", "worker", "--queues", "quick,agent", "--pool", "threads", "--concurrency", "2"
    )
    d.start("beat-a", "beat")
    d.start("beat-b", "beat")
    wait_for(lambda: d.store.get(lost.id).status == "failed", "the sweep to send the lost job", 60)
    assert "sent 1 job(s) again" in d.log("worker")

    red = wait_for(lambda: d.first_finished(RED), "the red repository's scheduled run", 150)
    green = wait_for(lambda: d.first_finished(GREEN), "the green repository's scheduled run", 150)
    assert (red.status, red.event, red.task) == ("resolved", "schedule", "fix-failing-tests")
    assert (green.status, green.reason) == (
        "nothing-to-do",
        "nothing to do: the test suite passes (passed: 2 passed)",
    )
    [pull] = d.fake.open_pulls(RED)
    assert pull["head"] == "qwenfix/maintenance/fix-failing-tests"
    assert d.fake.open_pulls(GREEN) == []
    assert [c for c in d.fake.comments.values()] == []  # nobody was asked; nobody is told

    # One beat leads and sends every tick; the other stands by.
    senders = set(d.tick_senders())
    assert len(senders) == 1, senders
    [leader] = senders
    logs = {name: d.log(name) for name in ("beat-a", "beat-b")}
    leading = [n for n, text in logs.items() if f"beat {leader} is the leader" in text]
    standby = [n for n, text in logs.items() if "is on standby" in text]
    assert len(leading) == 1 and standby == [n for n in logs if n not in leading]
    # Every job is one (repository, task, minute): the two beats never doubled a run.
    deliveries = [j.delivery_id for j in d.jobs(RED) + d.jobs(GREEN)]
    assert len(deliveries) == len(set(deliveries))

    # The schedules as read, for operators; a push that changes the config marks it stale.
    listed = httpx.get(
        f"{d.hook.url}/api/schedules", timeout=10, headers={"Authorization": "Bearer t"}
    ).json()
    assert {r["repo"]: r["tasks"] for r in listed} == {
        repo: [{"task": "fix-failing-tests", "schedule": "* * * * *"}] for repo in (GREEN, RED)
    }
    push = {
        "ref": "refs/heads/main",
        "repository": {"full_name": GREEN, "default_branch": "main"},
        "commits": [{"modified": [".qwenfix.yml"]}],
        "installation": {"id": 77},
        "sender": {"login": "octocat", "type": "User"},
    }
    assert d.deliver("push", push, "push-1")["status"] == "recorded"

    # The leader dies without a word; the standby takes over within the lease.
    d.stop(leading[0], signal.SIGKILL)
    wait_for(lambda: set(d.tick_senders()) - {leader}, "the standby beat to take over", 30)
    assert "the leader" in d.log(standby[0])
    assert len(d.fake.open_pulls(RED)) == 1


def test_maintenance_on_request_from_the_command_line_and_a_comment(deployment: Deployment) -> None:
    d = deployment
    installed = gh.installation()
    installed["installation"]["id"] = 77
    installed["repositories"] = [{"id": 2, "name": "green", "full_name": GREEN}]
    d.deliver("installation", installed, "install-2")

    cli = subprocess.run(
        [QWENFIX, "maintain", GREEN, "fix-failing-tests"],
        env=d.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    assert "nothing-to-do: nothing to do: the test suite passes" in cli.stdout
    [job] = d.jobs(GREEN)
    assert (job.event, job.task, job.status) == ("cli", "fix-failing-tests", "nothing-to-do")

    unknown = subprocess.run(
        [QWENFIX, "maintain", "octo-org/elsewhere", "lint-fix"],
        env=d.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unknown.returncode == 2
    assert "octo-org/elsewhere is not an installed repository" in unknown.stderr

    d.start(
        "worker", "worker", "--queues", "quick,agent", "--pool", "threads", "--concurrency", "2"
    )
    comment = gh.comment_created("@qwenfix maintain fix-failing-tests")
    comment["repository"] = {"full_name": GREEN, "default_branch": "main"}
    comment["issue"]["number"] = 5
    comment["installation"] = {"id": 77}
    comment["comment"]["id"] = d.fake.add_comment(
        GREEN, 5, "@qwenfix maintain fix-failing-tests", "octocat"
    )
    answer = d.deliver("issue_comment", comment, "maintain-1")
    assert answer["status"] == "queued" and answer["kind"] == "maintenance"
    job_id = answer["job_id"]
    wait_for(lambda: (d.store.get(job_id) or Any).status in FINISHED, "the requested run")
    [status] = [c["body"] for c in d.fake.comments.values() if c["author"] == d.fake.bot_login]
    assert "ran the maintenance task `fix-failing-tests`" in status
    assert "nothing to do: the test suite passes" in status
