"""The first thing a worker does with a job: confirm the sender may ask, and say so; a
command about jobs (help, stop, retry) is answered here and then, as it needs no agent.

Runs on the quick queue, so GitHub replies never wait behind agent runs. Every side
effect is find-or-create (GitHub keeps one 👀 per user; the status comment is found again
by its marker), so a redelivered task converges on the same state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum

from bot.contract.db import Job
from bot.contract.job import COMMAND_KINDS, JobKind, JobStatus
from bot.contract.logs import DELIVERY
from bot.contract.store import JobStore
from workers.github.app_auth import ACKNOWLEDGE_PERMISSIONS, GitHubApp
from workers.github.forge import GitHubForge
from workers.jobs.commands import Commands, closed_it
from workers.jobs.texts import dashboard_link

log = logging.getLogger(__name__)


UNATTENDED_EVENTS = frozenset({"schedule", "cli"})


class Acknowledged(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    REFUSED = "refused"
    ALREADY_HANDLED = "already handled"
    MISSING = "missing"
    ANSWERED = "answered"
    """A command, carried out."""


def needs_write_access(job: Job) -> bool:
    """Whether the sender must be able to write to the repository for this job to run."""
    # CI failures on qwenfix's own branches, schedules and the operator's command line
    # are not asked for by anyone on GitHub.
    if job.kind == JobKind.FIX_CI or job.event in UNATTENDED_EVENTS:
        return False
    # The list of commands is for anyone the receiver let through; and GitHub lets only
    # an issue's author or people with triage access close it, which ends its work.
    return job.kind != JobKind.HELP and not closed_it(job)


def status_text(kind: str, job_id: int, sender: str) -> str:
    doing: dict[str, str] = {
        JobKind.FIX: "fixing this issue",
        JobKind.REVIEW: "reviewing this pull request",
        JobKind.ADDRESS_FEEDBACK: "working on the review feedback",
        JobKind.FIX_CI: "looking at the failing checks",
        JobKind.MAINTENANCE: "running the maintenance task",
    }
    what = doing.get(kind, kind)
    by = f", asked by @{sender}" if sender else ""
    return f"👀 qwenfix is {what}{by} (job {job_id}). This comment will be updated."


def acknowledge(
    job_id: int,
    *,
    jobs: JobStore,
    app: GitHubApp,
    bot_login: str,
    on_refusal: str,
    queue_run: Callable[[int], None],
    running_on: Callable[[str], str | None] = lambda target: None,
    commands: Commands | None = None,
    public_url: str | None = None,
) -> Acknowledged:
    """`running_on(target)` names the job already running on "owner/repo#N", if any;
    `commands` answers help, stop and retry (they fail without it)."""
    job = jobs.record(job_id)
    if job is None:
        log.warning("job %s does not exist", job_id)
        return Acknowledged.MISSING
    DELIVERY.set(job.delivery_id)
    if job.status != JobStatus.QUEUED:
        log.info("job %s is already %s", job_id, job.status)
        return Acknowledged.ALREADY_HANDLED
    if job.installation_id is None:
        jobs.set_status(
            job_id,
            JobStatus.FAILED,
            reason="the delivery named no App installation",
            expected=JobStatus.QUEUED,
        )
        return Acknowledged.REFUSED
    forge = GitHubForge(
        app.for_repository(job.installation_id, job.repo, ACKNOWLEDGE_PERMISSIONS), job.repo
    )
    if needs_write_access(job) and not forge.can_write(job.sender):
        reason = f"@{job.sender} does not have write access to {job.repo}"
        if (
            jobs.set_status(job_id, JobStatus.REFUSED, reason=reason, expected=JobStatus.QUEUED)
            and on_refusal == "comment"
            and job.number is not None
        ):
            forge.comment(
                job.number,
                f"Sorry @{job.sender}, only people with write access "
                f"to this repository can ask qwenfix to work on it.",
            )
        log.info("job %s refused: %s", job_id, reason)
        return Acknowledged.REFUSED
    if job.comment_id is not None and job.comment_kind:
        forge.react(job.comment_kind, job.comment_id, "eyes")
    if job.kind in COMMAND_KINDS:
        return _answer(job, forge, jobs, commands)
    if job.number is not None:
        text = status_text(job.kind, job.id, job.sender) + dashboard_link(job.id, public_url)
        busy = running_on(f"{job.repo}#{job.number}")
        if busy is not None and busy != str(job.id):
            text += (
                f"\n\nJob {busy} is still running here; this request starts as soon as it finishes."
            )
        forge.upsert_status(job.number, text, bot_login)
    if not jobs.set_status(job_id, JobStatus.ACKNOWLEDGED, expected=JobStatus.QUEUED):
        return Acknowledged.ALREADY_HANDLED  # another delivery of this task got here first
    try:
        queue_run(job_id)
    except Exception:
        jobs.set_status(
            job_id, JobStatus.QUEUED, expected=JobStatus.ACKNOWLEDGED
        )  # let a retry redo it
        raise
    log.info("job %s acknowledged: %s on %s#%s", job_id, job.kind, job.repo, job.number)
    return Acknowledged.ACKNOWLEDGED


def _answer(
    job: Job, forge: GitHubForge, jobs: JobStore, commands: Commands | None
) -> Acknowledged:
    if commands is None:
        jobs.set_status(
            job.id,
            JobStatus.FAILED,
            reason="this worker answers no commands",
            expected=JobStatus.QUEUED,
        )
        return Acknowledged.REFUSED
    status, reason = commands.answer(job, forge)
    if not jobs.set_status(job.id, status, reason=reason, expected=JobStatus.QUEUED):
        return Acknowledged.ALREADY_HANDLED
    log.info("job %s answered: %s on %s#%s: %s", job.id, job.kind, job.repo, job.number, reason)
    return Acknowledged.ANSWERED
