"""Maintenance jobs on GitHub: one pull request per task and repository, kept current by
later runs; and follow-up commits on dependency bots' pull requests whose checks fail.

Nothing to do means nothing on GitHub: no pull request and no comment (a run asked for
in a comment is answered there).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.contract.db import Job
from bot.contract.job import JobKind, JobStatus
from workers.engine import upgrade_script
from workers.engine.fix import FixRequest
from workers.engine.maintenance_tasks import TASK_KINDS, MaintenanceTask, find_task
from workers.engine.prompts import render
from workers.engine.repo_config import RepoConfigError, parse_repo_config
from workers.github.forge import PullInfo, RepositoryInfo
from workers.jobs.config_source import FoundConfig, read_config
from workers.jobs.context import JobContext, JobUnusable, Outcome
from workers.jobs.follow_up import follow_up
from workers.jobs.publish import Blocked, PullSpec, publish
from workers.jobs.texts import error_text

log = logging.getLogger(__name__)

MARKER = re.compile(r"<!-- qwenfix:maintenance task=(\S+) base=([0-9a-f]+) -->")
UPGRADE_TOOL = "/tmp/qwenfix-tools/upgrade.py"
PERMISSIONS = {"checks": "read"}


def repo_tasks(found: FoundConfig | None, defaults: list[MaintenanceTask]) -> list[MaintenanceTask]:
    """The `maintenance:` list of the repository's config over its owner's defaults (as
    the schedule reads them), or the operator's defaults without one. Raises
    RepoConfigError for a config that cannot be used."""
    if found is None:
        return list(defaults)
    config, _ = parse_repo_config(found.raw, path=found.path, defaults=found.defaults)
    return list(config.maintenance) if config.maintenance is not None else list(defaults)


def run(ctx: JobContext) -> Outcome:
    since = datetime.now(UTC) - timedelta(days=1)
    done_today = ctx.jobs.count_since(
        ctx.job.repo, JobKind.MAINTENANCE, (JobStatus.RESOLVED,), since
    )
    return run_maintenance(ctx, done_today=done_today)


def run_maintenance(ctx: JobContext, *, done_today: int) -> Outcome:
    """`done_today`: this repository's maintenance pull requests in the last 24 hours."""
    job, forge, settings, number = ctx.job, ctx.forge, ctx.settings, ctx.job.number
    if not job.task:
        raise JobUnusable("the job names no installation or maintenance task")
    info = forge.repository()
    try:
        tasks = repo_tasks(
            read_config(ctx.app, job.repo, ctx.installation), settings.maintenance_defaults
        )
    except RepoConfigError as exc:
        ctx.tell(number, error_text(str(exc), job))
        return Outcome(JobStatus.ERROR, str(exc))
    task = find_task(tasks, job.task)
    if task is None:
        known = sorted({t.id for t in tasks} | (set(TASK_KINDS) - {"custom"}))
        reason = f"there is no maintenance task {job.task!r} (known: {', '.join(known)})"
        ctx.tell(number, f"❌ qwenfix cannot run this (job {job.id}): {reason}.")
        return Outcome(JobStatus.ERROR, reason)
    if job.event == "schedule" and done_today >= settings.maintenance_max_prs_per_day:
        return Outcome(
            JobStatus.SKIPPED,
            (
                f"{job.repo} reached its daily cap of {settings.maintenance_max_prs_per_day} "
                "maintenance pull requests"
            ),
        )
    # Only a run asked for in a comment is answered (`number` is None for a schedule).
    ctx.tell(number, f"⚙️ qwenfix is running the maintenance task `{task.id}` (job {job.id}).")
    step = repair_dependency_prs if task.task == "repair-dependency-prs" else maintenance_pull
    status, reason = step(ctx, task, info)
    mark = {JobStatus.RESOLVED: "✅", JobStatus.NOTHING_TO_DO: "✅", JobStatus.SKIPPED: "⏭️"}.get(
        status, "🤔"
    )
    what = "nothing to do" if status == JobStatus.NOTHING_TO_DO else status.value
    ctx.tell(
        number,
        f"{mark} qwenfix ran the maintenance task `{task.id}` (job {job.id}): {what}: {reason}",
    )
    return Outcome(status, reason)


