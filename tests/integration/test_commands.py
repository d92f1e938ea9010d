"""The commands people type, end to end: the receiver over HTTP, Redis, a real Celery
worker process, the fake GitHub and the scripted model; sandboxes are bubblewrap's
(the local backend), so no Docker engine is needed."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bot.embedded import ThreadedServer
from bot.receiver.app import create_app
from sandbox.local_backend import SNAPSHOT_DIR_NAME
from tests import github_payloads as gh
from tests.conftest import fresh_redis
from tests.fakes.github import FakeGitHub
from tests.fakes.github.events import issue_closed
from tests.fakes.model_server import ScriptedModelServer
from tests.helpers import (
    call,
    deliver,
    make_receiver,
    make_repo,
    start_worker,
    step,
    stop_process,
    wait_for,
)
from tests.helpers import worker_env as base_env
from workers.jobs.commands import answer_marker

REDIS_DB = 3
SECRET = "commands-secret"
REPO = "octo-org/hello-world"
PUBLIC_URL = "https://qwenfix.example.com"
FILES: dict[str, str | bytes] = {
    "mathlib.py": "def double(x):\n    return x + x + 1\n",
    "test_mathlib.py": "from mathlib import double\n\nassert double(2) == 4, double(2)\n",
    ".qwenfix.yml": "test: python3 test_mathlib.py\n",
}
# A model that keeps working: a different command each turn (never stuck), a little
# slowly, for far longer than any test waits.
BUSY = [step(call("bash", command=f"echo turn {n}"), delay_s=0.3) for n in range(400)]
FINAL = {"resolved", "unresolved", "error", "refused", "failed", "skipped", "stopped", "done"}

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap is not installed (scripts/system-packages.sh installs it)",
)


class Stack:
    def __init__(self, tmp: Path, public_url: str | None) -> None:
        self.tmp = tmp
        self.redis_url, self.broker = fresh_redis(REDIS_DB)
        self.fake = FakeGitHub()
        self.fake.add_repo(
            REPO,
            installation_id=42,
            collaborators={"octocat": "admin", "reader": "read"},
            source=make_repo(tmp / "source", FILES),
        )
        self.fake.add_issue(REPO, 7, "double() is wrong", "double(2) gives 5.")
        database = f"sqlite:///{tmp / 'jobs.db'}"
        self.store, receiver = make_receiver(database, self.redis_url, SECRET)
        self.model = ScriptedModelServer({"steps": BUSY}).start()
        self.github = ThreadedServer(self.fake.asgi()).__enter__()
        self.fake.base_url = self.github.url
        self.hook = ThreadedServer(create_app(receiver)).__enter__()
        # The worker's own temporary directory: its sandboxes' roots and snapshots are
        # made there, so what is left of them can be seen.
        self.worker_tmp = tmp / "worker-tmp"
        self.worker_tmp.mkdir()
        extra = {"public_url": public_url} if public_url else {}
        self.env = {
            **base_env(
                tmp,
                redis_url=self.redis_url,
                database=database,
                fake=self.fake,
                github_url=self.github.url,
                model_url=self.model.base_url,
                sandbox_backend="local",
                setup_cache="false",
                max_turns="400",
                **extra,
            ),
            "TMPDIR": str(self.worker_tmp),
        }
        self.worker: subprocess.Popen[str] | None = None

    def start_worker(self, queues: str = "quick,agent") -> None:
        self.worker = start_worker(self.env, self.tmp / "worker.log", queues)

    def stop_worker(self) -> None:
        if self.worker is not None:
            stop_process(self.worker)
            self.worker = None

    def close(self) -> None:
        self.stop_worker()
        self.hook.__exit__()
        self.github.__exit__()
        self.model.stop()
        self.fake.close()
        log = self.tmp / "worker.log"
        print(log.read_text()[-6000:] if log.exists() else "")

    def comment(
        self, body: str, sender: str = "octocat", association: str = "OWNER"
    ) -> httpx.Response:
        comment_id = self.fake.add_comment(REPO, 7, body, sender)
        payload = gh.comment_created(body, sender=sender, association=association)
        payload["comment"]["id"] = comment_id
        return deliver(self.hook.url, SECRET, "issue_comment", payload, f"d-{comment_id}")

    def job_of(self, response: httpx.Response) -> int:
        assert response.status_code == 202, response.text
        return int(response.json()["job_id"])

    def status(self, job_id: int) -> str:
        job = self.store.get(job_id)
        return job.status if job is not None else "missing"

    def finished(self, job_id: int) -> str | None:
        status = self.status(job_id)
        return status if status in FINAL else None

    def bot_comments(self) -> list[str]:
        return [
            c["body"]
            for c in self.fake.issue_comments(REPO, 7)
            if c["author"] == self.fake.bot_login
        ]

    def status_comment(self) -> str:
        [status] = [b for b in self.bot_comments() if "qwenfix:status" in b]
        return status

    def answer(self, job_id: int) -> str:
        found = [b for b in self.bot_comments() if answer_marker(job_id) in b]
        return found[0] if len(found) == 1 else ""

    def sandboxes_left(self) -> list[str]:
        """Sandbox roots and setup snapshots still on disk."""
        snapshots = self.worker_tmp / SNAPSHOT_DIR_NAME
        roots = [p.name for p in self.worker_tmp.glob("qwenfix-sandbox-*") if p != snapshots]
        return sorted(roots) + (
            sorted(p.name for p in snapshots.iterdir()) if snapshots.is_dir() else []
        )

    def ran(self, job_id: int) -> bool:
        return any(e.status == "running" for e in self.store.events(job_id))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    made: list[Stack] = []

    def build(public_url: str | None = None) -> Stack:
        made.append(Stack(tmp_path, public_url))
        return made[-1]

    yield build
    for s in made:
        s.close()


def test_a_bare_mention_fixes_stop_ends_it_retry_runs_it_again_and_closing_stops_that(
    stack: Callable[..., Stack],
) -> None:
    s = stack()
    s.start_worker()
    # A bare mention on an issue: a fix, the sentence its instructions.
    first = s.job_of(s.comment("@qwenfix can you fix this? It adds one too many."))
    job = s.store.get(first)
    assert job is not None and (job.kind, job.instructions) == (
        "fix",
        "can you fix this? It adds one too many.",
    )
    wait_for(lambda: len(s.model.requests) >= 3, "the agent to be well under way")
    task = s.model.requests[0]["messages"][1]["content"]
    assert "It adds one too many." in task and "double(2) gives 5." in task
    assert s.sandboxes_left(), "a sandbox while the agent runs"

    stop = s.job_of(s.comment("@qwenfix stop"))
    assert wait_for(lambda: s.finished(first), "the run to stop", 60) == "stopped"
    assert s.finished(stop) == "done"
    job = s.store.get(first)
    assert job is not None and job.reason == "@octocat asked it to stop"
    status = s.status_comment()
    assert f"stopped job {first}: @octocat asked it to stop" in status
    assert "/jobs/" not in status  # no public URL set: no dashboard link
    asked = len(s.model.requests)
    wait_for(lambda: not s.sandboxes_left(), "the sandbox to be removed", 30)
    assert len(s.model.requests) <= asked + 1  # at most the request already under way
    assert s.fake.open_pulls(REPO) == []

    # Retry: the last job again, same kind and instructions, as a new job.
    retry = s.job_of(s.comment("@qwenfix retry"))
    assert wait_for(lambda: s.finished(retry), "the retry to be answered", 60) == "done"
    again = s.store.get(retry + 1)
    assert again is not None and again.delivery_id == f"retry-{retry}"
    assert (again.kind, again.instructions, again.sender) == ("fix", job.instructions, "octocat")
    wait_for(lambda: s.status(again.id) == "running", "the second run to start", 60)
    before = len(s.model.requests)
    wait_for(lambda: len(s.model.requests) >= before + 2, "the second run's agent")

    # Closing the issue stops it too, naming who closed it.
    payload = issue_closed(s.fake, REPO, 7, "octocat")
    closed = deliver(s.hook.url, SECRET, "issues", payload, "d-closed")
    assert closed.status_code == 202 and closed.json()["kind"] == "stop"
    assert wait_for(lambda: s.finished(again.id), "the second run to stop", 60) == "stopped"
    assert f"stopped job {again.id}: @octocat closed this issue" in s.status_comment()
    wait_for(lambda: not s.sandboxes_left(), "the second sandbox to be removed", 30)
    assert [j.kind for j in s.store.find(repo=REPO)] == ["stop", "fix", "retry", "stop", "fix"]


def test_help_unknown_words_queued_stops_dashboard_links_and_who_may_ask(
    stack: Callable[..., Stack],
) -> None:
    s = stack(PUBLIC_URL)
    s.start_worker("quick")  # nothing takes the agent queue yet: a fix stays queued there
    helped = s.job_of(s.comment("@qwenfix help"))
    unknown = s.job_of(s.comment("@qwenfix frobnicate"))
    wait_for(lambda: s.answer(helped) and s.answer(unknown), "both answers")
    for command in ("fix", "review", "maintain", "stop", "retry", "help"):
        assert f"`@qwenfix {command}" in s.answer(helped)
    assert s.answer(unknown).startswith(answer_marker(unknown))
    assert "`@qwenfix frobnicate` is not a command I know." in s.answer(unknown)
    assert s.answer(helped).split("\n", 1)[1] in s.answer(unknown)  # the same list
    assert wait_for(lambda: s.finished(unknown), "the answer's status") == "done"

    # The status comment links to the job's page on the dashboard.
    queued = s.job_of(s.comment("@qwenfix fix"))
    wait_for(lambda: s.status(queued) == "acknowledged", "the fix to be acknowledged")
    assert f"[Job {queued} on the dashboard]({PUBLIC_URL}/jobs/{queued})" in s.status_comment()

    # Someone the receiver lets through but who cannot write: refused by the worker's
    # permission check, and the job goes on waiting.
    refused = s.job_of(s.comment("@qwenfix stop", sender="reader", association="COLLABORATOR"))
    assert wait_for(lambda: s.finished(refused), "the refusal") == "refused"
    assert s.status(queued) == "acknowledged"
    # ... who may still have the list of commands.
    reader_help = s.job_of(s.comment("@qwenfix help", sender="reader", association="COLLABORATOR"))
    assert wait_for(lambda: s.answer(reader_help), "the reader's answer")

    # Outsiders get none of the commands: no job at all.
    jobs_before = len(s.store.find(repo=REPO))
    for body in ("@qwenfix help", "@qwenfix stop", "@qwenfix retry", "@qwenfix fix this"):
        ignored = s.comment(body, sender="stranger", association="NONE")
        assert ignored.status_code == 200 and ignored.json()["status"] == "ignored"
    assert len(s.store.find(repo=REPO)) == jobs_before

    # Stopped while it waits in the queue: it never runs.
    stop = s.job_of(s.comment("@qwenfix stop"))
    assert wait_for(lambda: s.finished(queued), "the queued fix to stop") == "stopped"
    assert wait_for(lambda: s.finished(stop), "the stop") == "done"
    status = s.status_comment()
    assert f"stopped job {queued}: @octocat asked it to stop" in status
    assert f"{PUBLIC_URL}/jobs/{queued}" in status
    s.stop_worker()
    s.start_worker()  # now the agent queue is served: the fix's message is taken
    wait_for(lambda: s.broker.llen("agent") == 0, "the agent queue to be drained")
    # Nothing to stop any more: said so.
    nothing = s.job_of(s.comment("@qwenfix stop"))
    wait_for(lambda: s.answer(nothing), "the answer that nothing runs")
    assert "nothing to stop" in s.answer(nothing)
    assert s.status(queued) == "stopped" and not s.ran(queued)
    assert s.model.requests == [] and not s.sandboxes_left()
