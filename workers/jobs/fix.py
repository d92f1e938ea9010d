"""A fix job on GitHub: clone, fix in the sandbox, verify, push, open the pull request.

Every side effect converges when the job runs again (a retry, a redelivery after a
worker died): the branch name is deterministic and only ever carries qwenfix's own
commits, the pull request and the status comment are find-or-create.
"""

from __future__ import annotations

import logging

from bot.contract.db import Job
from bot.contract.job import JobStatus
from workers.engine.fix import FixRequest, FixResult
from workers.engine.local_forge import LocalForge
from workers.engine.repo_config import RepoConfig
from workers.jobs.context import Checkout, JobContext, JobUnusable, Outcome
from workers.jobs.publish import Blocked, PullSpec, publish
from workers.jobs.push_checks import blocked
from workers.jobs.texts import error_text, tail

log = logging.getLogger(__name__)

NO_PULL = "No pull request was opened."


def issue_text(title: str, body: str, job: Job) -> str:
    text = f"{title}\n\n{body}".strip()
    if job.instructions:
        text += f"\n\nInstructions from @{job.sender} who asked for this fix:\n{job.instructions}"
    return text


def unresolved_text(result: FixResult, job: Job) -> str:
    after = result.tests_after or result.tests_before
    tried = f"\n\nWhat it tried: {result.summary}" if result.summary else ""
    files = ""
    if result.diff:
        changed = [line[6:] for line in result.diff.splitlines() if line.startswith("+++ b/")]
        files = f"\nFiles it changed: {', '.join(f'`{f}`' for f in changed)}" if changed else ""
    tests = ""
    if after is not None:
        tests = (
            f"\n\nThe tests still fail ({after.summary}):\n\n```\n{tail(after.output_tail)}\n```"
        )
    hint = "A clearer issue text, or `@qwenfix fix <hints>`, can help."
    if result.status == "context_full":
        hint = (
            "The conversation outgrew the model's context window: a narrower issue, "
            "`@qwenfix fix <hints>` naming the files, or a server with a larger "
            "`--max-model-len` can help."
        )
    return (
        f"🤔 qwenfix could not make the tests pass for this issue (job {job.id}): "
        f"{result.reason}.{tried}{files}{tests}\n\n{NO_PULL} {hint}"
    )


def unverified_text(result: FixResult, job: Job) -> str:
    """Every test change, and why the harness could not take it as a fix."""
    changes = "\n".join(f"- `{c}`" for c in result.test_changes) or "- (none listed)"
    judged = result.tests_after.summary if result.tests_after else "not run"
    own = result.tests_as_diff.summary if result.tests_as_diff else "not run"
    return (
        f"⚠️ qwenfix has a change for this issue that it could not verify (job {job.id}): "
        f"{result.reason}.\n\nThe change touches the tests or their configuration:\n"
        f"{changes}\n\nWith the base commit's tests the suite {judged}; with the "
        f"change's own edits it {own}. A change that passes only with its own test edits "
        "may have made the tests agree with a bug, so a person has to decide whether "
        f"those edits are right.\n\n{NO_PULL}"
    )


def draft(
    ctx: JobContext,
    checkout: Checkout,
    result: FixResult,
    text: str,
    *,
    config: RepoConfig,
    base: str,
    why: str = "tests still fail",
    headline: str = "the tests do not pass with this change",
) -> str:
    """A draft pull request with what was tried, for a maintainer to take over; the
    sentence that says where it is (or why there is none)."""
    number = ctx.job.number
    branch = f"qwenfix/issue-{number}"
    problem = blocked(
        result.diff,
        max_lines=ctx.settings.max_diff_lines,
        allow_workflows=config.allow_workflow_changes,
    )
    if problem is not None:
        return f"The attempt was not pushed as a draft: {problem}."
    LocalForge(checkout.path, ctx.identity).publish(
        base=checkout.head(),
        diff=result.diff,
        branch=branch,
        message=f"WIP: attempt at #{number} ({why})\n",
        description=text,
    )
    body = (
        f"**Draft: {headline}.** qwenfix could not finish #{number}; this is what "
        f"it tried, for a person to take over.\n\n{text}"
    )
    try:
        done = publish(
            ctx,
            checkout,
            branch=branch,
            diff=result.diff,
            allow_workflows=config.allow_workflow_changes,
            pull=PullSpec(
                base=base,
                body=body,
                draft=True,
                title=f"WIP: {result.title or f'attempt at #{number}'}",
            ),
        )
    except Blocked as exc:
        return f"The attempt was not pushed as a draft: {exc.problem}."
    return f"The attempt is in a draft pull request: {done.pull.url if done.pull else ''}."


