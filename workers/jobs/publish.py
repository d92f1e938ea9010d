"""The one publish step of every job kind that pushes: check the diff, push the branch
(replacing only qwenfix's own earlier attempt, or as a plain fast-forward), then open or
update the pull request. Each part converges when a job runs again."""

from __future__ import annotations

from dataclasses import dataclass

from workers.github.app_auth import WORKFLOW_PUSH_PERMISSIONS
from workers.github.forge import PullRef
from workers.github.remote import PushRefused, push_fast_forward, push_replacing
from workers.jobs.context import Checkout, JobContext
from workers.jobs.push_checks import blocked, changes_workflows


class Blocked(Exception):
    """The change passes but is not pushed; `problem` says why."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True)
class PullSpec:
    base: str
    title: str
    body: str
    draft: bool


@dataclass(frozen=True)
class Published:
    commit: str
    pull: PullRef | None = None
    created: bool = False


def publish(
    ctx: JobContext,
    checkout: Checkout,
    *,
    branch: str,
    diff: str,
    allow_workflows: bool,
    local: str | None = None,
    fast_forward: bool = False,
    pull: PullSpec | None = None,
) -> Published:
    """Push the local branch `local` (default: `branch`) to `branch`, then open or update
    the pull request `pull` describes. Raises Blocked, pushing nothing."""
    problem = blocked(diff, max_lines=ctx.settings.max_diff_lines, allow_workflows=allow_workflows)
    if problem is not None:
        raise Blocked(problem)
    commit = checkout.head(local or branch)
    # GitHub refuses a push that changes workflows without `workflows: write`; only such a
    # push gets a token that has it.
    token = (
        ctx.token(WORKFLOW_PUSH_PERMISSIONS)
        if allow_workflows and changes_workflows(diff)
        else checkout.token
    )
    if fast_forward:
        push_fast_forward(checkout.path, commit, branch, token)
    else:
        try:
            push_replacing(checkout.path, branch, token, ctx.identity)
        except PushRefused as exc:
            raise Blocked(str(exc)) from exc
    if pull is None:
        return Published(commit=commit)
    opened, created = ctx.forge.open_or_update_pull(
        branch=branch, base=pull.base, title=pull.title, body=pull.body, draft=pull.draft
    )
    return Published(commit=commit, pull=opened, created=created)
