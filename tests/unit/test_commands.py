"""What people type: the comment read as a command, and the job (or no job) it becomes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from bot.contract.db import Job, make_engine, migrate
from bot.contract.job import JobKind, JobStatus, StopRequest, Trigger
from bot.contract.store import JobStore
from bot.receiver.commands import Command, find_command
from bot.receiver.routing import Ignored, route
from bot.settings import BotSettings
from tests import github_payloads as gh
from workers.jobs.acknowledge import needs_write_access
from workers.jobs.texts import dashboard_link, help_text


@pytest.mark.parametrize(
    ("body", "command"),
    [
        ("@qwenfix fix keep the API", Command("fix", "keep the API")),
        ("@qwenfix help", Command("help", "")),
        ("@qwenfix HELP me out", Command("help", "me out")),
        ("@qwenfix stop", Command("stop", "")),
        ("/qwenfix stop!", Command("stop", "!")),
        ("please @qwenfix retry", Command("retry", "")),
        # A bare mention: everything after it is the request.
        ("@qwenfix can you fix this?", Command("", "can you fix this?")),
        ("@qwenfix\nit breaks on None", Command("", "it breaks on None")),
        ("@qwenfix", Command("", "")),
        # One word that is no command: answered with the list of commands.
        ("@qwenfix frobnicate", Command("help", "", unknown="frobnicate")),
        ("@qwenfix rebase!", Command("help", "", unknown="rebase")),
        ("  /qwenfix deploy", Command("help", "", unknown="deploy")),
        # A mention in passing is no command, whatever word follows it.
        ("thanks @qwenfix", Command("", "", leading=False)),
        ("I asked @qwenfix yesterday", Command("", "yesterday", leading=False)),
        ("looks good\n@qwenfix make it faster", Command("", "make it faster")),
    ],
)
def test_commands_are_read_from_the_text(body: str, command: Command) -> None:
    assert find_command(body, "qwenfix") == command


def test_quoted_and_code_mentions_are_no_command() -> None:
    assert find_command("> @qwenfix stop\nquoting", "qwenfix") is None
    assert find_command("run `@qwenfix stop` to stop it", "qwenfix") is None


SETTINGS = BotSettings(webhook_secret=["s"], api_token="t")  # type: ignore[arg-type]


def decide(event: str, payload: dict[str, Any]) -> Trigger | Ignored:
    decision = route(event, payload, SETTINGS)
    assert isinstance(decision, Trigger | Ignored), decision
    return decision


@pytest.mark.parametrize(
    ("body", "on_pull", "issue_author", "kind", "instructions"),
    [
        ("@qwenfix can you fix this? it fails on []", False, "octocat", JobKind.FIX,
         "can you fix this? it fails on []"),
        ("@qwenfix", False, "octocat", JobKind.FIX, ""),
        ("@qwenfix help", False, "octocat", JobKind.HELP, ""),
        ("@qwenfix frobnicate", False, "octocat", JobKind.HELP, "frobnicate"),
        ("@qwenfix frobnicate", True, "someone", JobKind.HELP, "frobnicate"),
        ("@qwenfix stop", False, "octocat", JobKind.STOP, ""),
        ("@qwenfix stop", True, "someone", JobKind.STOP, ""),
        ("@qwenfix retry", True, "qwenfix[bot]", JobKind.RETRY, ""),
        # On a pull request qwenfix opened, a bare mention is feedback, as before.
        ("@qwenfix also handle None", True, "qwenfix[bot]", JobKind.ADDRESS_FEEDBACK,
         "also handle None"),
        ("nice, @qwenfix use a dict", True, "qwenfix[bot]", JobKind.ADDRESS_FEEDBACK,
         "use a dict"),
    ],
)  # fmt: skip
def test_comments_become_jobs(
    body: str, on_pull: bool, issue_author: str, kind: JobKind, instructions: str
) -> None:
    payload = gh.comment_created(body, on_pull=on_pull, issue_author=issue_author)
    decision = decide("issue_comment", payload)
    assert isinstance(decision, Trigger), decision
    assert (decision.kind, decision.number, decision.instructions) == (kind, 7, instructions)
    assert (decision.comment_id, decision.comment_kind) == (1001, "issue_comment")


@pytest.mark.parametrize(
    ("body", "on_pull", "reason"),
    [
        ("thanks @qwenfix", False, "(a mention in passing) does nothing on an issue"),
        ("@qwenfix please look", True, "(no verb) does nothing on a pull request"),
        ("@qwenfix fix it", True, "fix does nothing on a pull request"),
    ],
)
def test_mentions_that_ask_for_nothing(body: str, on_pull: bool, reason: str) -> None:
    decision = decide("issue_comment", gh.comment_created(body, on_pull=on_pull, issue_author="x"))
    assert isinstance(decision, Ignored) and reason in decision.reason


@pytest.mark.parametrize(
    "body", ["@qwenfix help", "@qwenfix stop", "@qwenfix retry", "@qwenfix please fix", "@qwenfix"]
)
@pytest.mark.parametrize("association", ["NONE", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR"])
def test_outsiders_get_no_command(body: str, association: str) -> None:
    decision = decide("issue_comment", gh.comment_created(body, association=association))
    assert isinstance(decision, Ignored) and "not a collaborator" in decision.reason


def test_commands_in_reviews_and_review_comments() -> None:
    review = decide("pull_request_review", gh.review_submitted("commented", "@qwenfix stop"))
    assert isinstance(review, Trigger) and review.kind == JobKind.STOP
    assert (review.number, review.comment_kind) == (9, "review")
    inline = decide("pull_request_review_comment", gh.review_comment("@qwenfix retry"))
    assert isinstance(inline, Trigger) and inline.kind == JobKind.RETRY
    assert inline.comment_kind == "review_comment"
    feedback = decide("pull_request_review_comment", gh.review_comment("@qwenfix rename this"))
    assert isinstance(feedback, Trigger) and feedback.kind == JobKind.ADDRESS_FEEDBACK


def closed(event: str, sender: str = "octocat", kind: str = "User") -> dict[str, Any]:
    item = gh.issue() if event == "issues" else gh.pull_request(9)
    key = "issue" if event == "issues" else "pull_request"
    return {
        "action": "closed",
        key: {**item, "state": "closed"},
        "repository": gh.REPO,
        "sender": gh.user(sender, kind),
        "installation": gh.INSTALLATION,
    }


@pytest.mark.parametrize(("event", "number"), [("issues", 7), ("pull_request", 9)])
def test_closing_stops_the_work_on_it(event: str, number: int) -> None:
    decision = decide(event, closed(event))
    assert isinstance(decision, Trigger)
    assert (decision.kind, decision.number, decision.sender) == (JobKind.STOP, number, "octocat")
    assert decision.comment_id is None


def test_qwenfix_closing_its_own_pull_request_stops_nothing() -> None:
    decision = decide("pull_request", closed("pull_request", "qwenfix[bot]", "Bot"))
    assert isinstance(decision, Ignored) and "bot" in decision.reason


def test_help_lists_every_command_and_the_rule() -> None:
    text = help_text("qwenfix")
    for command in ("fix", "review", "maintain", "stop", "retry", "help"):
        assert f"`@qwenfix {command}" in text
    assert "mention in passing" in text and "single word" in text
    assert help_text("qwenfix", "frobnicate").startswith("`@qwenfix frobnicate` is not a command")


def test_the_dashboard_link_only_with_a_public_url() -> None:
    assert dashboard_link(5, None) == "" and dashboard_link(5, "") == ""
    assert dashboard_link(5, "https://q.example/") == (
        "\n\n[Job 5 on the dashboard](https://q.example/jobs/5)"
    )


def test_a_stop_flags_unfinished_jobs_and_stops_those_not_yet_running(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    migrate(engine)
    store = JobStore(engine)

    def new(kind: JobKind, number: int = 7, repo: str = "o/r") -> int:
        trigger = Trigger(kind=kind, repo=repo, number=number, sender="a", installation_id=1)
        return store.create(f"d-{uuid.uuid4()}", "issue_comment", trigger)[0].id

    done, running, waiting = new(JobKind.FIX), new(JobKind.FIX), new(JobKind.REVIEW)
    elsewhere, other_repo, helped = (
        new(JobKind.FIX, 8),
        new(JobKind.FIX, 7, "o/x"),
        new(JobKind.HELP),
    )
    store.set_status(done, JobStatus.RESOLVED)
    store.set_status(running, JobStatus.RUNNING)
    store.set_status(waiting, JobStatus.ACKNOWLEDGED)
    stop = new(JobKind.STOP)
    later = new(JobKind.FIX)  # asked for after the stop: not stopped by it
    first = StopRequest(by="alice", why="@alice asked it to stop")
    asked, not_started = store.request_stop("o/r", 7, first, before=stop)
    assert (asked, not_started) == ([running, waiting], [waiting])
    assert [store.stop_request(j) for j in (running, waiting)] == [first, first]
    assert store.get(waiting).status == "stopped"  # type: ignore[union-attr]
    assert store.get(running).status == "running"  # type: ignore[union-attr]
    for untouched in (done, elsewhere, other_repo, helped, later):
        assert store.stop_request(untouched) is None
    # A second stop names nobody new: the first to ask is the one who stopped it.
    again = StopRequest(by="bob", why="@bob closed this issue")
    assert store.request_stop("o/r", 7, again, before=later + 1)[0] == [running, later]
    assert store.stop_request(running) == first
    assert store.stop_request(later) == again
    # What retry runs again: the newest job that is not a command.
    last = store.last_job("o/r", 7, before=stop)
    assert last is not None and last.id == waiting


@pytest.mark.parametrize(
    ("kind", "event", "needed"),
    [
        (JobKind.FIX, "issue_comment", True),
        (JobKind.STOP, "issue_comment", True),
        (JobKind.RETRY, "pull_request_review_comment", True),
        (JobKind.HELP, "issue_comment", False),
        (JobKind.STOP, "issues", False),  # closed: GitHub let them close it
        (JobKind.STOP, "pull_request", False),
        (JobKind.FIX_CI, "check_suite", False),
        (JobKind.MAINTENANCE, "schedule", False),
    ],
)
def test_who_must_be_able_to_write(kind: JobKind, event: str, needed: bool) -> None:
    assert needs_write_access(Job(kind=kind.value, event=event)) is needed
