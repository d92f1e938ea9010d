"""Maintenance jobs on GitHub: one pull request per task and repository, kept current by
later runs; and follow-up commits on dependency bots' pull requests whose checks fail.

Nothing to do means nothing on GitHub: no pull request and no comment (a run asked for
in a comment is answered there).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.db import Job
from bot.forge import GitHubForge, PullInfo, RepositoryInfo
from bot.github_app import PUSH_PERMISSIONS, GitHubApp
from sandbox import SandboxBackend
from workers.agent.trajectory import Sink
from workers.fix import FixRequest, run_fix
from workers.forge.local import LocalForge
from workers.llm.types import Model
from workers.maintenance import upgrade_script
from workers.maintenance.entries import TASK_KINDS, MaintenanceTask, find_task
from workers.pipeline import (
    PushRefused,
    bot_identity,
    clone,
    error_text,
    follow_up,
    forge_for,
    git_out,
    push,
)
from workers.prompts import render
from workers.push_checks import blocked
from workers.repo_config import CONFIG_FILE, RepoConfigError, parse_repo_config
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

MARKER = re.compile(r"<!-- qwenfix:maintenance task=(\S+) base=([0-9a-f]+) -->")
UPGRADE_TOOL = "/tmp/qwenfix-tools/upgrade.py"
Outcome = tuple[str, str]


def repo_tasks(raw: bytes | None, defaults: list[MaintenanceTask]) -> list[MaintenanceTask]:
    """The repository's `maintenance:` list, or the operator's defaults without one.
    Raises RepoConfigError for a config that cannot be used."""
    if raw is None:
        return list(defaults)
    config, _ = parse_repo_config(raw)
    return list(config.maintenance) if config.maintenance is not None else list(defaults)


def run_maintenance_job(job: Job, *, app: GitHubApp, model: Model, backend: SandboxBackend,
                        settings: WorkerSettings, done_today: int,
                        sink: Sink | None = None) -> Outcome:
    """`done_today`: this repository's maintenance pull requests in the last 24 hours."""
    if job.installation_id is None or not job.task:
        return "error", "the job names no installation or maintenance task"
    forge = forge_for(job, app, {"checks": "read"})
    info = forge.repository()
    number = job.number

    def tell(text: str) -> None:  # only a run asked for in a comment is answered
        if number is not None:
            forge.upsert_status(number, text, settings.bot_login)

    found = forge.file(CONFIG_FILE, info.default_branch)
    try:
        tasks = repo_tasks(found[1] if found else None, settings.maintenance_defaults)
    except RepoConfigError as exc:
        tell(error_text(str(exc), job))
        return "error", str(exc)
    task = find_task(tasks, job.task)
    if task is None:
        known = sorted({t.id for t in tasks} | (set(TASK_KINDS) - {"custom"}))
        reason = f"there is no maintenance task {job.task!r} (known: {', '.join(known)})"
        tell(f"❌ qwenfix cannot run this (job {job.id}): {reason}.")
        return "error", reason
    if job.event == "schedule" and done_today >= settings.maintenance_max_prs_per_day:
        return "skipped", (f"{job.repo} reached its daily cap of "
                           f"{settings.maintenance_max_prs_per_day} maintenance pull requests")
    tell(f"⚙️ qwenfix is running the maintenance task `{task.id}` (job {job.id}).")
    run = repair_dependency_prs if task.task == "repair-dependency-prs" else maintenance_pull
    status, reason = run(job, task, forge=forge, info=info, app=app, model=model,
                         backend=backend, settings=settings, sink=sink)
    mark = {"resolved": "✅", "nothing-to-do": "✅", "skipped": "⏭️"}.get(status, "🤔")
    what = "nothing to do" if status == "nothing-to-do" else status
    tell(f"{mark} qwenfix ran the maintenance task `{task.id}` (job {job.id}): {what}: "
         f"{reason}")
    return status, reason


def lint_commands(checkout: Path) -> tuple[str, str | None] | None:
    """(linter, auto-fixer) the repository evidently uses: ruff, flake8, or npm run lint."""
    pyproject = checkout / "pyproject.toml"
    text = pyproject.read_text(errors="replace") if pyproject.is_file() else ""
    if "[tool.ruff" in text or (checkout / "ruff.toml").is_file() or \
            (checkout / ".ruff.toml").is_file():
        return "ruff check .", "ruff check --fix . && ruff format ."
    setup_cfg = checkout / "setup.cfg"
    if (checkout / ".flake8").is_file() or (
            setup_cfg.is_file() and "[flake8]" in setup_cfg.read_text(errors="replace")):
        return "flake8", None
    package = checkout / "package.json"
    if package.is_file() and '"lint"' in package.read_text(errors="replace"):
        return "npm run lint", None
    return None


