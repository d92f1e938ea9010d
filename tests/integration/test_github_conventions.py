"""GitHub's conventions, against the fake over real HTTP: commits by the App's bot user,
a User-Agent naming qwenfix on every call (API and git), lists read whole past one page,
one retry layer (githubkit does not retry), and the config file in either place with the
owner's defaults from its `.github` repository."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from githubkit.exception import RequestFailed
from pydantic import SecretStr

from bot.embedded import ThreadedServer
from tests.fakes.github import FakeGitHub
from tests.helpers import git, make_repo
from workers.engine.git import GitError
from workers.engine.local_forge import Identity, LocalForge
from workers.github.app_auth import (
    PUSH_PERMISSIONS,
    RUN_PERMISSIONS,
    WORKFLOW_PUSH_PERMISSIONS,
    AppCredentials,
    GitHubApp,
)
from workers.github.forge import GitHubForge
from workers.github.remote import PushRefused, clone, push_replacing
from workers.github.user_agent import USER_AGENT
from workers.jobs.config_source import read_config
from workers.jobs.push_checks import changes_workflows

REPO = "octo-org/hello-world"
INSTALLATION = 7
MANY = 130  # more than GitHub's largest page (100)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeGitHub]:
    github = FakeGitHub()
    source = make_repo(tmp_path / "src", {"a.txt": "one\n"})
    github.add_repo(REPO, installation_id=INSTALLATION, source=source)
    github.add_issue(REPO, 1, "an issue")
    with ThreadedServer(github.asgi()) as server:
        github.base_url = server.url
        yield github
    github.close()


@pytest.fixture
def app(fake: FakeGitHub) -> GitHubApp:
    return GitHubApp(
        AppCredentials.load(
            app_id=fake.app_id,
            private_key=SecretStr(fake.private_key_pem),
            private_key_file=None,
            api_url=fake.base_url,
        )
    )


def forge(app: GitHubApp, permissions: dict[str, str] = RUN_PERMISSIONS) -> GitHubForge:
    return GitHubForge(app.for_repository(INSTALLATION, REPO, permissions), REPO)


def test_commits_are_the_bot_users_and_every_call_names_qwenfix(
    fake: FakeGitHub, app: GitHubApp, tmp_path: Path
) -> None:
    identity = app.bot_identity(INSTALLATION, REPO, fake.bot_login)
    bot_user_id = fake.user(fake.bot_login)["id"]
    assert bot_user_id != fake.app_id
    assert identity.name == "qwenfix[bot]"
    assert identity.email == f"{bot_user_id}+qwenfix[bot]@users.noreply.github.com"
    # Looked up once per GitHubApp (one per worker process), whichever job asks.
    assert app.bot_identity(INSTALLATION, REPO, fake.bot_login) is identity
    assert fake.requests.count(("GET", f"/users/{fake.bot_login}")) == 1

    token = app.installation_token(INSTALLATION, REPO, {"contents": "write"})
    work = tmp_path / "work"
    clone(f"{fake.base_url}/{REPO}.git", "main", work, token)
    base = git(work, "rev-parse", "HEAD").strip()
    diff = "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-one\n+two\n"
    LocalForge(work, identity).publish(
        base=base, diff=diff, branch="qwenfix/issue-1", message="Fix a\n", description=""
    )
    git(work, "checkout", "-q", "qwenfix/issue-1")
    push_replacing(work, "qwenfix/issue-1", token, identity)
    bare = fake.repos[REPO].bare
    assert bare is not None
    pushed = git(bare, "log", "-1", "--format=%an|%ae|%cn|%ce", "qwenfix/issue-1").strip()
    assert pushed == "|".join([identity.name, identity.email] * 2)

    assert any(".git" in path for _, path, _ in fake.user_agents)  # git's requests, too
    assert {agent for _, _, agent in fake.user_agents} == {USER_AGENT}
    assert USER_AGENT.startswith("qwenfix/") and "(+https://" in USER_AGENT


def test_every_list_is_read_past_its_first_page(fake: FakeGitHub, app: GitHubApp) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    number = fake.add_pull(REPO, head="main", base="main", title="a pull request")
    for i in range(MANY):
        fake.add_comment(REPO, number, f"@qwenfix comment {i}", "octocat")
    fake.add_review(
        REPO,
        number,
        author="octocat",
        state="CHANGES_REQUESTED",
        body="see inline",
        comments=[("a.txt", 1, f"inline {i}") for i in range(MANY)],
    )
    for i in range(MANY - 1):
        fake.add_review(REPO, number, author="octocat", state="COMMENTED", body=f"@qwenfix {i}")
    sha = fake.ref_sha(REPO, "refs/heads/main")
    assert sha is not None
    notes = [{"path": "a.txt", "start_line": i, "message": f"note {i}"} for i in range(MANY)]
    for i in range(MANY):
        fake.add_check_run(
            REPO,
            head_sha=sha,
            name=f"ci {i}",
            conclusion="failure",
            output={"title": "failed", "annotations": notes if i == MANY - 1 else []},
        )
    for i in range(MANY - 1):
        fake.update_ref(REPO, f"refs/heads/b{i}", sha)
        fake.add_pull(REPO, head=f"b{i}", base="main", title=f"pull {i}")

    github = forge(app, RUN_PERMISSIONS | {"checks": "read"})
    feedback = github.feedback_since(number, since, fake.bot_login, "qwenfix")
    kinds = [f.kind for f in feedback]
    assert (kinds.count("review"), kinds.count("review_comment"), kinds.count("comment")) == (
        MANY,
        MANY,
        MANY,
    )
    failures = github.failed_checks(sha)
    assert len(failures) == MANY
    assert sum(f"a.txt:{i}: note {i}" in failures[-1] for i in range(MANY)) == MANY
    assert len(github.open_pulls()) == MANY
    # GitHub's pages, honestly: 100 at most, a Link to the next, check runs wrapped.
    first = github.github.rest.checks.list_for_ref("octo-org", "hello-world", sha, per_page=500)
    assert first.parsed_data.total_count == MANY and len(first.parsed_data.check_runs) == 100
    assert 'rel="next"' in first.headers["link"] and "page=2" in first.headers["link"]


def test_githubkit_does_not_retry_a_502_the_task_does(fake: FakeGitHub, app: GitHubApp) -> None:
    github = forge(app)
    github.issue(1)  # the token is minted
    path = f"/repos/{REPO}/issues/1"
    before = fake.requests.count(("GET", path))
    fake.fail_next("GET", f"^{path}$", 502, times=3)
    with pytest.raises(RequestFailed) as failed:
        github.issue(1)
    assert failed.value.response.status_code == 502
    assert fake.requests.count(("GET", path)) == before + 1  # once: no retry underneath
    config = github.github.config
    assert config.auto_retry is None
    assert config.timeout.read == 30.0 and config.timeout.connect == 10.0
    assert config.user_agent == USER_AGENT


def test_the_config_is_read_from_either_place_over_the_owners_defaults(
    fake: FakeGitHub, app: GitHubApp, tmp_path: Path
) -> None:
    assert read_config(app, REPO, INSTALLATION) is None  # neither file, no .github repo
    own = make_repo(tmp_path / "own", {".github/qwenfix.yml": "test: make check\n"})
    fake.add_repo("octo-org/nested", installation_id=INSTALLATION, source=own)
    found = read_config(app, "octo-org/nested", INSTALLATION)
    assert found is not None and found.defaults is None
    assert (found.path, found.raw) == (".github/qwenfix.yml", b"test: make check\n")

    home = make_repo(
        tmp_path / "home",
        {".qwenfix.yml": "maintenance:\n  - task: lint-fix\n    schedule: '0 4 * * *'\n"},
    )
    fake.add_repo("octo-org/.github", installation_id=INSTALLATION, source=home)
    merged = read_config(app, "octo-org/nested", INSTALLATION)
    assert merged is not None and merged.defaults is not None
    assert merged.defaults.source == "octo-org/.github:.qwenfix.yml"
    assert merged.sha != found.sha  # the schedule is read again when the defaults change
    from workers.engine.repo_config import parse_repo_config

    config, _ = parse_repo_config(merged.raw, path=merged.path, defaults=merged.defaults)
    assert config.test == "make check"
    assert [t.task for t in config.maintenance or []] == ["lint-fix"]
    # An owner without a .github repository: no defaults, and no error.
    fake.add_repo("other/repo", installation_id=8, source=own)
    alone = read_config(app, "other/repo", 8)
    assert alone is not None and alone.defaults is None


def test_the_run_tasks_calls_retry_by_the_same_one_policy(fake: FakeGitHub, app: GitHubApp) -> None:
    from workers.runtime.retry import transient_delay

    identity = app.bot_identity(INSTALLATION, REPO, fake.bot_login)
    running = app.with_call_retry(transient_delay)  # what the run task hands its jobs
    assert running.bot_identity(INSTALLATION, REPO, fake.bot_login) is identity
    github = GitHubForge(running.for_repository(INSTALLATION, REPO, RUN_PERMISSIONS), REPO)
    github.issue(1)
    path = f"/repos/{REPO}/issues/1"
    before = fake.requests.count(("GET", path))
    fake.fail_next("GET", f"^{path}$", 502)
    assert github.issue(1) == ("an issue", "")
    assert fake.requests.count(("GET", path)) == before + 2  # one retry, by the policy
    fake.fail_next("GET", f"^{path}$", 404, message="Not Found")
    with pytest.raises(RequestFailed):  # not transient: not retried
        github.issue(1)
    assert fake.requests.count(("GET", path)) == before + 3


def test_a_workflow_change_is_pushed_only_with_the_workflows_permission_and_earlier_attempts_are_ours(  # noqa: E501
    fake: FakeGitHub, app: GitHubApp, tmp_path: Path
) -> None:
    identity = app.bot_identity(INSTALLATION, REPO, fake.bot_login)
    work = tmp_path / "work"
    plain = app.installation_token(INSTALLATION, REPO, PUSH_PERMISSIONS)
    clone(f"{fake.base_url}/{REPO}.git", "main", work, plain)
    base = git(work, "rev-parse", "HEAD").strip()
    diff = "--- /dev/null\n+++ b/.github/workflows/ci.yml\n@@ -0,0 +1 @@\n+on: push\n"
    assert changes_workflows(diff) and not changes_workflows(
        "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-one\n+two\n"
    )
    LocalForge(work, identity).publish(
        base=base, diff=diff, branch="qwenfix/issue-1", message="Add CI\n", description=""
    )
    git(work, "checkout", "-q", "qwenfix/issue-1")
    # As GitHub does: without `workflows: write` the push is refused, naming the file.
    with pytest.raises(GitError, match="without `workflows` permission"):
        push_replacing(work, "qwenfix/issue-1", plain, identity)
    push_replacing(
        work,
        "qwenfix/issue-1",
        app.installation_token(INSTALLATION, REPO, WORKFLOW_PUSH_PERMISSIONS),
        identity,
    )
    # An attempt committed under the App id's address (before the bot user's) is still
    # qwenfix's own, and a new attempt replaces it; anyone else's is never replaced.
    bare = fake.repos[REPO].bare
    assert bare is not None
    old = work.parent / "old"
    clone(f"{fake.base_url}/{REPO}.git", "main", old, plain)
    former = Identity(name=identity.name, email=identity.former_emails[0])
    change = "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-one\n+{}\n"
    for who, branch in ((former, "qwenfix/issue-2"), (Identity(), "qwenfix/issue-3")):
        LocalForge(old, who).publish(
            base=base, diff=change.format("earlier"), branch=branch, message="x\n", description=""
        )
        git(old, "checkout", "-q", branch)
        push_replacing(old, branch, plain, who)
        LocalForge(work, identity).publish(
            base=base, diff=change.format("new"), branch=branch, message="y\n", description=""
        )
        git(work, "checkout", "-q", branch)
    git(work, "checkout", "-q", "qwenfix/issue-2")
    push_replacing(work, "qwenfix/issue-2", plain, identity)
    assert git(bare, "log", "-1", "--format=%ae", "qwenfix/issue-2").strip() == identity.email
    git(work, "checkout", "-q", "qwenfix/issue-3")
    with pytest.raises(PushRefused, match="has commits by"):
        push_replacing(work, "qwenfix/issue-3", plain, identity)