def run(ctx: JobContext) -> Outcome:
    """(status, reason) of a fix job; the issue is told the outcome in its status comment."""
    job, forge, number = ctx.job, ctx.forge, ctx.job.number
    if number is None:
        raise JobUnusable("the job names no installation or issue")
    info = forge.repository()
    title, body = forge.issue(number)
    ctx.tell(
        number,
        f"⚙️ qwenfix is working on this (job {job.id}): cloning the repository "
        "and running its tests.",
    )
    with ctx.checkout(info.clone_url, info.default_branch) as checkout:
        result = ctx.fix(
            FixRequest(
                repo=checkout.path,
                issue=issue_text(title, body, job),
                issue_number=number,
                title=title,
                co_author=job.sender,
            ),
            checkout,
        )
        if result.status == "error" or result.config is None:
            ctx.tell(number, error_text(result.reason, job))
            return Outcome(JobStatus.ERROR, result.reason)
        config = result.config
        if result.status == "unverified":
            text = unverified_text(result, job)
            if (config.on_unverified or ctx.settings.on_unverified) == "draft_pr" and result.diff:
                text = text.replace(
                    NO_PULL,
                    draft(
                        ctx,
                        checkout,
                        result,
                        text,
                        config=config,
                        base=info.default_branch,
                        why="unverified",
                        headline="it passes only with its own edits to the "
                        "tests, which a person has to check",
                    ),
                )
            ctx.tell(number, text)
            return Outcome(JobStatus.UNVERIFIED, result.reason)
        if result.status in ("unresolved", "context_full"):
            text = unresolved_text(result, job)
            if (config.on_unresolved or ctx.settings.on_unresolved) == "draft_pr" and result.diff:
                text = text.replace(
                    NO_PULL,
                    draft(ctx, checkout, result, text, config=config, base=info.default_branch),
                )
            ctx.tell(number, text)
            return Outcome(JobStatus(result.status), result.reason)
        try:
            done = publish(
                ctx,
                checkout,
                branch=result.branch or f"qwenfix/issue-{number}",
                diff=result.diff,
                allow_workflows=config.allow_workflow_changes,
                pull=PullSpec(
                    base=info.default_branch,
                    title=result.title or title,
                    body=result.pr_description or "",
                    draft=ctx.settings.pr_draft,
                ),
            )
        except Blocked as exc:
            ctx.tell(
                number,
                f"🛑 qwenfix made a change that passes the tests but did not "
                f"push it: {exc.problem}.",
            )
            return Outcome(JobStatus.BLOCKED, exc.problem)
    pull = done.pull
    if pull is None:
        raise RuntimeError("the pull request was not opened")
    if done.created and job.sender and job.sender.lower() != ctx.bot_login.lower():
        try:
            forge.request_review(pull.number, job.sender)
        except Exception:  # a review request is a courtesy; never fail the job for it
            log.warning("could not request a review from %s", job.sender, exc_info=True)
    before = result.tests_before.summary if result.tests_before else "not run"
    after = result.tests_after.summary if result.tests_after else "not run"
    ctx.tell(number, f"✅ qwenfix opened {pull.url} (job {job.id}).\n\nTests: {before} → {after}.")
    return Outcome(JobStatus.RESOLVED, pull.url)
