"""A verified commit on top of a pull-request branch, pushed as a plain fast-forward: if
anyone pushed meanwhile it is refused, never forced over them. Used by the kinds that
answer on an existing pull request (review feedback, failed checks, dependency repairs)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel

from bot.contract.job import JobStatus
from workers.engine.fix import FixRequest, FixResult
from workers.engine.git import git_text
from workers.jobs.context import JobContext
from workers.jobs.publish import Blocked, publish


class FollowUp(BaseModel):
    status: JobStatus
    reason: str
    commit: str | None = None
    result: FixResult | None = None


def follow_up(
    ctx: JobContext,
    *,
    clone_url: str,
    branch: str,
    task: Callable[[datetime], str | None],
    title: str,
) -> FollowUp:
    """`task(last_push)` gives the request, or None when there is nothing to do."""
    with ctx.checkout(clone_url, branch, prefix="qwenfix-followup-") as checkout:
        text = task(datetime.fromisoformat(git_text(checkout.path, "log", "-1", "--format=%cI")))
        if text is None:
            return FollowUp(status=JobStatus.SKIPPED, reason="nothing to do since the last push")
        result = ctx.fix(
            FixRequest(repo=checkout.path, issue=text, title=title, co_author=ctx.job.sender),
            checkout,
        )
        if result.status != "resolved" or result.branch is None:
            return FollowUp(
                status=JobStatus(result.status)
                if result.status in ("unresolved", "context_full")
                else JobStatus.ERROR,
                reason=result.reason,
                result=result,
            )
        try:
            done = publish(
                ctx,
                checkout,
                branch=branch,
                local=result.branch,
                diff=result.diff,
                allow_workflows=False,
                fast_forward=True,
            )
        except Blocked as exc:
            return FollowUp(status=JobStatus.BLOCKED, reason=exc.problem, result=result)
    return FollowUp(
        status=JobStatus.RESOLVED,
        reason=f"pushed {done.commit[:7]}",
        commit=done.commit,
        result=result,
    )
