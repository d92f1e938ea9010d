"""A review job: one review on the pull request, read-only, also for pull requests from
forks."""

from __future__ import annotations

from bot.contract.job import JobStatus
from workers.engine.review import ReviewRequest, run_review
from workers.github.app_auth import READ_PERMISSIONS
from workers.github.remote import fetch
from workers.jobs.config_source import defaults_for
from workers.jobs.context import JobContext, JobStopped, JobUnusable, Outcome


def run(ctx: JobContext) -> Outcome:
    job, forge, number = ctx.job, ctx.forge, ctx.job.number
    if number is None:
        raise JobUnusable("the job names no installation or pull request")
    info = forge.repository()
    pull = forge.pull(number)
    ctx.tell(number, f"⚙️ qwenfix is reviewing this pull request (job {job.id}).")
    with ctx.checkout(
        info.clone_url, pull.base_ref, prefix="qwenfix-review-", permissions=READ_PERMISSIONS
    ) as checkout:
        same_repo = pull.head_clone_url in ("", info.clone_url)
        # A fork's head is fetched from the fork itself, anonymously: it is public, and
        # our token is for the base repository only.
        head = fetch(
            checkout.path,
            "origin" if same_repo else pull.head_clone_url,
            pull.head_ref,
            checkout.token if same_repo else None,
        )
        result = run_review(
            ReviewRequest(
                repo=checkout.path,
                base="HEAD",
                head=head,
                number=number,
                title=pull.title,
                body=pull.body,
                requester=job.sender,
                request=job.instructions,
                config_defaults=defaults_for(ctx.app, ctx.installation, job.repo),
            ),
            model=ctx.model,
            backend=ctx.backend,
            settings=ctx.settings,
            sink=ctx.sink,
            cancelled=ctx.stop_request,
        )
    if result.status == "stopped" and (stop := ctx.stop_request()) is not None:
        raise JobStopped(stop)
    if result.status != "reviewed":
        ctx.tell(
            number, f"❌ qwenfix could not review this pull request (job {job.id}): {result.reason}"
        )
        return Outcome(
            JobStatus.ERROR if result.status == "error" else JobStatus.UNRESOLVED, result.reason
        )
    url = forge.create_review(
        number,
        commit_id=head,
        body=result.body(),
        comments=[
            {"path": c.path, "line": c.line, "side": c.side, "body": c.body} for c in result.inline
        ],
    )
    ctx.tell(
        number,
        f"📝 qwenfix reviewed this pull request (job {job.id}): "
        f"{len(result.inline)} inline comment(s). {url}",
    )
    return Outcome(JobStatus.REVIEWED, url)
