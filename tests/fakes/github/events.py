"""Webhook deliveries from the fake GitHub, signed like GitHub signs them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from bot.receiver.signature import sign
from tests.fakes.github.server import FakeGitHub


def issue_comment_created(
    fake: FakeGitHub, full_name: str, number: int, comment_id: int, association: str = "OWNER"
) -> dict[str, Any]:
    repo = fake.repos[full_name]
    comment = fake.comments[comment_id]
    issue = repo.issues[number]
    return {
        "action": "created",
        "issue": {
            "number": number,
            "title": issue["title"],
            "body": issue["body"],
            "state": issue["state"],
            "user": fake.user(issue["author"]),
            "labels": [],
        },
        "comment": {
            "id": comment_id,
            "body": comment["body"],
            "user": fake.user(comment["author"]),
            "author_association": association,
        },
        "repository": fake.repo_json(repo),
        "sender": fake.user(comment["author"]),
        "installation": {"id": repo.installation_id},
    }


def issue_closed(fake: FakeGitHub, full_name: str, number: int, closer: str) -> dict[str, Any]:
    """`issues` `closed`: the issue is closed on the fake, and this is what GitHub sends."""
    repo = fake.repos[full_name]
    issue = repo.issues[number]
    issue["state"] = "closed"
    return {
        "action": "closed",
        "issue": {
            "number": number,
            "title": issue["title"],
            "body": issue["body"],
            "state": "closed",
            "user": fake.user(issue["author"]),
            "labels": [],
        },
        "repository": fake.repo_json(repo),
        "sender": fake.user(closer),
        "installation": {"id": repo.installation_id},
    }


def deliver(
    url: str, secret: str, event: str, payload: dict[str, Any], delivery: str | None = None
) -> httpx.Response:
    body = json.dumps(payload).encode()
    return httpx.post(
        url,
        content=body,
        timeout=30,
        headers={
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(secret, body),
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/fake",
        },
    )
