"""A fix-ci job: a fix for qwenfix's own pull request whose checks failed; at most
`max_ci_attempts` attempts per pull request."""

from __future__ import annotations

from bot.contract.job import JobKind, JobStatus
from workers.jobs.context import JobContext, Outcome
from workers.jobs.follow_up import follow_up

PERMISSIONS = {"checks": "read"}


def run(ctx: JobContext) -> Outcome:
    job, forge, settings = ctx.job, ctx.forge, ctx.settings
    number = job.number
    if number is None and job.head_branch:
        found = forge.open_pull(job.head_branch)
        number = found.number if found else None
    if number is None:
        return Outcome(JobStatus.SKIPPED, "no open pull request for this branch")
    pull = forge.pull(number)
    if not ctx.is_ours(pull):
        return Outcome(JobStatus.SKIPPED, "qwenfix fixes CI only on pull requests it opened")
    attempts = ctx.jobs.count_finished(job.repo, job.number or 0, JobKind.FIX_CI)
    if attempts >= settings.max_ci_attempts:
        ctx.tell(
            number,
            f"⏹️ qwenfix stopped fixing the checks of this pull request after "
            f"{attempts} attempt(s) (the limit is {settings.max_ci_attempts}); a "
            "person should look.",
        )
        return Outcome(JobStatus.SKIPPED, f"attempt limit reached ({attempts})")
    failures = forge.failed_checks(job.head_sha or pull.head_sha)
    if not failures:
        return Outcome(JobStatus.SKIPPED, "no failing check runs on the head commit")
    ctx.tell(
        number,
        f"⚙️ qwenfix is fixing the failed checks (job {job.id}, attempt "
        f"{attempts + 1} of {settings.max_ci_attempts}).",
    )
    text = (
        f'The continuous-integration checks failed on the pull request "{pull.title}" '
        "(opened by qwenfix). Make them pass; the repository's tests must pass too.\n\n"
        + "\n\n".join(failures)
    )
    done = follow_up(
        ctx,
        clone_url=forge.repository().clone_url,
        branch=pull.head_ref,
        task=lambda _: text,
        title=f"Fix failing checks on #{number}",
    )
    if done.status == JobStatus.RESOLVED and done.commit is not None:
        ctx.tell(
            number, f"✅ qwenfix pushed {done.commit[:7]} for the failed checks (job {job.id})."
        )
    else:
        ctx.tell(
            number,
            f"🤔 qwenfix could not fix the failed checks (job {job.id}): "
            f"{done.reason}. Nothing was pushed.",
        )
    return Outcome(done.status, done.reason)
