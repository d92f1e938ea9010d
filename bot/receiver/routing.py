"""Which deliveries become work: a table of (event, action) -> decision.

A decision is a `Trigger` (queue a job of this kind), a `Record` (installation
bookkeeping, no job) or an `Ignored` with the reason the sender is told. The receiver's
checks here are the fast ones (signature done, sender kind, author association); the
worker confirms write permission through the API before any work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from bot.contract.job import CONFIG_FILES, JobKind, Record, Trigger
from bot.receiver.commands import Command, find_command
from bot.settings import BotSettings

Payload = dict[str, Any]
TRUSTED_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "action_required", "startup_failure"})
BRANCH_PREFIX = "qwenfix/"


class ConfigChanged(BaseModel):
    """A push changed `.qwenfix.yml` on the default branch: its schedules are stale."""

    repo: str


class Ignored(BaseModel):
    reason: str


Decision = Trigger | Record | ConfigChanged | Ignored
Route = Callable[[Payload, BotSettings], Decision]


def _login(user: Any) -> str:
    return str((user or {}).get("login") or "")


def is_bot(user: Any) -> bool:
    login = _login(user)
    return (user or {}).get("type") == "Bot" or login.endswith("[bot]")


def _repo(payload: Payload) -> str:
    return str((payload.get("repository") or {}).get("full_name") or "")


def _installation(payload: Payload) -> int | None:
    value = (payload.get("installation") or {}).get("id")
    return int(value) if value is not None else None


def _gate(payload: Payload, settings: BotSettings, association: str | None) -> Ignored | None:
    """Who may trigger: no bots, allow/deny lists, and the author-association fast check."""
    sender = payload.get("sender") or {}
    login, repo = _login(sender), _repo(payload)
    if is_bot(sender) or login.lower() == settings.bot_login.lower():
        return Ignored(reason="ignored: the sender is a bot")
    if login in settings.deny_users or (settings.allow_users and login not in settings.allow_users):
        return Ignored(reason=f"ignored: {login} may not trigger qwenfix here")
    if repo in settings.deny_repos or (settings.allow_repos and repo not in settings.allow_repos):
        return Ignored(reason=f"ignored: qwenfix is not enabled for {repo}")
    if association is not None and association not in TRUSTED_ASSOCIATIONS:
        return Ignored(reason=f"ignored: {login} is not a collaborator ({association})")
    return None


def _trigger(payload: Payload, kind: JobKind, number: int | None, **extra: Any) -> Trigger:
    return Trigger(
        kind=kind,
        repo=_repo(payload),
        number=number,
        sender=_login(payload.get("sender")),
        installation_id=_installation(payload),
        **extra,
    )


def _ours(pull: Any, settings: BotSettings) -> bool:
    """A pull request qwenfix opened: its author is the App's bot user. (A branch name is
    no proof: anyone with push access can name a branch qwenfix/….)"""
    return _login((pull or {}).get("user")).lower() == settings.bot_login.lower()


# Commands about the jobs on an issue or pull request, wherever they are asked.
JOB_COMMANDS = {"help": JobKind.HELP, "stop": JobKind.STOP, "retry": JobKind.RETRY}


def _job_command(
    payload: Payload, command: Command, number: Any, comment_id: Any, comment_kind: str
) -> Trigger | None:
    """help (also for a word that is no command: the list is the answer), stop, retry."""
    kind = JOB_COMMANDS.get(command.verb)
    if kind is None:
        return None
    return _trigger(
        payload,
        kind,
        number,
        # For help, the word that was not understood, which the answer names.
        instructions=command.unknown,
        comment_id=comment_id,
        comment_kind=comment_kind,
    )


def on_issue_comment(payload: Payload, settings: BotSettings) -> Decision:
    comment, issue = payload.get("comment") or {}, payload.get("issue") or {}
    command = find_command(comment.get("body"), settings.trigger)
    if command is None:
        return Ignored(reason=f"ignored: no @{settings.trigger} command")
    refused = _gate(payload, settings, str(comment.get("author_association") or "NONE"))
    if refused:
        return refused
    number = issue.get("number")
    on_pull = "pull_request" in issue
    asked = _job_command(payload, command, number, comment.get("id"), "issue_comment")
    if asked is not None:
        return asked
    extra = {
        "instructions": command.text,
        "comment_id": comment.get("id"),
        "comment_kind": "issue_comment",
    }
    # A bare mention that opens its line asks for a fix, the rest of the comment its
    # instructions; one in passing ("thanks @qwenfix") asks for nothing.
    if not on_pull and (command.verb == "fix" or (command.verb == "" and command.leading)):
        return _trigger(payload, JobKind.FIX, number, **extra)
    if command.verb == "review" and on_pull:
        return _trigger(payload, JobKind.REVIEW, number, **extra)
    if command.verb == "maintain":
        task, _, rest = command.text.partition(" ")
        if not task:
            return Ignored(
                reason=f"ignored: @{settings.trigger} maintain needs a task name, "
                "e.g. fix-failing-tests"
            )
        # The answer goes to the issue or pull request where it was asked.
        return _trigger(
            payload,
            JobKind.MAINTENANCE,
            number,
            **{**extra, "instructions": rest.strip(), "task": task.lower()},
        )
    if on_pull and _ours(issue, settings):
        return _trigger(payload, JobKind.ADDRESS_FEEDBACK, number, **extra)
    where = "a pull request" if on_pull else "an issue"
    what = command.verb or ("(no verb)" if command.leading else "(a mention in passing)")
    return Ignored(reason=f"ignored: @{settings.trigger} {what} does nothing on {where}")


def on_closed(payload: Payload, settings: BotSettings) -> Decision:
    """An issue or pull request closed (or merged): its unfinished jobs stop."""
    item = payload.get("issue") or payload.get("pull_request") or {}
    # No association check: only its author or someone with triage access can close it.
    refused = _gate(payload, settings, None)
    if refused:
        return refused
    return _trigger(payload, JobKind.STOP, item.get("number"))


def on_issue_labeled(payload: Payload, settings: BotSettings) -> Decision:
    label = str((payload.get("label") or {}).get("name") or "")
    if label.lower() != settings.trigger.lower():
        return Ignored(reason=f"ignored: label {label!r} is not {settings.trigger!r}")
    refused = _gate(payload, settings, None)  # labelling already needs triage access
    if refused:
        return refused
    issue = payload.get("issue") or {}
    if "pull_request" in issue:
        return Ignored(reason="ignored: the fix label works on issues, not pull requests")
    return _trigger(payload, JobKind.FIX, issue.get("number"))


def on_review_requested(payload: Payload, settings: BotSettings) -> Decision:
    requested = {
        _login(payload.get("requested_reviewer")).lower(),
        str((payload.get("requested_team") or {}).get("slug") or "").lower(),
    } - {""}
    if not requested & {settings.reviewer.lower(), settings.bot_login.lower()}:
        return Ignored(reason="ignored: the review was requested from someone else")
    refused = _gate(payload, settings, None)
    if refused:
        return refused
    pull = payload.get("pull_request") or {}
    return _trigger(
        payload,
        JobKind.REVIEW,
        pull.get("number") or payload.get("number"),
        head_branch=(pull.get("head") or {}).get("ref"),
        head_sha=(pull.get("head") or {}).get("sha"),
    )


def on_review(payload: Payload, settings: BotSettings) -> Decision:
    review, pull = payload.get("review") or {}, payload.get("pull_request") or {}
    if not _ours(pull, settings):
        return Ignored(reason="ignored: a review on a pull request qwenfix did not open")
    command = find_command(review.get("body"), settings.trigger)
    if str(review.get("state")).lower() != "changes_requested" and command is None:
        return Ignored(
            reason=f"ignored: the review neither requests changes nor mentions @{settings.trigger}"
        )
    refused = _gate(payload, settings, str(review.get("author_association") or "NONE"))
    if refused:
        return refused
    if command is not None:
        asked = _job_command(payload, command, pull.get("number"), review.get("id"), "review")
        if asked is not None:
            return asked
    return _trigger(
        payload,
        JobKind.ADDRESS_FEEDBACK,
        pull.get("number"),
        instructions=command.text if command else "",
        comment_id=review.get("id"),
        comment_kind="review",
        head_branch=(pull.get("head") or {}).get("ref"),
    )


def on_review_comment(payload: Payload, settings: BotSettings) -> Decision:
    comment, pull = payload.get("comment") or {}, payload.get("pull_request") or {}
    if not _ours(pull, settings):
        return Ignored(reason="ignored: a comment on a pull request qwenfix did not open")
    command = find_command(comment.get("body"), settings.trigger)
    if command is None:
        return Ignored(reason=f"ignored: no @{settings.trigger} mention")
    refused = _gate(payload, settings, str(comment.get("author_association") or "NONE"))
    if refused:
        return refused
    asked = _job_command(payload, command, pull.get("number"), comment.get("id"), "review_comment")
    if asked is not None:
        return asked
    return _trigger(
        payload,
        JobKind.ADDRESS_FEEDBACK,
        pull.get("number"),
        instructions=command.text,
        comment_id=comment.get("id"),
        comment_kind="review_comment",
        head_branch=(pull.get("head") or {}).get("ref"),
    )


def _ci(payload: Payload, run: Payload, what: str) -> Decision:
    branch = str(run.get("head_branch") or "")
    conclusion = str(run.get("conclusion") or "")
    if not branch.startswith(BRANCH_PREFIX):
        return Ignored(reason=f"ignored: {what} on a branch qwenfix does not own")
    if conclusion not in FAILED_CONCLUSIONS:
        return Ignored(reason=f"ignored: {what} concluded {conclusion or 'without a result'}")
    pulls = run.get("pull_requests") or []
    number = pulls[0].get("number") if pulls else None
    # No sender gate: CI runs are started by bots, and the branch is qwenfix's own.
    return _trigger(
        payload, JobKind.FIX_CI, number, head_branch=branch, head_sha=run.get("head_sha")
    )


def on_check_suite(payload: Payload, settings: BotSettings) -> Decision:
    return _ci(payload, payload.get("check_suite") or {}, "check suite")


def on_workflow_run(payload: Payload, settings: BotSettings) -> Decision:
    return _ci(payload, payload.get("workflow_run") or {}, "workflow run")


def on_installation(payload: Payload, settings: BotSettings) -> Decision:
    installation = payload.get("installation") or {}
    names = [str(r.get("full_name")) for r in payload.get("repositories") or []]
    action = str(payload.get("action") or "")
    return Record(
        installation_id=int(installation.get("id") or 0),
        action=action,
        account=_login(installation.get("account")),
        added=names if action in ("created", "unsuspend") else [],
        removed=names if action in ("deleted", "suspend") else [],
    )


def on_installation_repositories(payload: Payload, settings: BotSettings) -> Decision:
    installation = payload.get("installation") or {}
    return Record(
        installation_id=int(installation.get("id") or 0),
        action=str(payload.get("action")),
        account=_login(installation.get("account")),
        added=[str(r.get("full_name")) for r in payload.get("repositories_added") or []],
        removed=[str(r.get("full_name")) for r in payload.get("repositories_removed") or []],
    )


def on_push(payload: Payload, settings: BotSettings) -> Decision:
    repository = payload.get("repository") or {}
    default = str(repository.get("default_branch") or "")
    if not default or payload.get("ref") != f"refs/heads/{default}":
        return Ignored(reason="ignored: a push to a branch other than the default branch")
    touched = {
        path
        for commit in payload.get("commits") or []
        for key in ("added", "modified", "removed")
        for path in commit.get(key) or []
    }
    # GitHub lists at most 2048 commits' files; a forced push may list none. Either way
    # the schedule is read again, which costs one API call.
    if (
        touched.isdisjoint(CONFIG_FILES)
        and not payload.get("forced")
        and len(payload.get("commits") or []) < 2048
    ):
        return Ignored(reason=f"ignored: the push did not change {' or '.join(CONFIG_FILES)}")
    return ConfigChanged(repo=_repo(payload))


def on_ping(payload: Payload, settings: BotSettings) -> Decision:
    return Ignored(reason="pong")


# (event, action) -> route; an action of None matches every action of that event.
ROUTES: dict[tuple[str, str | None], Route] = {
    ("issue_comment", "created"): on_issue_comment,
    ("issues", "labeled"): on_issue_labeled,
    ("issues", "closed"): on_closed,
    ("pull_request", "closed"): on_closed,
    ("pull_request", "review_requested"): on_review_requested,
    ("pull_request_review", "submitted"): on_review,
    ("pull_request_review_comment", "created"): on_review_comment,
    ("check_suite", "completed"): on_check_suite,
    ("workflow_run", "completed"): on_workflow_run,
    ("push", None): on_push,
    ("installation", None): on_installation,
    ("installation_repositories", None): on_installation_repositories,
    ("ping", None): on_ping,
}


def route(event: str, payload: Payload, settings: BotSettings) -> Decision:
    action = payload.get("action")
    handler = ROUTES.get((event, action)) or ROUTES.get((event, None))
    if handler is None:
        known = any(e == event for e, _ in ROUTES)
        what = f"{event}.{action}" if known and action else event
        return Ignored(reason=f"ignored: {what} is not something qwenfix acts on")
    return handler(payload, settings)
