"""The worker's first step on a job, against the fake GitHub over real HTTP: App JWT ->
narrowed installation token -> permission check -> 👀 and one status comment."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.contract.db import make_engine, migrate
from bot.contract.job import JobKind, Trigger
from bot.contract.store import JobStore
from bot.embedded import ThreadedServer
from tests.fakes.github import FakeGitHub
from workers.github.app_auth import AppCredentials, AppCredentialsError, GitHubApp
from workers.github.forge import STATUS_MARKER
from workers.jobs.acknowledge import Acknowledged, acknowledge

REPO = "octo-org/hello-world"


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, GitHubApp]]:
    fake = FakeGitHub()
    fake.add_repo(
        REPO,
        installation_id=42,
        collaborators={"octocat": "admin", "maint": "maintain", "reader": "read"},
    )
    fake.add_repo("octo-org/other", installation_id=42)
    fake.add_issue(REPO, 7, "mean() is wrong")
    with ThreadedServer(fake.asgi()) as server:
        fake.base_url = server.url
        # One GitHubApp per test, as a worker process keeps one: its token cache matters.
        yield (
            fake,
            GitHubApp(
                AppCredentials.load(
                    app_id=fake.app_id,
                    private_key=SecretStr(fake.private_key_pem),
                    private_key_file=None,
                    api_url=server.url,
                )
            ),
        )


@pytest.fixture
def jobs(tmp_path: Path) -> JobStore:
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    migrate(engine)
    return JobStore(engine)


def new_job(
    jobs: JobStore, fake: FakeGitHub, sender: str = "octocat", kind: JobKind = JobKind.FIX
) -> int:
    comment = fake.add_comment(REPO, 7, "@qwenfix fix", sender)
    job, _ = jobs.create(
        str(uuid.uuid4()),
        "issue_comment",
        Trigger(
            kind=kind,
            repo=REPO,
            number=7,
            sender=sender,
            installation_id=42,
            comment_id=comment,
            comment_kind="issue_comment",
        ),
    )
    return job.id


def run(
    job_id: int,
    jobs: JobStore,
    fake: FakeGitHub,
    app: GitHubApp,
    queued: list[int],
    on_refusal: str = "comment",
) -> Acknowledged:
    return acknowledge(
        job_id,
        jobs=jobs,
        app=app,
        bot_login=fake.bot_login,
        on_refusal=on_refusal,
        queue_run=queued.append,
    )


def test_write_access_is_acknowledged_once(github: Any, jobs: JobStore) -> None:
    fake, app = github
    queued: list[int] = []
    job_id = new_job(jobs, fake)
    assert run(job_id, jobs, fake, app, queued) == Acknowledged.ACKNOWLEDGED
    assert queued == [job_id]
    assert jobs.get(job_id).status == "acknowledged"  # type: ignore[union-attr]
    assert [(r["kind"], r["content"]) for r in fake.reactions] == [("issue_comment", "eyes")]
    status = [c for c in fake.issue_comments(REPO, 7) if c["author"] == fake.bot_login]
    assert len(status) == 1 and status[0]["body"].startswith(STATUS_MARKER)
    assert f"asked by @octocat (job {job_id})" in status[0]["body"]
    # The token was narrowed to this repository and to what acknowledging needs.
    assert fake.token_requests == [
        {
            "installation_id": 42,
            "repositories": ["hello-world"],
            "permissions": {"issues": "write", "pull_requests": "write", "metadata": "read"},
        }
    ]
    # A redelivered task changes nothing.
    assert run(job_id, jobs, fake, app, queued) == Acknowledged.ALREADY_HANDLED
    assert queued == [job_id] and len(fake.reactions) == 1


def test_a_second_job_on_the_same_issue_edits_the_same_status_comment(
    github: Any, jobs: JobStore
) -> None:
    fake, app = github
    for _ in range(2):
        run(new_job(jobs, fake, sender="maint"), jobs, fake, app, [])
    status = [c for c in fake.issue_comments(REPO, 7) if c["author"] == fake.bot_login]
    assert len(status) == 1, "never a second status comment"
    # ... and the installation token was reused, not minted again.
    assert len(fake.token_requests) == 1


def test_no_write_access_is_refused_politely_or_silently(github: Any, jobs: JobStore) -> None:
    fake, app = github
    queued: list[int] = []
    job_id = new_job(jobs, fake, sender="reader")
    assert run(job_id, jobs, fake, app, queued) == Acknowledged.REFUSED
    job = jobs.get(job_id)
    assert job is not None and job.status == "refused"
    assert job.reason == f"@reader does not have write access to {REPO}"
    replies = [c["body"] for c in fake.issue_comments(REPO, 7) if c["author"] == fake.bot_login]
    assert replies == [
        "Sorry @reader, only people with write access to this repository "
        "can ask qwenfix to work on it."
    ]
    assert queued == [] and fake.reactions == []
    silent = new_job(jobs, fake, sender="stranger")
    assert run(silent, jobs, fake, app, queued, on_refusal="silent") == Acknowledged.REFUSED
    assert len([c for c in fake.issue_comments(REPO, 7) if c["author"] == fake.bot_login]) == 1


def test_server_errors_are_retried_by_the_task_not_the_client(github: Any, jobs: JobStore) -> None:
    from githubkit.exception import RequestFailed

    from workers.runtime.retry import transient_delay

    fake, app = github
    fake.fail_next("GET", r"/collaborators/.*/permission$", 502, times=1, message="Bad Gateway")
    job_id = new_job(jobs, fake)
    # One retry layer: githubkit hands the 502 up at once, the task's policy retries it.
    with pytest.raises(RequestFailed) as failed:
        run(job_id, jobs, fake, app, [])
    assert len([p for m, p in fake.requests if p.endswith("/permission")]) == 1
    assert transient_delay(failed.value, 0) is not None
    assert run(job_id, jobs, fake, app, []) == Acknowledged.ACKNOWLEDGED
    assert len([p for m, p in fake.requests if p.endswith("/permission")]) == 2


def test_missing_job_and_bad_credentials(github: Any, jobs: JobStore) -> None:
    fake, app = github
    assert run(999, jobs, fake, app, []) == Acknowledged.MISSING
    url = fake.base_url
    with pytest.raises(AppCredentialsError, match="QWENFIX_GITHUB_APP_ID"):
        AppCredentials.load(app_id=None, private_key=None, private_key_file=None, api_url=url)
    with pytest.raises(AppCredentialsError, match="PRIVATE_KEY"):
        AppCredentials.load(app_id=1, private_key=None, private_key_file=None, api_url=url)
    with pytest.raises(AppCredentialsError, match="No such file"):
        AppCredentials.load(
            app_id=1, private_key=None, private_key_file=Path("/nope.pem"), api_url=url
        )


def test_a_second_request_while_a_job_runs_is_told_so(github: Any, jobs: JobStore) -> None:
    fake, app = github
    job_id = new_job(jobs, fake)
    outcome = acknowledge(
        job_id,
        jobs=jobs,
        app=app,
        bot_login=fake.bot_login,
        on_refusal="comment",
        queue_run=lambda _: None,
        running_on=lambda target: "17" if target == f"{REPO}#7" else None,
    )
    assert outcome == Acknowledged.ACKNOWLEDGED
    status = [c["body"] for c in fake.issue_comments(REPO, 7) if c["author"] == fake.bot_login]
    assert "Job 17 is still running here; this request starts as soon as it finishes." in status[0]
