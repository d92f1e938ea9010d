"""The GitHub forge: the calls qwenfix makes on a repository, through githubkit.

Every list is read through githubkit's paginator, 100 items a page (GitHub's most), so a
pull request with many comments or a commit with many check runs is read whole.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Literal

from githubkit import GitHub
from githubkit.exception import RequestFailed
from pydantic import BaseModel

STATUS_MARKER = "<!-- qwenfix:status -->"
PER_PAGE = 100
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


class RepositoryInfo(BaseModel):
    default_branch: str
    clone_url: str


class PullRef(BaseModel):
    number: int
    url: str
    head: str


class PullInfo(BaseModel):
    number: int
    title: str
    body: str
    head_ref: str
    head_sha: str
    head_clone_url: str
    base_ref: str
    author: str


class Feedback(BaseModel):
    kind: str  # review | review_comment | comment
    id: int
    author: str
    body: str
    path: str | None = None
    line: int | None = None


class GitHubForge:
    def __init__(self, github: GitHub[Any], repo: str) -> None:
        self.github = github
        self.owner, self.name = repo.split("/", 1)

    def _all(self, request: Any, *, wrapped: str | None = None, **params: Any) -> Iterator[Any]:
        """Every item of a list call, page by page; `wrapped` names the key a wrapped list
        (`{"total_count": N, "check_runs": [...]}`) keeps its items under."""

        def items(response: Any) -> list[Any]:
            return list(getattr(response.parsed_data, str(wrapped)))

        return iter(
            self.github.rest.paginate(
                request,
                map_func=items if wrapped else None,
                owner=self.owner,
                repo=self.name,
                per_page=PER_PAGE,
                **params,
            )
        )

    def permission(self, login: str) -> str:
        """admin | maintain | write | triage | read | none (the role, when GitHub gives it)."""
        data = self.github.rest.repos.get_collaborator_permission_level(
            self.owner, self.name, login
        ).parsed_data
        return str(data.role_name or data.permission)

    def can_write(self, login: str) -> bool:
        return self.permission(login) in WRITE_PERMISSIONS

    def react(
        self,
        comment_kind: str,
        comment_id: int,
        content: Literal["eyes", "rocket", "confused"] = "eyes",
    ) -> None:
        """A reaction on the triggering comment; GitHub keeps one per user and content."""
        rest = self.github.rest.reactions
        if comment_kind == "issue_comment":
            rest.create_for_issue_comment(
                self.owner, self.name, comment_id, data={"content": content}
            )
        elif comment_kind == "review_comment":
            rest.create_for_pull_request_review_comment(
                self.owner, self.name, comment_id, data={"content": content}
            )
        # Reviews themselves take no reactions on GitHub.

    def comment(self, number: int, body: str) -> int:
        created = self.github.rest.issues.create_comment(
            self.owner, self.name, number, data={"body": body}
        ).parsed_data
        return int(created.id)

    def find_status_comment(self, number: int, bot_login: str) -> int | None:
        found = self._status_comment(number, bot_login)
        return found[0] if found else None

    def status_of(self, number: int, bot_login: str) -> str:
        """The text of qwenfix's status comment here, or "" when there is none."""
        found = self._status_comment(number, bot_login)
        return found[1] if found else ""

    def _status_comment(self, number: int, bot_login: str) -> tuple[int, str] | None:
        comment: Any
        for comment in self._all(self.github.rest.issues.list_comments, issue_number=number):
            author = comment.user.login if comment.user else ""
            if author == bot_login and STATUS_MARKER in (comment.body or ""):
                return int(comment.id), str(comment.body)
        return None

    def upsert_status(self, number: int, body: str, bot_login: str) -> int:
        """The one status comment of an issue or pull request: found again by its hidden
        marker and edited, or created the first time."""
        text = f"{STATUS_MARKER}\n{body}"
        existing = self.find_status_comment(number, bot_login)
        if existing is None:
            return self.comment(number, text)
        self.github.rest.issues.update_comment(self.owner, self.name, existing, data={"body": text})
        return existing

    def repository(self) -> RepositoryInfo:
        data = self.github.rest.repos.get(self.owner, self.name).parsed_data
        return RepositoryInfo(default_branch=data.default_branch, clone_url=data.clone_url)

    def file(self, path: str, ref: str) -> tuple[str, bytes] | None:
        """(blob sha, content) of a file on a branch, or None when there is no such file."""
        try:
            data: Any = self.github.rest.repos.get_content(
                self.owner, self.name, path, ref=ref
            ).parsed_data
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return None
            raise
        if getattr(data, "type", None) != "file":
            return None
        return str(data.sha), base64.b64decode(data.content)

    def first_file(self, paths: Sequence[str], ref: str) -> tuple[str, str, bytes] | None:
        """(path, blob sha, content) of the first of `paths` there is on `ref`."""
        for path in paths:
            found = self.file(path, ref)
            if found is not None:
                return path, found[0], found[1]
        return None

    def open_pulls(self) -> list[PullInfo]:
        out = []
        pull: Any
        for pull in self._all(self.github.rest.pulls.list, state="open"):
            head_repo = pull.head.repo
            out.append(
                PullInfo(
                    number=pull.number,
                    title=pull.title,
                    body=pull.body or "",
                    head_ref=pull.head.ref,
                    head_sha=pull.head.sha,
                    head_clone_url=head_repo.clone_url if head_repo else "",
                    base_ref=pull.base.ref,
                    author=pull.user.login if pull.user else "",
                )
            )
        return out

    def issue(self, number: int) -> tuple[str, str]:
        data = self.github.rest.issues.get(self.owner, self.name, number).parsed_data
        return data.title, data.body or ""

    def open_pull(self, branch: str) -> PullRef | None:
        pull: Any
        for pull in self._all(
            self.github.rest.pulls.list, state="open", head=f"{self.owner}:{branch}"
        ):
            if pull.head.ref == branch:
                return PullRef(number=pull.number, url=pull.html_url, head=branch)
        return None

    def open_or_update_pull(
        self, *, branch: str, base: str, title: str, body: str, draft: bool
    ) -> tuple[PullRef, bool]:
        """The open pull request of `branch`, created if there is none (looked for again
        right before creating, so a retried job never opens a second one)."""
        existing = self.open_pull(branch)
        if existing is not None:
            self.github.rest.pulls.update(
                self.owner, self.name, existing.number, data={"title": title, "body": body}
            )
            return existing, False
        try:
            created = self.github.rest.pulls.create(
                self.owner,
                self.name,
                data={"head": branch, "base": base, "title": title, "body": body, "draft": draft},
            ).parsed_data
        except RequestFailed as exc:
            # 422 after a retried create whose first answer was lost: it exists already.
            raced = self.open_pull(branch) if exc.response.status_code == 422 else None
            if raced is None:
                raise
            return raced, False
        return PullRef(number=created.number, url=created.html_url, head=branch), True

    def close_pull(self, number: int, why: str) -> None:
        """Close a pull request, saying why in a comment first."""
        self.comment(number, why)
        self.github.rest.pulls.update(self.owner, self.name, number, data={"state": "closed"})

    def request_review(self, number: int, login: str) -> None:
        self.github.rest.pulls.request_reviewers(
            self.owner, self.name, number, data={"reviewers": [login]}
        )

    def pull(self, number: int) -> PullInfo:
        data = self.github.rest.pulls.get(self.owner, self.name, number).parsed_data
        head_repo = data.head.repo
        return PullInfo(
            number=data.number,
            title=data.title,
            body=data.body or "",
            head_ref=data.head.ref,
            head_sha=data.head.sha,
            head_clone_url=head_repo.clone_url if head_repo else "",
            base_ref=data.base.ref,
            author=data.user.login if data.user else "",
        )

    def create_review(
        self,
        number: int,
        *,
        commit_id: str,
        body: str,
        comments: list[dict[str, Any]],
        event: str = "COMMENT",
    ) -> str:
        """One review, with its inline comments; returns its URL."""
        create: Any = self.github.rest.pulls.create_review  # comments are plain dicts here
        review = create(
            self.owner,
            self.name,
            number,
            data={"commit_id": commit_id, "body": body, "event": event, "comments": comments},
        ).parsed_data
        return str(review.html_url)

    def feedback_since(
        self, number: int, since: datetime, bot_login: str, trigger: str
    ) -> list[Feedback]:
        """What people asked for on a pull request from `since` on: review comments,
        review bodies, and comments that mention @trigger."""

        def by_people(login: str | None) -> bool:
            return bool(login) and login != bot_login and not str(login).endswith("[bot]")

        out: list[Feedback] = []
        rest = self.github.rest
        review: Any
        for review in self._all(rest.pulls.list_reviews, pull_number=number):
            login = review.user.login if review.user else None
            submitted = review.submitted_at
            if (
                by_people(login)
                and review.body
                and submitted
                and submitted >= since
                and (review.state == "CHANGES_REQUESTED" or f"@{trigger}" in review.body)
            ):
                out.append(
                    Feedback(kind="review", id=review.id, author=str(login), body=review.body)
                )
        comment: Any
        for comment in self._all(rest.pulls.list_review_comments, pull_number=number):
            login = comment.user.login if comment.user else None
            if by_people(login) and not comment.in_reply_to_id and comment.created_at >= since:
                out.append(
                    Feedback(
                        kind="review_comment",
                        id=comment.id,
                        author=str(login),
                        body=comment.body,
                        path=comment.path,
                        line=comment.line,
                    )
                )
        for comment in self._all(rest.issues.list_comments, issue_number=number):
            login = comment.user.login if comment.user else None
            if (
                by_people(login)
                and f"@{trigger}" in (comment.body or "")
                and comment.created_at >= since
            ):
                out.append(
                    Feedback(
                        kind="comment", id=comment.id, author=str(login), body=comment.body or ""
                    )
                )
        return out

    def reply_to_review_comment(self, number: int, comment_id: int, body: str) -> None:
        self.github.rest.pulls.create_reply_for_review_comment(
            self.owner, self.name, number, comment_id, data={"body": body}
        )

    def failed_checks(self, sha: str) -> list[str]:
        """What the failing check runs of a commit say: title, summary, text, and each
        annotation as `path:line: message`."""
        checks = self.github.rest.checks
        out = []
        run: Any
        for run in self._all(checks.list_for_ref, wrapped="check_runs", ref=sha):
            if run.conclusion not in ("failure", "timed_out", "action_required"):
                continue
            output = run.output
            parts = [f"Check `{run.name}` concluded {run.conclusion}."]
            for piece in (output.title, output.summary, output.text):
                if piece:
                    parts.append(str(piece).strip()[-4000:])
            if output.annotations_count:
                notes = self._all(checks.list_annotations, check_run_id=run.id)
                parts += [f"{a.path}:{a.start_line}: {a.message}" for a in notes]
            out.append("\n".join(parts))
        return out