class TaskUnusable(Exception):
    """The task cannot run on this repository as configured; the message says why."""


def maintenance_request(task: MaintenanceTask, job: Job, checkout: Path,
                        default_branch: str) -> FixRequest:
    check, autofix = task.command, task.fix
    if task.task == "lint-fix" and check is None:
        detected = lint_commands(checkout)
        if detected is None:
            raise TaskUnusable("lint-fix needs `command:` (the linter) in its .qwenfix.yml "
                               "entry: no ruff, flake8 or npm lint script was found")
        check, autofix = detected[0], autofix or detected[1]
    issue = render("maintenance_task.md.j2", kind=task.task, task_name=task.id,
                   default_branch=default_branch, check=check or "", prompt=task.prompt or "",
                   instructions=job.instructions, sender=job.sender)
    request = FixRequest(repo=checkout, issue=issue, title=task.title or task.id,
                         branch=task.branch, co_author=job.sender or None)
    if task.task == "fix-failing-tests":
        return request.model_copy(update={"only_when_needed": True, "require_green": True})
    if task.task == "update-dependencies":
        upgrade = task.command or \
            f"python3 {UPGRADE_TOOL}{' --allow-major' if task.allow_major else ''}"
        tools = {} if task.command else \
            {UPGRADE_TOOL: Path(upgrade_script.__file__).read_text(encoding="utf-8")}
        return request.model_copy(update={"upgrade": upgrade, "tools": tools,
                                          "only_when_needed": True, "require_green": True})
    if task.task == "lint-fix":
        return request.model_copy(update={"check": check, "autofix": autofix,
                                          "only_when_needed": True, "require_green": True})
    return request


def _title(task: MaintenanceTask, default_branch: str, report: Any) -> str:
    if task.title:
        return task.title
    upgrades = (report or {}).get("upgrades") or [] if isinstance(report, dict) else []
    return {"fix-failing-tests": f"Fix the failing tests on {default_branch}",
            "update-dependencies": f"Update {len(upgrades)} dependenc"
                                   f"{'y' if len(upgrades) == 1 else 'ies'}",
            "lint-fix": "Fix what the linter reports"}.get(
        task.task, (task.prompt or task.id).strip().splitlines()[0][:72])


def maintenance_pull(job: Job, task: MaintenanceTask, *, forge: GitHubForge,
                     info: RepositoryInfo, app: GitHubApp, model: Model,
                     backend: SandboxBackend, settings: WorkerSettings,
                     sink: Sink | None = None) -> Outcome:
    """Run the task on the default branch; publish on the task's own branch and keep its
    one pull request: opened the first time, updated by later runs."""
    if job.installation_id is None:
        return "error", "the job names no installation"
    identity = bot_identity(settings)
    token = app.installation_token(job.installation_id, job.repo, PUSH_PERMISSIONS)
    existing = forge.open_pull(task.branch)
    with tempfile.TemporaryDirectory(prefix="qwenfix-maintain-") as tmp:
        checkout = Path(tmp) / "repo"
        clone(info.clone_url, info.default_branch, checkout, token)
        base = git_out(checkout, "rev-parse", "HEAD", env=dict(os.environ))
        if existing is not None and not job.instructions:
            marker = MARKER.search(forge.pull(existing.number).body)
            if marker and marker.group(2) == base:
                return "skipped", (f"{existing.url} is up to date with {info.default_branch} "
                                   f"({base[:7]})")
        try:
            request = maintenance_request(task, job, checkout, info.default_branch)
        except TaskUnusable as exc:
            return "error", str(exc)
        result = run_fix(request, model=model, backend=backend, settings=settings,
                         forge=LocalForge(checkout, identity), model_name=settings.llm_model,
                         sink=sink)
        if result.status == "nothing-to-do" and existing is not None:
            # The default branch needs it no more (fixed or upgraded by someone else).
            forge.close_pull(existing.number, f"🧹 qwenfix closed this: {result.reason} on "
                                              f"`{info.default_branch}` at {base[:7]} (job "
                                              f"{job.id}).")
            return "nothing-to-do", f"{result.reason}; closed {existing.url}"
        if result.status != "resolved":
            return result.status, result.reason
        try:
            allow = parse_repo_config((checkout / CONFIG_FILE).read_bytes())[0] \
                .allow_workflow_changes if (checkout / CONFIG_FILE).is_file() else False
        except RepoConfigError as exc:
            return "error", str(exc)
        problem = blocked(result.diff, max_lines=settings.max_diff_lines, allow_workflows=allow)
        if problem is None:
            try:
                push(checkout, task.branch, token, identity)
            except PushRefused as exc:
                problem = str(exc)
        if problem is not None:
            return "blocked", problem
    report = result.report if isinstance(result.report, dict) else {}
    body = render("maintenance_pr.md.j2", task_name=task.id, kind=task.task, base=base,
                  schedule=task.schedule, default_branch=info.default_branch,
                  upgrades=report.get("upgrades") or [], notes=report.get("notes") or [],
                  turns=result.turns, evidence=result.pr_description or "")
    pull, created = forge.open_or_update_pull(
        branch=task.branch, base=info.default_branch,
        title=_title(task, info.default_branch, result.report), body=body,
        draft=settings.pr_draft)
    return "resolved", f"{'opened' if created else 'updated'} {pull.url}"


