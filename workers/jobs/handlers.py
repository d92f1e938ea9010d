"""Which handler runs a job of each kind, and the GitHub permissions beyond a run's that
its token needs. A kind missing here is told, on GitHub, that it is not done yet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.contract.db import Job
from bot.contract.job import JobKind, JobStatus
from workers.github.app_auth import RUN_PERMISSIONS, GitHubApp
from workers.github.forge import GitHubForge
from workers.jobs import feedback, fix, fix_ci, maintenance, review
from workers.jobs.context import JobContext, JobStopped, Outcome
from workers.jobs.texts import not_handled_text, stopped_text
from workers.settings import WorkerSettings


@dataclass(frozen=True)
class Handler:
    run: Callable[[JobContext], Outcome]
    permissions: dict[str, str] = field(default_factory=dict)


HANDLERS: dict[JobKind, Handler] = {
    JobKind.FIX: Handler(fix.run),
    JobKind.REVIEW: Handler(review.run),
    JobKind.ADDRESS_FEEDBACK: Handler(feedback.run),
    JobKind.FIX_CI: Handler(fix_ci.run, fix_ci.PERMISSIONS),
    JobKind.MAINTENANCE: Handler(maintenance.run, maintenance.PERMISSIONS),
}


def perform(handler: Handler, ctx: JobContext) -> Outcome:
    """The handler's run, ending `stopped` when the job is asked to stop, also before it
    starts (asked while it waited for its turn): the status comment says who stopped it."""
    try:
        ctx.check_stopped()
        return handler.run(ctx)
    except JobStopped as stopped:
        ctx.tell(ctx.job.number, stopped_text([ctx.job.id], stopped.request.why))
        return Outcome(JobStatus.STOPPED, stopped.request.why)


def handler_for(kind: str) -> Handler | None:
    try:
        return HANDLERS.get(JobKind(kind))
    except ValueError:
        return None


def tell_not_handled(job: Job, *, app: GitHubApp, settings: WorkerSettings) -> None:
    """Say plainly on GitHub that a kind of request is not done yet, rather than nothing."""
    if job.installation_id is None or job.number is None:
        return
    forge = GitHubForge(
        app.for_repository(job.installation_id, job.repo, RUN_PERMISSIONS), job.repo
    )
    forge.upsert_status(job.number, not_handled_text(job), settings.bot_login)
