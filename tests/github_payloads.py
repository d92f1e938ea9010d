"""Webhook payloads shaped like GitHub's documented examples (trimmed to what matters)."""

from __future__ import annotations

from typing import Any

REPO = {
    "id": 1296269,
    "name": "hello-world",
    "full_name": "octo-org/hello-world",
    "owner": {"login": "octo-org", "type": "Organization"},
    "default_branch": "main",
    "private": False,
}
INSTALLATION = {"id": 42, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI="}


def user(login: str = "octocat", kind: str = "User") -> dict[str, Any]:
    return {
        "login": login,
        "id": abs(hash(login)) % 10**8,
        "type": kind,
        "html_url": f"https://github.com/{login}",
    }


def issue(number: int = 7, pull: bool = False, author: str = "octocat") -> dict[str, Any]:
    out: dict[str, Any] = {
        "number": number,
        "title": "mean() is wrong",
        "state": "open",
        "user": user(author),
        "body": "It divides by the wrong count.",
        "labels": [],
    }
    if pull:
        out["pull_request"] = {
            "url": f"https://api.github.com/repos/octo-org/hello-world/pulls/{number}"
        }
    return out


def pull_request(
    number: int = 9, author: str = "qwenfix[bot]", branch: str = "qwenfix/issue-7"
) -> dict[str, Any]:
    return {
        "number": number,
        "state": "open",
        "title": "Fix mean()",
        "user": user(author, "Bot" if author.endswith("[bot]") else "User"),
        "head": {"ref": branch, "sha": "a" * 40, "repo": REPO},
        "base": {"ref": "main", "sha": "b" * 40, "repo": REPO},
    }


def comment_created(
    body: str,
    *,
    association: str = "OWNER",
    sender: str = "octocat",
    sender_type: str = "User",
    on_pull: bool = False,
    issue_author: str = "octocat",
) -> dict[str, Any]:
    return {
        "action": "created",
        "issue": issue(pull=on_pull, author=issue_author),
        "comment": {
            "id": 1001,
            "body": body,
            "user": user(sender, sender_type),
            "author_association": association,
        },
        "repository": REPO,
        "sender": user(sender, sender_type),
        "installation": INSTALLATION,
    }


def labeled(label: str = "qwenfix", sender: str = "octocat") -> dict[str, Any]:
    return {
        "action": "labeled",
        "issue": issue(),
        "label": {"name": label, "color": "f29513"},
        "repository": REPO,
        "sender": user(sender),
        "installation": INSTALLATION,
    }


def review_requested(
    reviewer: str | None = "qwenfix", team: str | None = None, author: str = "octocat"
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "action": "review_requested",
        "number": 12,
        "pull_request": pull_request(12, author, "feature/x"),
        "repository": REPO,
        "sender": user("octocat"),
        "installation": INSTALLATION,
    }
    if reviewer:
        out["requested_reviewer"] = user(reviewer)
    if team:
        out["requested_team"] = {"name": team.title(), "slug": team}
    return out


def review_submitted(
    state: str = "changes_requested",
    body: str = "Please use a dict.",
    author: str = "qwenfix[bot]",
    association: str = "MEMBER",
) -> dict[str, Any]:
    return {
        "action": "submitted",
        "review": {
            "id": 80,
            "body": body,
            "state": state,
            "user": user("hubot"),
            "author_association": association,
        },
        "pull_request": pull_request(9, author),
        "repository": REPO,
        "sender": user("hubot"),
        "installation": INSTALLATION,
    }


def review_comment(body: str, author: str = "qwenfix[bot]") -> dict[str, Any]:
    return {
        "action": "created",
        "comment": {
            "id": 2002,
            "body": body,
            "path": "calc.py",
            "line": 3,
            "user": user("hubot"),
            "author_association": "COLLABORATOR",
        },
        "pull_request": pull_request(9, author),
        "repository": REPO,
        "sender": user("hubot"),
        "installation": INSTALLATION,
    }


def check_suite(conclusion: str = "failure", branch: str = "qwenfix/issue-7") -> dict[str, Any]:
    return {
        "action": "completed",
        "check_suite": {
            "id": 5,
            "head_branch": branch,
            "head_sha": "c" * 40,
            "status": "completed",
            "conclusion": conclusion,
            "pull_requests": [{"number": 9}],
        },
        "repository": REPO,
        "sender": user("github-actions[bot]", "Bot"),
        "installation": INSTALLATION,
    }


def workflow_run(conclusion: str = "failure", branch: str = "qwenfix/issue-7") -> dict[str, Any]:
    return {
        "action": "completed",
        "workflow_run": {
            "id": 30433642,
            "name": "CI",
            "head_branch": branch,
            "head_sha": "d" * 40,
            "status": "completed",
            "conclusion": conclusion,
            "pull_requests": [{"number": 9}],
        },
        "repository": REPO,
        "sender": user("octocat"),
        "installation": INSTALLATION,
    }


def installation(action: str = "created") -> dict[str, Any]:
    return {
        "action": action,
        "installation": {**INSTALLATION, "account": user("octo-org")},
        "repositories": [
            {"id": 1, "name": "hello-world", "full_name": "octo-org/hello-world"},
            {"id": 2, "name": "docs", "full_name": "octo-org/docs"},
        ],
        "sender": user("octocat"),
    }


def installation_repositories(added: list[str], removed: list[str]) -> dict[str, Any]:
    return {
        "action": "added" if added else "removed",
        "installation": {**INSTALLATION, "account": user("octo-org")},
        "repositories_added": [{"full_name": n} for n in added],
        "repositories_removed": [{"full_name": n} for n in removed],
        "sender": user("octocat"),
    }


def ping() -> dict[str, Any]:
    return {"zen": "Design for failure.", "hook_id": 1, "hook": {"type": "App"}}
