"""The fake GitHub itself, through githubkit and git: it must behave like GitHub where
qwenfix depends on it (auth scopes, shapes, git over HTTP, errors)."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import RequestFailed

from bot.embedded import ThreadedServer
from tests.fakes.github import FakeGitHub
from tests.helpers import git, make_repo

REPO = "octo-org/hello-world"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeGitHub]:
    github = FakeGitHub()
    source = make_repo(tmp_path / "src", {"a.txt": "one\n"})
    github.add_repo(REPO, installation_id=7, source=source)
    github.add_repo("someone/else", installation_id=8)
    github.add_issue(REPO, 1, "an issue")
    with ThreadedServer(github.asgi()) as server:
        github.base_url = server.url
        yield github
    github.close()


def client(fake: FakeGitHub, permissions: dict[str, str], installation: int = 7) -> GitHub[Any]:
    return GitHub(
        AppInstallationAuthStrategy(
            fake.app_id, fake.private_key_pem, installation, permissions=permissions
        ),  # type: ignore[arg-type]
        base_url=fake.base_url,
        auto_retry=False,
        cache_strategy=MemCacheStrategy(),
    )  # tokens of this fake only


def test_app_jwt_is_checked(fake: FakeGitHub) -> None:
    app = GitHub(AppAuthStrategy(fake.app_id, fake.private_key_pem), base_url=fake.base_url)
    assert app.rest.apps.get_authenticated().parsed_data.slug == "qwenfix"
    stranger = GitHub(
        AppAuthStrategy(fake.app_id + 1, fake.private_key_pem),
        base_url=fake.base_url,
        auto_retry=False,
    )
    with pytest.raises(RequestFailed) as info:
        stranger.rest.apps.get_authenticated()
    assert info.value.response.status_code == 401


def test_tokens_are_scoped_to_installation_and_permissions(fake: FakeGitHub) -> None:
    reader = client(fake, {"issues": "read", "metadata": "read"})
    assert reader.rest.issues.get("octo-org", "hello-world", 1).parsed_data.title == "an issue"
    with pytest.raises(RequestFailed) as info:
        reader.rest.issues.create_comment("octo-org", "hello-world", 1, data={"body": "x"})
    assert info.value.response.status_code == 403
    with pytest.raises(RequestFailed) as info:
        reader.rest.repos.get("someone", "else")  # another installation's repository
    assert info.value.response.status_code == 404


def test_refs_and_check_runs(fake: FakeGitHub) -> None:
    gh = client(fake, {"contents": "write", "checks": "write", "metadata": "read"})
    main = gh.rest.git.get_ref("octo-org", "hello-world", "heads/main").parsed_data
    sha = main.object_.sha
    created = gh.rest.git.create_ref(
        "octo-org", "hello-world", data={"ref": "refs/heads/qwenfix/x", "sha": sha}
    )
    assert created.status_code == 201
    matching = gh.rest.git.list_matching_refs("octo-org", "hello-world", "heads/qwenfix/")
    assert [r.ref for r in matching.parsed_data] == ["refs/heads/qwenfix/x"]
    with pytest.raises(RequestFailed):  # exists already
        gh.rest.git.create_ref(
            "octo-org", "hello-world", data={"ref": "refs/heads/qwenfix/x", "sha": sha}
        )
    gh.rest.git.delete_ref("octo-org", "hello-world", "heads/qwenfix/x")
    assert fake.ref_sha(REPO, "refs/heads/qwenfix/x") is None
    run = gh.rest.checks.create(
        "octo-org",
        "hello-world",
        data={"name": "qwenfix", "head_sha": sha, "status": "in_progress"},
    ).parsed_data
    done = gh.rest.checks.update(
        "octo-org",
        "hello-world",
        run.id,
        data={"conclusion": "success", "output": {"title": "ok", "summary": "tests pass"}},
    )
    assert (done.parsed_data.status, done.parsed_data.conclusion) == ("completed", "success")


def test_git_over_http_needs_a_token_with_contents_access(fake: FakeGitHub, tmp_path: Path) -> None:
    url = f"{fake.base_url}/{REPO}.git"
    fake.repos[REPO].private = True  # public repositories are readable by anyone

    def header(permissions: dict[str, str]) -> dict[str, str]:
        gh = client(fake, permissions)
        gh.rest.repos.get("octo-org", "hello-world")  # mints the token
        token = list(fake.grants)[-1]
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        return {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }

    anonymous = subprocess.run(
        ["git", "clone", "-q", url, str(tmp_path / "anon")],
        capture_output=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    assert anonymous.returncode != 0
    read_env = header({"contents": "read", "metadata": "read"})
    subprocess.run(["git", "clone", "-q", url, str(tmp_path / "c")], check=True, env=read_env)
    assert (tmp_path / "c" / "a.txt").read_text() == "one\n"
    (tmp_path / "c" / "a.txt").write_text("two\n")
    git(tmp_path / "c", "commit", "-qam", "change")
    refused = subprocess.run(
        ["git", "-C", str(tmp_path / "c"), "push", "-q", "origin", "HEAD:refs/heads/topic"],
        capture_output=True,
        env=read_env,
    )
    assert refused.returncode != 0
    write_env = header({"contents": "write", "metadata": "read"})
    subprocess.run(
        ["git", "-C", str(tmp_path / "c"), "push", "-q", "origin", "HEAD:refs/heads/topic"],
        check=True,
        env=write_env,
    )
    assert (
        fake.ref_sha(REPO, "refs/heads/topic") == git(tmp_path / "c", "rev-parse", "HEAD").strip()
    )
    assert "x-access-token" not in (tmp_path / "c" / ".git" / "config").read_text()


def test_comments_paginate_with_link_headers(fake: FakeGitHub) -> None:
    for i in range(5):
        fake.add_comment(REPO, 1, f"comment {i}", "octocat")
    gh = client(fake, {"issues": "read", "metadata": "read"})
    first = gh.rest.issues.list_comments("octo-org", "hello-world", 1, per_page=2)
    assert 'rel="next"' in first.headers["link"]
    every = list(
        gh.rest.paginate(
            gh.rest.issues.list_comments,
            owner="octo-org",
            repo="hello-world",
            issue_number=1,
            per_page=2,
        )
    )
    assert [c.body for c in every] == [f"comment {i}" for i in range(5)]


def test_reviews_accept_only_lines_of_the_diff(fake: FakeGitHub, tmp_path: Path) -> None:
    repo = fake.repos[REPO]
    work = tmp_path / "w"
    subprocess.run(["git", "clone", "-q", str(repo.bare), str(work)], check=True)
    (work / "a.txt").write_text("one\ntwo\nthree\n")
    (work / "b.txt").write_text("new file\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "change")
    git(work, "push", "-q", "origin", "HEAD:refs/heads/qwenfix/issue-1")
    gh = client(fake, {"pull_requests": "write", "contents": "read", "metadata": "read"})
    pull = gh.rest.pulls.create(
        "octo-org",
        "hello-world",
        data={"head": "qwenfix/issue-1", "base": "main", "title": "t", "body": "b"},
    ).parsed_data
    review = gh.rest.pulls.create_review(
        "octo-org",
        "hello-world",
        pull.number,
        data={
            "event": "COMMENT",
            "body": "Two notes.",
            "comments": [
                {"path": "a.txt", "line": 2, "side": "RIGHT", "body": "why two?"},
                {"path": "a.txt", "line": 1, "side": "LEFT", "body": "was one"},
                {"path": "b.txt", "line": 1, "body": "```suggestion\nnewer file\n```"},
            ],
        },
    )
    assert review.parsed_data.state == "COMMENTED"
    comments = gh.rest.pulls.list_review_comments(
        "octo-org", "hello-world", pull.number
    ).parsed_data
    assert [(c.path, c.line, c.side) for c in comments] == [
        ("a.txt", 2, "RIGHT"),
        ("a.txt", 1, "LEFT"),
        ("b.txt", 1, "RIGHT"),
    ]
    assert comments[0].diff_hunk.startswith("@@")
    with pytest.raises(RequestFailed) as info:
        gh.rest.pulls.create_review(
            "octo-org",
            "hello-world",
            pull.number,
            data={
                "event": "COMMENT",
                "body": "x",
                "comments": [{"path": "a.txt", "line": 40, "body": "not in the diff"}],
            },
        )
    assert info.value.response.status_code == 422
    replied = gh.rest.pulls.create_reply_for_review_comment(
        "octo-org", "hello-world", pull.number, comments[0].id, data={"body": "done"}
    )
    assert replied.parsed_data.in_reply_to_id == comments[0].id