def lint_commands(checkout: Path) -> tuple[str, str | None] | None:
    """(linter, auto-fixer) the repository evidently uses: ruff, flake8, or npm run lint."""
    pyproject = checkout / "pyproject.toml"
    text = pyproject.read_text(errors="replace") if pyproject.is_file() else ""
    if (
        "[tool.ruff" in text
        or (checkout / "ruff.toml").is_file()
        or (checkout / ".ruff.toml").is_file()
    ):
        return "ruff check .", "ruff check --fix . && ruff format ."
    setup_cfg = checkout / "setup.cfg"
    if (checkout / ".flake8").is_file() or (
        setup_cfg.is_file() and "[flake8]" in setup_cfg.read_text(errors="replace")
    ):
        return "flake8", None
    package = checkout / "package.json"
    if package.is_file() and '"lint"' in package.read_text(errors="replace"):
        return "npm run lint", None
    return None


class TaskUnusable(Exception):
    """The task cannot run on this repository as configured; the message says why."""


def maintenance_request(
    task: MaintenanceTask, job: Job, checkout: Path, default_branch: str
) -> FixRequest:
    check, autofix = task.command, task.fix
    if task.task == "lint-fix" and check is None:
        detected = lint_commands(checkout)
        if detected is None:
            raise TaskUnusable(
                "lint-fix needs `command:` (the linter) in its .qwenfix.yml "
                "entry: no ruff, flake8 or npm lint script was found"
            )
        check, autofix = detected[0], autofix or detected[1]
    issue = render(
        "maintenance_task.md.j2",
        kind=task.task,
        task_name=task.id,
        default_branch=default_branch,
        check=check or "",
        prompt=task.prompt or "",
        instructions=job.instructions,
        sender=job.sender,
    )
    request = FixRequest(
        repo=checkout,
        issue=issue,
        title=task.title or task.id,
        branch=task.branch,
        co_author=job.sender or None,
    )
    if task.task == "fix-failing-tests":
        return request.model_copy(update={"only_when_needed": True, "require_green": True})
    if task.task == "update-dependencies":
        upgrade = (
            task.command or f"python3 {UPGRADE_TOOL}{' --allow-major' if task.allow_major else ''}"
        )
        tools = (
            {}
            if task.command
            else {UPGRADE_TOOL: Path(upgrade_script.__file__).read_text(encoding="utf-8")}
        )
        return request.model_copy(
            update={
                "upgrade": upgrade,
                "tools": tools,
                "only_when_needed": True,
                "require_green": True,
            }
        )
    if task.task == "lint-fix":
        return request.model_copy(
            update={
                "check": check,
                "autofix": autofix,
                "only_when_needed": True,
                "require_green": True,
            }
        )
    return request


def _title(task: MaintenanceTask, default_branch: str, report: Any) -> str:
    if task.title:
        return task.title
    upgrades = (report or {}).get("upgrades") or [] if isinstance(report, dict) else []
    return {
        "fix-failing-tests": f"Fix the failing tests on {default_branch}",
        "update-dependencies": f"Update {len(upgrades)} dependenc"
        f"{'y' if len(upgrades) == 1 else 'ies'}",
        "lint-fix": "Fix what the linter reports",
    }.get(task.task, (task.prompt or task.id).strip().splitlines()[0][:72])