def _repair_marker(sha: str) -> str:
    return f"<!-- qwenfix:repair head={sha} -->"


def _candidates(forge: GitHubForge, task: MaintenanceTask, info: RepositoryInfo,
                bot_login: str) -> list[tuple[PullInfo, list[str]]]:
    """Open pull requests by the dependency bots, from this repository, whose head commit
    fails its checks and has not been tried by qwenfix already."""
    authors = {a.lower() for a in task.authors}
    out = []
    for pull in sorted(forge.open_pulls(), key=lambda p: p.number):
        if pull.author.lower() not in authors or pull.head_clone_url not in ("",
                                                                              info.clone_url):
            continue
        if _repair_marker(pull.head_sha) in forge.status_of(pull.number, bot_login):
            continue
        failures = forge.failed_checks(pull.head_sha)
        if failures:
            out.append((pull, failures))
    return out


def repair_dependency_prs(job: Job, task: MaintenanceTask, *, forge: GitHubForge,
                          info: RepositoryInfo, app: GitHubApp, model: Model,
                          backend: SandboxBackend, settings: WorkerSettings,
                          sink: Sink | None = None) -> Outcome:
    """A commit on the oldest failing dependency pull request that makes the code work
    with the upgrade (one per run: each is a whole agent run). Each head commit is tried
    once: the status comment remembers it."""
    bot = settings.bot_login
    candidates = _candidates(forge, task, info, bot)
    if not candidates:
        return "nothing-to-do", "no open dependency pull request with failing checks"
    pull, failures = candidates[0]
    tried = _repair_marker(pull.head_sha)
    forge.upsert_status(pull.number, f"⚙️ qwenfix is making the code work with this upgrade "
                                     f"(job {job.id}).\n{tried}", bot)
    text = (f"The pull request \"{pull.title}\" by {pull.author} upgrades dependencies and "
            "its checks fail. Make the code work with the upgraded versions, keeping them: "
            "do not pin back, downgrade or remove a dependency, and do not weaken tests."
            "\n\n" + "\n\n".join(failures))
    task_text: Callable[[Any], str] = lambda _: text  # noqa: E731
    done = follow_up(job, app=app, forge=forge, clone_url=info.clone_url,
                     branch=pull.head_ref, task=task_text,
                     title=f"Make the code work with {pull.title}"[:72], model=model,
                     backend=backend, settings=settings, sink=sink)
    if done.status == "resolved" and done.commit is not None:
        after = done.result.tests_after if done.result else None
        forge.upsert_status(
            pull.number, f"✅ qwenfix pushed {done.commit[:7]} so that the code works with "
                         f"this upgrade (job {job.id}); the tests pass"
                         f"{f' ({after.summary})' if after else ''}.\n\n"
                         f"{(done.result.summary or '') if done.result else ''}\n"
                         f"{tried}{_repair_marker(done.commit)}", bot)
        return "resolved", f"pushed {done.commit[:7]} to #{pull.number}"
    forge.upsert_status(pull.number, f"🤔 qwenfix could not make the code work with this "
                                     f"upgrade (job {job.id}): {done.reason}. Nothing was "
                                     f"pushed; it tries again when the branch changes.\n"
                                     f"{tried}", bot)
    return done.status, f"#{pull.number}: {done.reason}"
