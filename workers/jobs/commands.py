"""The commands about jobs (`@qwenfix help`, `stop`, `retry`, and closing an issue or pull
request), answered on the quick queue by the worker that acknowledges them: no checkout,
no sandbox, no model, so they never wait behind an agent run.

Every side effect converges when the task runs again: an answer is found again by its
marker before it is posted, a stop sets only what is unset, a retry's job is found by its
delivery id and acknowledging it is compare-and-set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.contract.db import Job
from bot.contract.job import ON_THE_WAY, JobKind, JobStatus, StopRequest, Trigger
from bot.contract.store import JobStore
from workers.github.forge import GitHubForge
from workers.jobs.context import Outcome
from workers.jobs.texts import dashboard_link, help_text, stopped_text

CLOSE_EVENTS = frozenset({"issues", "pull_request"})
"""The events a stop comes from when an issue or pull request was closed."""


def closed_it(job: Job) -> bool:
    return job.kind == JobKind.STOP and job.event in CLOSE_EVENTS


def answer_marker(job_id: int) -> str:
    return f"<!-- qwenfix:answer job={job_id} -->"


def reply_once(forge: GitHubForge, number: int, job_id: int, body: str, bot_login: str) -> int:
    """The command's one answer on the issue or pull request: found again by its marker
    (a redelivered task), else posted."""
    marker = answer_marker(job_id)
    comment: Any
    for comment in forge.github.rest.paginate(
        forge.github.rest.issues.list_comments,
        owner=forge.owner,
        repo=forge.name,
        issue_number=number,
        per_page=100,
    ):
        author = comment.user.login if comment.user else ""
        if author == bot_login and marker in (comment.body or ""):
            return int(comment.id)
    return forge.comment(number, f"{marker}\n{body}")


@dataclass(frozen=True)
class Commands:
    """What answering a command needs besides the job and the repository's forge."""

    jobs: JobStore
    bot_login: str
    queue_acknowledge: Callable[[int], None]
    """Sends a new job (a retry's) to be acknowledged, as the receiver does."""
    trigger: str = "qwenfix"
    public_url: str | None = None

    def answer(self, job: Job, forge: GitHubForge) -> Outcome:
        if job.number is None:
            return Outcome(JobStatus.SKIPPED, "the command names no issue or pull request")
        if job.kind == JobKind.HELP:
            return self.help(job, job.number, forge)
        if job.kind == JobKind.STOP:
            return self.stop(job, job.number, forge)
        if job.kind == JobKind.RETRY:
            return self.retry(job, job.number, forge)
        return Outcome(JobStatus.SKIPPED, f"{job.kind} is not a command")

    def help(self, job: Job, number: int, forge: GitHubForge) -> Outcome:
        reply_once(forge, number, job.id, help_text(self.trigger, job.instructions), self.bot_login)
        what = f"`{job.instructions}` is no command: " if job.instructions else ""
        return Outcome(JobStatus.DONE, f"{what}answered with the list of commands")

    def stop(self, job: Job, number: int, forge: GitHubForge) -> Outcome:
        if closed_it(job):
            what = "pull request" if job.event == "pull_request" else "issue"
            why = f"@{job.sender} closed this {what}"
        else:
            why = f"@{job.sender} asked it to stop"
        asked, not_started = self.jobs.request_stop(
            job.repo, number, StopRequest(by=job.sender, why=why), before=job.id
        )
        if not asked:
            if not closed_it(job):  # closing an issue with nothing running is no news
                reply_once(
                    forge,
                    number,
                    job.id,
                    f"@{job.sender} no qwenfix job is running or waiting here, so there "
                    "is nothing to stop.",
                    self.bot_login,
                )
            return Outcome(JobStatus.DONE, "nothing to stop")
        if set(asked) == set(not_started):
            # None of them was running, so no worker will say they stopped.
            forge.upsert_status(
                number,
                stopped_text(asked, why) + dashboard_link(asked[0], self.public_url),
                self.bot_login,
            )
        # A running job finds the flag before its next request to the model and says so.
        return Outcome(JobStatus.DONE, f"asked job(s) {', '.join(map(str, asked))} to stop: {why}")

    def retry(self, job: Job, number: int, forge: GitHubForge) -> Outcome:
        last = self.jobs.last_job(job.repo, number, before=job.id)
        if last is None:
            reply_once(
                forge,
                number,
                job.id,
                f"@{job.sender} qwenfix has not worked here yet, so there is nothing to "
                f"retry; `@{self.trigger} help` lists what it can do.",
                self.bot_login,
            )
            return Outcome(JobStatus.DONE, "nothing to retry")
        if last.status in ON_THE_WAY:
            reply_once(
                forge,
                number,
                job.id,
                f"@{job.sender} job {last.id} is still {last.status} here; `@{self.trigger} "
                "stop` it first, or wait for it to finish.",
                self.bot_login,
            )
            return Outcome(JobStatus.DONE, f"job {last.id} is still {last.status}")
        again, _ = self.jobs.create(
            f"retry-{job.id}",
            job.event,
            Trigger(
                kind=JobKind(last.kind),
                repo=last.repo,
                number=last.number,
                sender=job.sender,  # who asked now: checked, credited and named
                installation_id=job.installation_id,
                instructions=last.instructions,
                comment_id=job.comment_id,
                comment_kind=job.comment_kind,
                head_branch=last.head_branch,
                # No head commit: the retry works on the branch as it is now.
                task=last.task,
            ),
        )
        self.queue_acknowledge(again.id)
        return Outcome(JobStatus.DONE, f"job {again.id} runs job {last.id} ({last.kind}) again")