def maintenance_pull(ctx: JobContext, task: MaintenanceTask, info: RepositoryInfo) -> Outcome:
    """Run the task on the default branch; publish on the task's own branch and keep its
    one pull request: opened the first time, updated by later runs."""
    job, forge = ctx.job, ctx.forge
    existing = forge.open_pull(task.branch)
    with ctx.checkout(info.clone_url, info.default_branch, prefix="qwenfix-maintain-") as checkout:
        base = checkout.head()
        if existing is not None and not job.instructions:
            marker = MARKER.search(forge.pull(existing.number).body)
            if marker and marker.group(2) == base:
                return Outcome(
                    JobStatus.SKIPPED,
                    f"{existing.url} is up to date with {info.default_branch} ({base[:7]})",
                )
        try:
            request = maintenance_request(task, job, checkout.path, info.default_branch)
        except TaskUnusable as exc:
            return Outcome(JobStatus.ERROR, str(exc))
        result = ctx.fix(request, checkout)
        if result.status == "nothing-to-do" and existing is not None:
            # The default branch needs it no more (fixed or upgraded by someone else).
            forge.close_pull(
                existing.number,
                f"🧹 qwenfix closed this: {result.reason} on "
                f"`{info.default_branch}` at {base[:7]} (job "
                f"{job.id}).",
            )
            return Outcome(JobStatus.NOTHING_TO_DO, f"{result.reason}; closed {existing.url}")
        if result.status != "resolved" or result.config is None:
            return Outcome(JobStatus(result.status), result.reason)
        report = result.report if isinstance(result.report, dict) else {}
        body = render(
            "maintenance_pr.md.j2",
            task_name=task.id,
            kind=task.task,
            base=base,
            schedule=task.schedule,
            default_branch=info.default_branch,
            upgrades=report.get("upgrades") or [],
            notes=report.get("notes") or [],
            turns=result.turns,
            evidence=result.pr_description or "",
        )
        try:
            done = publish(
                ctx,
                checkout,
                branch=task.branch,
                diff=result.diff,
                allow_workflows=result.config.allow_workflow_changes,
                pull=PullSpec(
                    base=info.default_branch,
                    body=body,
                    title=_title(task, info.default_branch, result.report),
                    draft=ctx.settings.pr_draft,
                ),
            )
        except Blocked as exc:
            return Outcome(JobStatus.BLOCKED, exc.problem)
    url = done.pull.url if done.pull else ""
    return Outcome(JobStatus.RESOLVED, f"{'opened' if done.created else 'updated'} {url}")


def _repair_marker(sha: str) -> str:
    return f"<!-- qwenfix:repair head={sha} -->"


def _candidates(
    ctx: JobContext, task: MaintenanceTask, info: RepositoryInfo
) -> list[tuple[PullInfo, list[str]]]:
    """Open pull requests by the dependency bots, from this repository, whose head commit
    fails its checks and has not been tried by qwenfix already."""
    forge, authors, out = ctx.forge, {a.lower() for a in task.authors}, []
    for pull in sorted(forge.open_pulls(), key=lambda p: p.number):
        if pull.author.lower() not in authors or pull.head_clone_url not in ("", info.clone_url):
            continue
        if _repair_marker(pull.head_sha) in forge.status_of(pull.number, ctx.bot_login):
            continue
        failures = forge.failed_checks(pull.head_sha)
        if failures:
            out.append((pull, failures))
    return out


def repair_dependency_prs(ctx: JobContext, task: MaintenanceTask, info: RepositoryInfo) -> Outcome:
    """A commit on the oldest failing dependency pull request that makes the code work
    with the upgrade (one per run: each is a whole agent run). Each head commit is tried
    once: the status comment remembers it."""
    job = ctx.job
    candidates = _candidates(ctx, task, info)
    if not candidates:
        return Outcome(
            JobStatus.NOTHING_TO_DO, "no open dependency pull request with failing checks"
        )
    pull, failures = candidates[0]
    tried = _repair_marker(pull.head_sha)
    ctx.tell(
        pull.number, f"⚙️ qwenfix is making the code work with this upgrade (job {job.id}).\n{tried}"
    )
    text = (
        f'The pull request "{pull.title}" by {pull.author} upgrades dependencies and '
        "its checks fail. Make the code work with the upgraded versions, keeping them: "
        "do not pin back, downgrade or remove a dependency, and do not weaken tests."
        "\n\n" + "\n\n".join(failures)
    )
    task_text: Callable[[Any], str] = lambda _: text  # noqa: E731
    done = follow_up(
        ctx,
        clone_url=info.clone_url,
        branch=pull.head_ref,
        task=task_text,
        title=f"Make the code work with {pull.title}"[:72],
    )
    if done.status == JobStatus.RESOLVED and done.commit is not None:
        after = done.result.tests_after if done.result else None
        ctx.tell(
            pull.number,
            f"✅ qwenfix pushed {done.commit[:7]} so that the code works with "
            f"this upgrade (job {job.id}); the tests pass"
            f"{f' ({after.summary})' if after else ''}.\n\n"
            f"{(done.result.summary or '') if done.result else ''}\n"
            f"{tried}{_repair_marker(done.commit)}",
        )
        return Outcome(JobStatus.RESOLVED, f"pushed {done.commit[:7]} to #{pull.number}")
    ctx.tell(
        pull.number,
        f"🤔 qwenfix could not make the code work with this upgrade (job "
        f"{job.id}): {done.reason}. Nothing was pushed; it tries again "
        f"when the branch changes.\n{tried}",
    )
    return Outcome(done.status, f"#{pull.number}: {done.reason}")
