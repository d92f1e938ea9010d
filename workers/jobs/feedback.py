"""An address-feedback job: follow-up commits on qwenfix's own pull request for what its
reviewers asked."""

from __future__ import annotations

from datetime import datetime

from bot.contract.db import Job
from bot.contract.job import JobStatus
from workers.github.forge import Feedback
from workers.jobs.context import JobContext, JobUnusable, Outcome
from workers.jobs.follow_up import follow_up


def feedback_text(title: str, feedback: list[Feedback], job: Job) -> str:
    lines = [
        f'Review feedback on the pull request "{title}" (opened by qwenfix). Make the '
        "changes asked for below; the repository's tests must still pass.",
        "",
    ]
    for item in feedback:
        where = f" on `{item.path}` line {item.line}" if item.path else ""
        lines.append(f"- @{item.author}{where}: {item.body.strip()}")
    if job.instructions and not any(job.instructions in f.body for f in feedback):
        lines.append(f"- @{job.sender}: {job.instructions}")
    return "\n".join(lines)


def run(ctx: JobContext) -> Outcome:
    job, forge, number = ctx.job, ctx.forge, ctx.job.number
    if number is None:
        raise JobUnusable("the job names no installation or pull request")
    pull = forge.pull(number)
    if not ctx.is_ours(pull):
        return Outcome(JobStatus.SKIPPED, "qwenfix follows up only on pull requests it opened")
    feedback: list[Feedback] = []

    def task(last_push: datetime) -> str | None:
        feedback.extend(
            forge.feedback_since(number, last_push, ctx.bot_login, ctx.settings.trigger)
        )
        if not feedback and not job.instructions:
            return None
        ctx.tell(number, f"⚙️ qwenfix is working on the review feedback (job {job.id}).")
        return feedback_text(pull.title, feedback, job)

    done = follow_up(
        ctx,
        clone_url=forge.repository().clone_url,
        branch=pull.head_ref,
        task=task,
        title=f"Address review feedback on #{number}",
    )
    if done.status != JobStatus.RESOLVED or done.commit is None:
        if done.status != JobStatus.SKIPPED:
            ctx.tell(
                number,
                f"🤔 qwenfix could not address the feedback (job {job.id}): "
                f"{done.reason}. Nothing was pushed.",
            )
        return Outcome(done.status, done.reason)
    short = done.commit[:7]
    summary = done.result.summary if done.result else ""
    for item in feedback:
        if item.kind == "review_comment":
            forge.reply_to_review_comment(
                number, item.id, f"Addressed in {short}. {summary or ''}".strip()
            )
    after = done.result.tests_after if done.result else None
    addressed = "\n".join(f"- @{f.author}: {f.body.strip().splitlines()[0]}" for f in feedback)
    declined = done.result.declined if done.result else []
    declined_text = ("\n\nDeclined:\n" + "\n".join(f"- {d}" for d in declined)) if declined else ""
    forge.comment(
        number,
        f"Pushed {short} for the review feedback; the tests pass "
        f"({after.summary if after else 'verified'})."
        f"\n\nAddressed:\n{addressed or '- ' + job.instructions}"
        f"{declined_text}",
    )
    ctx.tell(number, f"✅ qwenfix pushed {short} for the review feedback (job {job.id}).")
    return Outcome(JobStatus.RESOLVED, done.reason)
