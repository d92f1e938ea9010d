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
