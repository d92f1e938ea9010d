"""What qwenfix says on GitHub when a job cannot go on, shared by every kind."""

from __future__ import annotations

from bot.contract.db import Job
from workers.engine.context.safety import fence_safe


def error_text(reason: str, job: Job) -> str:
    return (
        f"❌ qwenfix could not work on this (job {job.id}): {reason}\n\n"
        "What you can do: check the repository's `.qwenfix.yml` (`test:` is the command "
        "that decides success, `setup:` installs what the tests need), fix what the "
        "message names, then comment `@qwenfix fix` again. Operators find the whole "
        f"run under job {job.id} in the jobs API and the worker's log."
    )


def not_handled_text(job: Job) -> str:
    return (
        f"qwenfix received this {job.kind} request (job {job.id}) but this version "
        f"cannot do {job.kind} jobs yet."
    )


def tail(text: str, lines: int = 30) -> str:
    return fence_safe("\n".join(text.strip().splitlines()[-lines:]))


def dashboard_link(job_id: int, public_url: str | None) -> str:
    """A line linking the job's page on the dashboard; "" when no public URL is set."""
    if not public_url:
        return ""
    return f"\n\n[Job {job_id} on the dashboard]({public_url.rstrip('/')}/jobs/{job_id})"


def stopped_text(job_ids: list[int], why: str) -> str:
    """The status comment of stopped jobs: the same words from the stop command and from
    the worker whose run it ended, so whichever writes last says the same."""
    which = f"job {job_ids[0]}" if len(job_ids) == 1 else "jobs " + ", ".join(map(str, job_ids))
    return (
        f"⏹️ qwenfix stopped {which}: {why}. Nothing more will be pushed for it; "
        "comment `@qwenfix retry` to run it again."
    )


def help_text(trigger: str, unknown: str = "") -> str:
    """The commands, and how a comment is read: the answer to `@qwenfix help`, and to a
    word that is no command."""
    at = f"@{trigger}"
    opening = f"`{at} {unknown}` is not a command I know.\n\n" if unknown else ""
    return (
        f"{opening}**What you can ask qwenfix** (write access to the repository needed, "
        f"except for `help`; `/{trigger}` at the start of a line works as `{at}`):\n\n"
        f"| command | where | what it does |\n"
        f"|---|---|---|\n"
        f"| `{at} fix [instructions]` | issue | works on the issue and opens a pull "
        "request when the tests pass |\n"
        f"| `{at} review [focus]` | pull request | reviews it, with inline comments |\n"
        f"| `{at} [feedback]` | qwenfix's pull request | follows up on the feedback with "
        "a new commit |\n"
        f"| `{at} maintain TASK [instructions]` | issue or pull request | runs a "
        "maintenance task (e.g. `fix-failing-tests`) |\n"
        f"| `{at} stop` | issue or pull request | stops the job running or waiting here "
        "(closing the issue or pull request does too) |\n"
        f"| `{at} retry` | issue or pull request | runs the last job here again |\n"
        f"| `{at} help` | anywhere | this list |\n\n"
        f"How a comment is read: `{at}` followed by a sentence on an issue (`{at} can "
        "you fix this? it fails on empty input`) is a fix request, the sentence its "
        f"instructions, when the mention opens its line; a mention in passing (`thanks "
        f"{at}`) asks for nothing. `{at}` followed by a single word that is not a command "
        "gets this list."
    )
