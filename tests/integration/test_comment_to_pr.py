"""From an `@qwenfix fix` comment to a pull request, through every real part: the
receiver over HTTP, Redis, a Celery worker process, git over smart HTTP, Docker, and the
scripted model. GitHub is the fake one; the model is scripted."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.embedded import ThreadedServer
from bot.receiver.app import create_app
from tests import github_payloads as gh
from tests.conftest import fresh_redis
from tests.fakes.github import FakeGitHub
from tests.fakes.model_server import ScriptedModelServer
from tests.helpers import (
    BUGGY_REPO,
    FIX_STEPS,
    call,
    deliver,
    make_receiver,
    make_repo,
    start_worker,
    step,
    stop_process,
    wait_for,
    worker_env,
)

REDIS_DB = 10
SECRET = "e2e-secret"
REPO = "octo-org/hello-world"


class Stack:
    def __init__(
        self, tmp: Path, steps: list[dict[str, Any]], files: dict[str, str | bytes] | None = None
    ) -> None:
        self.tmp = tmp
        self.redis_url, self.broker = fresh_redis(REDIS_DB)
        self.fake = FakeGitHub()
        source = make_repo(tmp / "source", files or BUGGY_REPO)
        self.fake.add_repo(
            REPO, installation_id=42, collaborators={"octocat": "admin"}, source=source
        )
        self.fake.add_issue(REPO, 7, "double() is wrong", "double(2) gives 5. test_double fails.")
        database = f"sqlite:///{tmp / 'jobs.db'}"
        self.store, receiver = make_receiver(database, self.redis_url, SECRET)
        self.model = ScriptedModelServer({"steps": steps}).start()
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
        )
        self.worker: subprocess.Popen[str] | None = None

    def start_worker(self) -> None:
        self.worker = start_worker(self.env, self.tmp / "worker.log", "quick,agent")

    def stop_worker(self, sig: int = signal.SIGTERM) -> None:
        if self.worker is not None:
            stop_process(self.worker, sig)
            self.worker = None

    def close(self) -> None:
        self.stop_worker()
        self.hook.__exit__()
        self.github.__exit__()
        self.model.stop()
        self.fake.close()
        print(
            (self.tmp / "worker.log").read_text()[-6000:]
            if (self.tmp / "worker.log").exists()
            else ""
        )

    def deliver(self, event: str, payload: dict[str, Any], delivery: str) -> dict[str, Any]:
        answer: dict[str, Any] = deliver(self.hook.url, SECRET, event, payload, delivery).json()
        return answer

    def comment(self, body: str, delivery: str, sender: str = "octocat") -> httpx.Response:
        comment_id = self.fake.add_comment(REPO, 7, body, sender)
        payload = gh.comment_created(body, sender=sender)
        payload["comment"]["id"] = comment_id
        return deliver(self.hook.url, SECRET, "issue_comment", payload, delivery)

    def finished(self, job_id: int) -> str | None:
        job = self.store.get(job_id)
        done = {
            "resolved",
            "unresolved",
            "unverified",
            "error",
            "blocked",
            "refused",
            "failed",
            "reviewed",
            "skipped",
        }
        return job.status if job is not None and job.status in done else None

    def status_comments(self) -> list[str]:
        return [
            c["body"]
            for c in self.fake.issue_comments(REPO, 7)
            if c["author"] == self.fake.bot_login
        ]

    def git(self, *args: str) -> str:
        bare = self.fake.repos[REPO].bare
        return subprocess.run(
            ["git", "-C", str(bare), *args], capture_output=True, text=True, check=True
        ).stdout


@pytest.fixture
def stack(tmp_path: Path, docker_client: Any) -> Iterator[Callable[..., Stack]]:
    made: list[Stack] = []

    def build(steps: list[dict[str, Any]], files: dict[str, str | bytes] | None = None) -> Stack:
        made.append(Stack(tmp_path, steps, files))
        return made[-1]

    yield build
    for s in made:
        s.close()


def test_comment_becomes_one_pull_request_with_the_evidence(stack: Callable[..., Stack]) -> None:
    s = stack(FIX_STEPS)
    # GitHub having a bad minute: a 502 on opening the pull request, a secondary rate
    # limit on reading the issue. Both are retried, honouring Retry-After.
    s.fake.fail_next("POST", r"/pulls$", 502, message="Bad Gateway")
    s.fake.fail_next(
        "GET",
        r"/issues/7$",
        403,
        headers={"Retry-After": "1"},
        message="You have exceeded a secondary rate limit.",
    )
    s.start_worker()
    first = s.comment("@qwenfix fix please keep it simple", "delivery-a")
    assert first.status_code == 202
    again = s.comment("@qwenfix fix please keep it simple", "delivery-a")  # redelivered
    assert again.json()["status"] == "duplicate"
    job_id = first.json()["job_id"]
    assert wait_for(lambda: s.finished(job_id), "the job to finish") == "resolved"

    pulls = s.fake.open_pulls(REPO)
    assert len(pulls) == 1
    pull = pulls[0]
    assert (pull["head"], pull["base"], pull["author"]) == (
        "qwenfix/issue-7",
        "main",
        s.fake.bot_login,
    )
    assert pull["title"] == "Fix double()"
    for expected in (
        "double() added one too many.",
        "Fixes #7",
        "2 failed → passed: 2 passed",
        "`mathlib.py`",
        "4 turn(s)",
    ):
        assert expected in pull["body"]
    assert pull["reviewers"] == ["octocat"]
    # The branch on GitHub holds the verified fix, one commit by the bot, crediting the asker.
    assert "return x * 2" in s.git("show", "qwenfix/issue-7:mathlib.py")
    log = s.git("log", "-1", "--format=%an%n%B", "qwenfix/issue-7")
    assert log.startswith(s.fake.bot_login)
    # Author and committer are the bot user (its id, not the App's), as GitHub attributes.
    email = f"{s.fake.user(s.fake.bot_login)['id']}+{s.fake.bot_login}@users.noreply.github.com"
    assert s.git("log", "-1", "--format=%ae %ce", "qwenfix/issue-7").split() == [email, email]
    assert "Co-authored-by: octocat <octocat@users.noreply.github.com>" in log
    assert s.git("rev-list", "--count", "main..qwenfix/issue-7").strip() == "1"
    # One status comment, now pointing at the pull request; the model saw the instructions.
    statuses = s.status_comments()
    assert len(statuses) == 1 and "✅ qwenfix opened" in statuses[0]
    assert f"/pull/{pull['number']}" in statuses[0]
    task = s.model.requests[0]["messages"][1]["content"]
    assert "please keep it simple" in task and "double(2) gives 5" in task
    assert [m for m, p in s.fake.requests if p.endswith("/pulls") and m == "POST"] == [
        "POST",
        "POST",
    ]
    # No token reached the model.
    assert not any(token in json.dumps(s.model.requests) for token in s.fake.grants)


def test_unresolved_leaves_one_comment_and_no_pull_request(stack: Callable[..., Stack]) -> None:
    wrong = step(call("str_replace", path="mathlib.py", old_str="x + x + 1", new_str="x + x + 2"))
    give_up = step(call("submit", summary="Changed the constant."))
    s = stack([wrong, give_up, give_up, give_up, give_up, give_up])
    s.start_worker()
    job_id = s.comment("@qwenfix fix", "delivery-b").json()["job_id"]
    assert wait_for(lambda: s.finished(job_id), "the job to finish") == "unresolved"
    assert s.fake.open_pulls(REPO) == []
    assert "qwenfix/issue-7" not in s.git("branch", "--list")
    statuses = s.status_comments()
    assert len(statuses) == 1
    assert "could not make the tests pass" in statuses[0]
    assert "What it tried: Changed the constant." in statuses[0]
    assert "test_double" in statuses[0]


def test_a_worker_killed_mid_run_is_replaced_and_still_one_pull_request(
    stack: Callable[..., Stack], docker_client: Any
) -> None:
    slow = {**step(call("view", path="mathlib.py")), "delay_s": 20}
    s = stack([slow, *FIX_STEPS])
    s.env["QWENFIX_VISIBILITY_TIMEOUT_S"] = "5"
    s.env["QWENFIX_RESTORE_SWEEP_S"] = "2"
    s.start_worker()
    job_id = s.comment("@qwenfix fix", "delivery-c").json()["job_id"]
    wait_for(lambda: s.model.requests, "the first model request")
    s.stop_worker(signal.SIGKILL)  # mid-run: the model has not answered yet
    assert s.store.get(job_id).status == "running"  # type: ignore[union-attr]
    s.start_worker()
    assert wait_for(lambda: s.finished(job_id), "the job to run again", 180) == "resolved"
    assert len(s.fake.open_pulls(REPO)) == 1
    assert len(s.status_comments()) == 1
    # The killed run's sandbox is left for the janitor; remove it here.
    for container in docker_client.containers.list(
        all=True, filters={"label": "io.qwenfix.sandbox"}
    ):
        container.remove(force=True)


def test_unresolved_can_leave_a_draft_pull_request(stack: Callable[..., Stack]) -> None:
    wrong = step(call("str_replace", path="mathlib.py", old_str="x + x + 1", new_str="x + x + 2"))
    give_up = step(call("submit", summary="Changed the constant."))
    files = {**BUGGY_REPO, ".qwenfix.yml": "test: python -m pytest -q\non_unresolved: draft_pr\n"}
    s = stack([wrong, *[give_up] * 5], files)
    s.start_worker()
    job_id = s.comment("@qwenfix fix", "delivery-d").json()["job_id"]
    assert wait_for(lambda: s.finished(job_id), "the job to finish") == "unresolved"
    pulls = s.fake.open_pulls(REPO)
    assert len(pulls) == 1 and pulls[0]["draft"]
    assert pulls[0]["title"].startswith("WIP: ")
    assert "the tests do not pass with this change" in pulls[0]["body"]
    assert "x + x + 2" in s.git("show", "qwenfix/issue-7:mathlib.py")
    statuses = s.status_comments()
    assert len(statuses) == 1 and "The attempt is in a draft pull request:" in statuses[0]


@pytest.mark.parametrize("on_unverified", ["comment", "draft_pr"])
def test_a_fix_that_edits_a_test_is_unverified_and_says_why(
    stack: Callable[..., Stack], on_unverified: str
) -> None:
    fix = step(call("str_replace", path="mathlib.py", old_str="x + x + 1", new_str="x * 2"))
    edit = step(
        call(
            "str_replace",
            path="tests/test_mathlib.py",
            old_str="double(0) == 1  # wrong",
            new_str="double(0) == 0",
        )
    )
    submit = step(call("submit", summary="Fixed double() and a wrong assertion."))
    files = {
        **BUGGY_REPO,
        ".qwenfix.yml": f"test: python -m pytest -q\non_unverified: {on_unverified}\n",
        "tests/test_mathlib.py": "from mathlib import double\n\n\ndef test_double():\n"
        "    assert double(2) == 4\n\n\ndef test_double_zero():"
        "\n    assert double(0) == 1  # wrong\n",
    }
    s = stack([fix, edit, submit, submit], files)
    s.start_worker()
    job_id = s.comment("@qwenfix fix", f"delivery-u-{on_unverified}").json()["job_id"]
    assert wait_for(lambda: s.finished(job_id), "the job to finish") == "unverified"
    [status] = s.status_comments()
    assert "could not verify" in status
    assert "`tests/test_mathlib.py (test, modified)`" in status
    pulls = s.fake.open_pulls(REPO)
    if on_unverified == "comment":
        assert pulls == [] and "No pull request was opened." in status
    else:
        assert len(pulls) == 1 and pulls[0]["draft"]
        assert "it passes only with its own edits to the tests" in pulls[0]["body"]
        assert "The attempt is in a draft pull request:" in status


def test_an_error_is_explained_with_what_to_do(stack: Callable[..., Stack]) -> None:
    files = {**BUGGY_REPO, ".qwenfix.yml": "test: [unclosed\n"}
    s = stack([], files)
    s.start_worker()
    job_id = s.comment("@qwenfix fix", "delivery-f").json()["job_id"]
    assert wait_for(lambda: s.finished(job_id), "the job to finish") == "error"
    statuses = s.status_comments()
    assert len(statuses) == 1
    assert "❌ qwenfix could not work on this" in statuses[0]
    assert ".qwenfix.yml is not valid YAML" in statuses[0]
    assert "What you can do:" in statuses[0]
    assert s.fake.open_pulls(REPO) == []


def test_review_request_yields_one_review_on_diff_lines(
    stack: Callable[..., Stack], tmp_path: Path
) -> None:
    review = step(
        call(
            "submit_review",
            summary="One real problem.",
            comments=[
                {
                    "path": "mathlib.py",
                    "line": 2,
                    "side": "RIGHT",
                    "body": "This still adds one.\n```suggestion\n    return x * 2\n```",
                },
                {"path": "tests/test_mathlib.py", "line": 1, "body": "Unrelated nit."},
            ],
        )
    )
    files = {**BUGGY_REPO, ".qwenfix.yml": "test: python -m pytest -q\nreview_tests: true\n"}
    s = stack([step(call("view", path="mathlib.py")), review], files)
    work = tmp_path / "contrib"
    subprocess.run(["git", "clone", "-q", str(s.fake.repos[REPO].bare), str(work)], check=True)
    (work / "mathlib.py").write_text("def double(x):\n    return x + x + 1  # faster\n")
    subprocess.run(
        [
            "git",
            "-C",
            str(work),
            "-c",
            "user.name=c",
            "-c",
            "user.email=c@x",
            "commit",
            "-qam",
            "tweak",
        ],
        check=True,
    )
    subprocess.run(
        ["git", "-C", str(work), "push", "-q", "origin", "HEAD:refs/heads/tweak"], check=True
    )
    number = s.fake.add_pull(REPO, head="tweak", base="main", title="Make double faster")
    s.start_worker()
    comment_id = s.fake.add_comment(REPO, number, "@qwenfix review", "octocat")
    payload = gh.comment_created("@qwenfix review", on_pull=True)
    payload["issue"]["number"], payload["comment"]["id"] = number, comment_id
    answer = s.deliver("issue_comment", payload, "delivery-g")
    assert answer["kind"] == "review"
    assert wait_for(lambda: s.finished(answer["job_id"]), "the review") == "reviewed"
    reviews = list(s.fake.reviews.values())
    assert len(reviews) == 1 and reviews[0]["state"] == "COMMENTED"
    assert reviews[0]["body"].startswith("One real problem.")
    assert "`tests/test_mathlib.py` line 1: Unrelated nit." in reviews[0]["body"]
    assert (
        "Tests on the head commit, run by qwenfix: failed (exit 1): 2 failed." in reviews[0]["body"]
    )
    inline = list(s.fake.review_comments.values())
    assert [(c["path"], c["line"], c["side"]) for c in inline] == [("mathlib.py", 2, "RIGHT")]
    assert "```suggestion" in inline[0]["body"]
    # The model saw the diff, and the head commit's code.
    task = s.model.requests[0]["messages"][1]["content"]
    assert "+    return x + x + 1  # faster" in task
    assert s.fake.open_pulls(REPO)[0]["head"] == "tweak"  # nothing pushed, nothing opened


def test_review_feedback_becomes_a_follow_up_commit_keeping_human_commits(
    stack: Callable[..., Stack], tmp_path: Path
) -> None:
    steps = [
        step(call("view", path="mathlib.py")),
        step(
            call(
                "str_replace", path="mathlib.py", old_str="return x + x\n", new_str="return x * 2\n"
            )
        ),
        step(call("run_tests")),
        step(
            call(
                "submit",
                summary="Wrote double() as a multiplication.",
                declined=["Renaming double() to twice(): it is public API."],
            )
        ),
    ]
    s = stack(steps)
    s.fake.repos[REPO].collaborators["hubot"] = "write"
    work = tmp_path / "pr"
    subprocess.run(["git", "clone", "-q", str(s.fake.repos[REPO].bare), str(work)], check=True)
    (work / "mathlib.py").write_text("def double(x):\n    return x + x\n")
    bot = [
        "-c",
        "user.name=qwenfix[bot]",
        "-c",
        f"user.email={s.fake.app_id}+qwenfix[bot]@users.noreply.github.com",
    ]
    subprocess.run(["git", "-C", str(work), *bot, "commit", "-qam", "Fix double()"], check=True)
    (work / "NOTES.md").write_text("a maintainer's note\n")
    subprocess.run(["git", "-C", str(work), "add", "NOTES.md"], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(work),
            "-c",
            "user.name=Maintainer",
            "-c",
            "user.email=m@example.com",
            "commit",
            "-qm",
            "Add a note",
        ],
        check=True,
    )
    subprocess.run(
        ["git", "-C", str(work), "push", "-q", "origin", "HEAD:refs/heads/qwenfix/issue-7"],
        check=True,
    )
    number = s.fake.add_pull(
        REPO, head="qwenfix/issue-7", base="main", title="Fix double()", author="qwenfix[bot]"
    )
    review_id = s.fake.add_review(
        REPO,
        number,
        author="hubot",
        state="CHANGES_REQUESTED",
        body="Please use multiplication.",
        comments=[("mathlib.py", 2, "x * 2 reads better")],
    )
    s.start_worker()
    payload = gh.review_submitted("changes_requested", "Please use multiplication.")
    payload["pull_request"]["number"], payload["review"]["id"] = number, review_id
    answer = s.deliver("pull_request_review", payload, "delivery-h")
    assert answer["kind"] == "address-feedback"
    assert wait_for(lambda: s.finished(answer["job_id"]), "the follow-up") == "resolved"
    log = s.git("log", "--format=%an|%s", "main..qwenfix/issue-7").splitlines()
    assert log[0].startswith("qwenfix[bot]|Address review feedback")
    assert log[1:] == ["Maintainer|Add a note", "qwenfix[bot]|Fix double()"]  # kept, in order
    assert "return x * 2" in s.git("show", "qwenfix/issue-7:mathlib.py")
    task = s.model.requests[0]["messages"][1]["content"]
    assert "x * 2 reads better" in task and "Please use multiplication." in task
    replies = [c for c in s.fake.review_comments.values() if c.get("reply_to")]
    assert len(replies) == 1 and replies[0]["body"].startswith("Addressed in ")
    summary = [
        c["body"]
        for c in s.fake.issue_comments(REPO, number)
        if c["author"] == s.fake.bot_login and "Pushed" in c["body"]
    ]
    assert len(summary) == 1 and "@hubot: Please use multiplication." in summary[0]
    assert "Declined:\n- Renaming double() to twice(): it is public API." in summary[0]
    assert len(s.fake.open_pulls(REPO)) == 1


def _bot_branch(s: Stack, tmp_path: Path, content: str) -> str:
    """A qwenfix/issue-7 branch with one commit by the bot; returns its sha."""
    work = tmp_path / "bot-branch"
    subprocess.run(["git", "clone", "-q", str(s.fake.repos[REPO].bare), str(work)], check=True)
    (work / "mathlib.py").write_text(content)
    subprocess.run(
        [
            "git",
            "-C",
            str(work),
            "-c",
            "user.name=qwenfix[bot]",
            "-c",
            f"user.email={s.fake.app_id}+qwenfix[bot]@users.noreply.github.com",
            "commit",
            "-qam",
            "Fix double()",
        ],
        check=True,
    )
    subprocess.run(
        ["git", "-C", str(work), "push", "-q", "origin", "HEAD:refs/heads/qwenfix/issue-7"],
        check=True,
    )
    return subprocess.run(
        ["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _check_suite(s: Stack, number: int, sha: str, delivery: str) -> dict[str, Any]:
    payload = gh.check_suite("failure")
    payload["check_suite"]["pull_requests"] = [{"number": number}]
    payload["check_suite"]["head_sha"] = sha
    return s.deliver("check_suite", payload, delivery)


def test_failed_ci_on_its_own_pull_request_is_fixed_within_the_attempt_cap(
    stack: Callable[..., Stack], tmp_path: Path
) -> None:
    s = stack(FIX_STEPS)
    s.env["QWENFIX_MAX_CI_ATTEMPTS"] = "1"
    sha = _bot_branch(s, tmp_path, "def double(x):\n    return x + x + 1  # quick\n")
    number = s.fake.add_pull(
        REPO, head="qwenfix/issue-7", base="main", title="Fix double()", author="qwenfix[bot]"
    )
    s.fake.add_check_run(
        REPO,
        head_sha=sha,
        name="CI / tests",
        conclusion="failure",
        output={
            "title": "2 tests failed",
            "summary": "pytest exited 1",
            "text": "FAILED tests/test_mathlib.py::test_double - assert 5 == 4",
            "annotations": [
                {"path": "tests/test_mathlib.py", "start_line": 5, "message": "assert 5 == 4"}
            ],
        },
    )
    s.start_worker()
    answer = _check_suite(s, number, sha, "delivery-i")
    assert answer["kind"] == "fix-ci"
    assert wait_for(lambda: s.finished(answer["job_id"]), "the CI fix") == "resolved"
    assert "return x * 2" in s.git("show", "qwenfix/issue-7:mathlib.py")
    assert s.git("rev-list", "--count", "main..qwenfix/issue-7").strip() == "2"
    task = s.model.requests[0]["messages"][1]["content"]
    assert "Check `CI / tests` concluded failure." in task
    assert "tests/test_mathlib.py:5: assert 5 == 4" in task
    # CI fails again: the cap of one attempt stops qwenfix, which says so.
    again = _check_suite(s, number, s.git("rev-parse", "qwenfix/issue-7").strip(), "delivery-j")
    assert wait_for(lambda: s.finished(again["job_id"]), "the second job") == "skipped"
    status = [
        c["body"] for c in s.fake.issue_comments(REPO, number) if c["author"] == s.fake.bot_login
    ]
    assert len(status) == 1 and "stopped fixing the checks" in status[0]
    assert len(s.model.requests) == 4  # the second job never reached the model


def test_review_of_a_pull_request_from_a_fork(stack: Callable[..., Stack], tmp_path: Path) -> None:
    review = step(
        call(
            "submit_review",
            summary="Looks wrong.",
            comments=[{"path": "mathlib.py", "line": 2, "body": "Still off by one."}],
        )
    )
    s = stack([review])
    fork_source = tmp_path / "fork"
    subprocess.run(
        ["git", "clone", "-q", str(s.fake.repos[REPO].bare), str(fork_source)], check=True
    )
    (fork_source / "mathlib.py").write_text("def double(x):\n    return 2 * x + 1\n")
    subprocess.run(
        [
            "git",
            "-C",
            str(fork_source),
            "-c",
            "user.name=c",
            "-c",
            "user.email=c@x",
            "commit",
            "-qam",
            "from a fork",
        ],
        check=True,
    )
    subprocess.run(["git", "-C", str(fork_source), "branch", "-q", "fork-change"], check=True)
    # The fork belongs to someone else: not in qwenfix's installation, public.
    s.fake.add_repo("contributor/hello-world", installation_id=99, source=fork_source)
    number = s.fake.add_pull(
        REPO,
        head="fork-change",
        base="main",
        title="From a fork",
        head_repo="contributor/hello-world",
    )
    s.start_worker()
    comment_id = s.fake.add_comment(REPO, number, "@qwenfix review", "octocat")
    payload = gh.comment_created("@qwenfix review", on_pull=True)
    payload["issue"]["number"], payload["comment"]["id"] = number, comment_id
    answer = s.deliver("issue_comment", payload, "delivery-k")
    assert wait_for(lambda: s.finished(answer["job_id"]), "the review") == "reviewed"
    inline = list(s.fake.review_comments.values())
    assert [(c["path"], c["line"]) for c in inline] == [("mathlib.py", 2)]
    assert "+    return 2 * x + 1" in s.model.requests[0]["messages"][1]["content"]
    # Nothing was pushed anywhere: the fork has only its own branch, the base repo none.
    assert "fork-change" not in s.git("branch", "--list")
