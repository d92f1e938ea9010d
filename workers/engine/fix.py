"""One fix run, start to finish: sandbox, setup, baseline tests, agent, verdict, branch.

Concrete parts (model, sandbox backend, forge) are passed in; this module builds none.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from bot.contract.events import Event
from bot.contract.job import StopRequest
from sandbox import Sandbox, SandboxBackend, SandboxError, SandboxUnavailable
from sandbox.protocol import CommandResult, ca_environment
from workers.engine import git as gitops
from workers.engine.agent.loop import AgentResult, SubmitOutcome
from workers.engine.agent.tools import SubmitRequested, clip
from workers.engine.agent.trajectory import Sink, Trajectory
from workers.engine.agent_run import AgentRun, ContextTooSmall, first_messages
from workers.engine.change import Change, ChangeUnreadable, capture_change, written_outside
from workers.engine.context import repository_instructions
from workers.engine.context.safety import fence_safe, neutralise, visible_only
from workers.engine.diffstat import diffstat
from workers.engine.environment import Environment, EnvironmentMissing, choose, probe
from workers.engine.llm.types import Message, Model, Usage
from workers.engine.local_forge import LocalForge, slugify
from workers.engine.prepared import Prepared, working_sandbox
from workers.engine.prompts import render
from workers.engine.repo_config import (
    ConfigDefaults,
    EffectiveLimits,
    RepoConfig,
    RepoConfigError,
    load_repo_config,
)
from workers.engine.verdict import Judge, Judgement
from workers.engine.verify import TestRun, run_tests
from workers.engine.workspace import WorkspaceFailed
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)


class FixRequest(BaseModel):
    repo: Path
    issue: str
    issue_number: int | None = None
    title: str | None = None
    co_author: str | None = None
    """The person who asked, credited with a Co-authored-by trailer."""
    branch: str | None = None
    """The branch to publish on; default qwenfix/issue-N, or a slug of the title."""
    upgrade: str | None = None
    """Changes the tree before setup, with the setup's network (dependency upgrades); if
    it changes nothing, there is nothing to do. May write a JSON report to REPORT_PATH."""
    tools: dict[str, str] = Field(default_factory=dict)
    """Files written into the sandbox, outside the workspace, before `upgrade` runs."""
    autofix: str | None = None
    """Runs after setup, offline (formatters, `ruff check --fix`); its changes count."""
    check: str | None = None
    """A command that must exit 0 for a change to be accepted, besides the tests."""
    only_when_needed: bool = False
    """No agent when `check` (without one: the test suite) passes; what `upgrade` and
    `autofix` changed is then published as it is, or there is nothing to do."""
    require_green: bool = False
    """Accept a change only when the whole test suite passes."""
    test_command: str | None = None
    """Instead of the repository's own (evaluation task sets name theirs)."""
    setup_command: str | None = None
    config_defaults: ConfigDefaults | None = None
    """The owner's defaults under the repository's config file (the worker fetched them)."""


class TestSummary(BaseModel):
    exit_code: int | None
    timed_out: bool = False
    summary: str
    output_tail: str
    failing: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, run: TestRun) -> TestSummary:
        return cls(
            exit_code=run.exit_code,
            timed_out=run.timed_out,
            summary=run.summary(),
            output_tail=run.output_tail[-2000:],
            failing=run.failing(),
        )


REPORT_PATH = "/tmp/qwenfix/report.json"


class FixResult(BaseModel):
    status: Literal[
        "resolved", "unresolved", "unverified", "context_full", "error", "nothing-to-do", "stopped"
    ]
    """unverified: the change passes only with its own edits to existing tests or test
    configuration (or adds code that reaches into the test runner): never published."""
    reason: str
    branch: str | None = None
    commit: str | None = None
    diff: str = ""
    tests_before: TestSummary | None = None
    tests_after: TestSummary | None = None
    """The base commit's tests over the change, in a fresh sandbox."""
    tests_as_diff: TestSummary | None = None
    """The tests as the change leaves them, when it edits existing tests or their config."""
    test_changes: list[str] = Field(default_factory=list)
    """Every test file and test control the change touches, described."""
    turns: int = 0
    usage: Usage = Field(default_factory=Usage)
    trajectory: str | None = None
    title: str | None = None
    summary: str | None = None
    declined: list[str] = Field(default_factory=list)
    pr_description: str | None = None
    pr_description_path: str | None = None
    red_baseline: bool = False
    config_source: str | None = None
    duration_s: float = 0.0
    report: Any = None
    """What `upgrade` wrote to REPORT_PATH (JSON), if anything."""
    config: RepoConfig | None = Field(default=None, exclude=True)
    """The repository's configuration as the run used it (read once, from the base
    commit), for what the job does with the result."""
    failed_in: Literal["environment", "agent"] | None = None
    """For an error: before the agent could start (config, sandbox, setup, baseline), or
    in the agent's run (the model failing)."""
    stopped_by: str | None = None
    """Who asked the run to stop (status `stopped`)."""


class FixFailed(Exception):
    """The run cannot go on; `reason` is what the user is told."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NothingToDo(Exception):
    """The repository needs no change (its tests or check pass, nothing to upgrade)."""

    def __init__(self, reason: str, report: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.report = report


@dataclass
class _Run:
    request: FixRequest
    settings: WorkerSettings
    config: RepoConfig
    base: str
    trajectory: Trajectory
    repo: Path
    before: TestRun | None = None
    prepared: Prepared | None = None
    environment: Environment | None = None
    judge: Judge | None = None
    change: Change | None = None
    judgement: Judgement | None = None
    unverified_offered: str | None = None
    """The tree last answered `unverified`: submitted again unchanged, it stands."""
    diff: str = ""
    attempts: int = 0
    notes: list[str] = field(default_factory=list)
    """What the harness found before the agent starts (upgrades, linter output)."""
    report: Any = None

    @property
    def limits(self) -> EffectiveLimits:
        return EffectiveLimits.of(self.config, self.settings)

    @property
    def baseline(self) -> TestRun:
        if self.before is None:
            raise RuntimeError("the baseline tests have not run yet")
        return self.before

    def verified(self) -> tuple[Change, Judgement]:
        if self.change is None or self.judgement is None or self.judgement.judged is None:
            raise RuntimeError("the change has not been verified yet")
        return self.change, self.judgement

    def capture(self, sb: Sandbox) -> Change:
        if self.prepared is None:
            raise RuntimeError("the workspace has not been prepared yet")
        try:
            change = capture_change(
                sb, self.repo, self.base, leave_out=self.prepared.leftovers, workdir=sb.spec.workdir
            )
        except ChangeUnreadable as exc:
            raise SandboxError(exc.reason) from exc
        self.change, self.diff = change, change.diff
        return change


def run_fix(
    request: FixRequest,
    *,
    model: Model,
    backend: SandboxBackend,
    settings: WorkerSettings,
    forge: LocalForge | None = None,
    model_name: str = "",
    sink: Sink | None = None,
    cancelled: Callable[[], StopRequest | None] = lambda: None,
) -> FixResult:
    """`cancelled()` is asked before each request to the model: who wants the run
    stopped, or None."""
    started = time.monotonic()
    repo = request.repo.resolve()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = (
        settings.trajectory_dir / f"{stamp}-{slugify(request.title or request.issue, 30)}-"
        f"{uuid.uuid4().hex[:8]}.jsonl"
    )
    with Trajectory(path, sink) as trajectory:
        try:
            result = _fix(
                request,
                repo,
                model=model,
                backend=backend,
                settings=settings,
                forge=forge or LocalForge(repo),
                trajectory=trajectory,
                model_name=model_name,
                cancelled=cancelled,
            )
        except FixFailed as failed:
            result = FixResult(status="error", reason=failed.reason, failed_in="environment")
        except NothingToDo as nothing:
            result = FixResult(status="nothing-to-do", reason=nothing.reason, report=nothing.report)
        result.trajectory = str(path)
        result.duration_s = round(time.monotonic() - started, 3)
        if result.diff:
            trajectory.record(Event.DIFF, diff=result.diff[:2_000_000])
        trajectory.record(Event.RESULT, **result.model_dump(exclude={"diff", "pr_description"}))
    return result


def _fix(
    request: FixRequest,
    repo: Path,
    *,
    model: Model,
    backend: SandboxBackend,
    settings: WorkerSettings,
    forge: LocalForge,
    trajectory: Trajectory,
    model_name: str,
    cancelled: Callable[[], StopRequest | None],
) -> FixResult:
    base, paths, config, test_command = _starting_point(request, repo)
    try:
        environment = choose(config, settings, backend)
    except EnvironmentMissing as exc:
        raise FixFailed(exc.reason) from exc
    settings = environment.settings(settings)
    run = _Run(
        request=request,
        settings=settings,
        config=config,
        base=base,
        trajectory=trajectory,
        repo=repo,
    )
    trajectory.record(
        Event.START,
        repo=str(repo),
        base=base,
        issue=request.issue,
        config=config.model_dump(),
        config_source=config.source,
    )
    limits = run.limits
    try:
        with working_sandbox(
            backend,
            repo,
            base,
            config=config,
            settings=settings,
            trajectory=trajectory,
            run_label=trajectory.path.stem,
            needs_network=bool(request.upgrade),
            before_setup=(lambda box: _upgrade(box, run)) if request.upgrade else None,
        ) as (sb, prepared):
            run.prepared = prepared
            run.environment = probe(sb, environment)
            _record_environment(run.environment, trajectory)
            check = _autofix_and_check(sb, run)
            log.info("running the tests before any change: %s", test_command)
            run.before = run_tests(
                sb,
                test_command,
                label="before",
                timeout=limits.test_timeout_s,
                reporters=config.reporters,
            )
            trajectory.record(Event.TESTS_BEFORE, **run.before.model_dump())
            log.info("tests before: %s", run.before.summary())
            if run.before.exit_code == 127:
                raise FixFailed(
                    f"the test command `{config.test}` was not found in the "
                    f"sandbox image {settings.sandbox_image}:\n"
                    f"{run.before.output_tail[-500:]}"
                )
            run.judge = Judge(
                backend=backend,
                prepared=prepared,
                repo=repo,
                config=config,
                settings=settings,
                baseline=run.before,
                issue_text=request.issue,
                check=request.check,
                run_label=trajectory.path.stem,
            )
            needed = not check.ok if check is not None else not run.before.passed
            if request.only_when_needed and not needed:
                outcome = _without_agent(sb, run)
            else:
                outcome = AgentRun(
                    model=model,
                    sandbox=sb,
                    limits=limits,
                    settings=settings,
                    trajectory=trajectory,
                    messages=lambda window, share: _first_messages(run, repo, paths, window, share),
                    run_tests=lambda: _tests_tool(sb, run),
                    on_submit=lambda submit: _on_submit(sb, run, submit),
                    cancelled=cancelled,
                ).run()
            if outcome.status not in ("resolved", "unverified", "error"):
                run.capture(sb)  # what was tried, for the record
    except WorkspaceFailed as exc:
        raise FixFailed(exc.reason) from exc
    except SandboxUnavailable as exc:
        raise FixFailed(f"sandbox unavailable: {exc}") from exc
    except SandboxError as exc:
        raise FixFailed(f"sandbox failed: {exc}") from exc

    judgement = run.judgement
    judged = judgement.judged if judgement else None
    reason = outcome.reason
    if outcome.status == "unresolved" and judgement is not None:
        reason = f"{reason}; the last change submitted was not accepted: {judgement.reason}"
    result = FixResult(
        status=outcome.status,
        reason=reason,
        diff=run.diff,
        tests_before=TestSummary.of(run.before),
        tests_after=TestSummary.of(judged) if judged else None,
        tests_as_diff=TestSummary.of(judgement.as_diff)
        if judgement and judgement.as_diff
        else None,
        test_changes=[c.describe() for c in judgement.test_changes] if judgement else [],
        turns=outcome.turns,
        usage=outcome.usage,
        title=outcome.title,
        summary=outcome.summary,
        declined=outcome.declined,
        config_source=config.source,
        red_baseline=bool(judgement and judgement.verdict.red_baseline),
        report=run.report,
        failed_in="agent" if outcome.status == "error" else None,
        config=config,
        stopped_by=outcome.stopped_by,
    )
    if outcome.status == "resolved":
        _publish(result, run, forge, outcome.duration_s, model_name)
    return result


def _record_environment(environment: Environment, trajectory: Trajectory) -> None:
    trajectory.record(
        Event.ENVIRONMENT,
        image=environment.image,
        image_source=environment.source,
        versions={e.value: v for e, v in environment.versions.items()},
        asked={t.ecosystem.value: t.version for t in environment.toolchains if t.version},
        notes=list(environment.notes),
    )
    log.info("sandbox image %s (%s)", environment.image, environment.source)
    for line in environment.describe().splitlines() + list(environment.notes):
        log.info("environment: %s", line.lstrip("- "))


def _starting_point(request: FixRequest, repo: Path) -> tuple[str, list[str], RepoConfig, str]:
    """The base commit, its files, the configuration read once from it, and the test
    command that decides."""
    if not gitops.is_repository(repo):
        raise FixFailed(f"{repo} is not a git repository")
    try:
        base = gitops.resolve(repo, "HEAD")
    except gitops.GitError as exc:
        raise FixFailed(f"{repo} has no commit to start from (HEAD does not resolve)") from exc
    paths = gitops.list_files(repo, base)
    try:
        config = load_repo_config(
            paths, lambda p: gitops.read_blob(repo, base, p), request.config_defaults
        )
    except RepoConfigError as exc:
        raise FixFailed(str(exc)) from exc
    if request.test_command:
        config.test = request.test_command
    if request.setup_command is not None:
        config.setup = request.setup_command or None
    if not config.test:
        raise FixFailed(
            "no test command: none could be detected (looked for pytest, tox, npm, go, cargo, "
            "make test). Add a .qwenfix.yml at the repository root with `test: <command>`."
        )
    return base, paths, config, config.test


def _upgrade(sb: Sandbox, run: _Run) -> None:
    """The tree-changing step before setup (dependency upgrades), with setup's network."""
    request = run.request
    for path, content in request.tools.items():
        sb.write_file(path, content.encode())
    timeout = run.limits.setup_timeout_s
    result = sb.run(
        f"mkdir -p {Path(REPORT_PATH).parent} && {request.upgrade}",
        timeout=timeout,
        env=ca_environment(sb.spec),
    )
    run.trajectory.record(Event.UPGRADE, **result.model_dump())
    if not result.ok:
        what = "timed out" if result.timed_out else f"failed (exit {result.exit_code})"
        raise FixFailed(f"the upgrade step `{request.upgrade}` {what}:\n{result.output[-1500:]}")
    try:
        run.report = json.loads(sb.read_file(REPORT_PATH))
    except (FileNotFoundError, IsADirectoryError, ValueError):
        run.report = None
    if not _sandbox_changed(sb):
        raise NothingToDo(
            "nothing to upgrade: every dependency is at its newest allowed version",
            report=run.report,
        )
    run.notes.append(
        f"`{request.upgrade}` changed the repository before this task "
        f"started:\n\n```\n{fence_safe(clip(result.output, 3000))}\n```"
    )


def _autofix_and_check(sb: Sandbox, run: _Run) -> CommandResult | None:
    """Auto-fixers, then the check (a linter): its report is part of the task."""
    request, timeout = run.request, run.settings.command_timeout_s * 5
    if request.autofix:
        fixed = sb.run(request.autofix, timeout=timeout)
        run.trajectory.record(Event.AUTOFIX, **fixed.model_dump())
    if not request.check:
        return None
    check = sb.run(request.check, timeout=timeout)
    run.trajectory.record(Event.CHECK, **check.model_dump())
    if check.exit_code == 127:
        raise FixFailed(
            f"the check command `{request.check}` was not found in the sandbox "
            f"(is it installed by `setup:`?):\n{check.output[-500:]}"
        )
    if not check.ok:
        run.notes.append(
            f"`{request.check}` must pass (exit 0). It reports:\n\n```\n"
            f"{fence_safe(clip(check.output, 6000))}\n```"
        )
    return check


def _without_agent(sb: Sandbox, run: _Run) -> AgentResult:
    """The check (or the suite) passes already: publish what the harness changed, if
    anything, when the tests accept it."""
    before, request = run.baseline, run.request
    change = run.capture(sb)
    if change.empty:
        what = f"`{request.check}` passes" if request.check else "the test suite passes"
        raise NothingToDo(f"nothing to do: {what} ({before.summary()})", report=run.report)
    judgement = _judged(sb, run, change)
    resolved = judgement.resolved and (before.passed or not request.require_green)
    reason = (
        judgement.reason if resolved else f"the test suite {before.summary()} with these changes"
    )
    return AgentResult(
        status="resolved" if resolved else "unresolved",
        reason=reason,
        turns=0,
        usage=Usage(),
        duration_s=0.0,
    )


def _judged(sb: Sandbox, run: _Run, change: Change) -> Judgement:
    """The verdict on `change`, recorded: the base commit's tests in a fresh sandbox."""
    if run.judge is None:
        raise RuntimeError("no judge before the baseline")
    run.attempts += 1
    judgement = run.judge(
        change, label=f"verify-{run.attempts}", outside=lambda: written_outside(sb, sb.spec.workdir)
    )
    if (
        run.request.require_green
        and judgement.resolved
        and judgement.judged
        and not judgement.judged.passed
    ):
        judgement = judgement.model_copy(
            update={
                "status": "unresolved",
                "reason": f"the whole test suite must pass; it {judgement.judged.summary()}",
            }
        )
    run.judgement = judgement
    run.trajectory.record(
        Event.VERIFY,
        status=judgement.status,
        verdict=judgement.verdict.model_dump(),
        reason=judgement.reason,
        tests=judgement.judged.model_dump() if judgement.judged else None,
        as_diff=judgement.as_diff.model_dump() if judgement.as_diff else None,
        test_changes=[c.describe() for c in judgement.test_changes],
        runner_references=judgement.runner_references,
        outside=judgement.outside,
        left_out=judgement.left_out,
        tree=change.tree,
    )
    log.info("verdict: %s (%s)", judgement.status, judgement.reason)
    return judgement


def _first_messages(
    run: _Run, repo: Path, paths: list[str], window: int | None = None, share: float = 1.0
) -> list[Message]:
    """System prompt, then the task: instructions, the packed repository, the baseline and
    the issue. Rendered once; the conversation only grows after it."""
    before, settings = run.baseline, run.settings
    instructions, source = repository_instructions(repo, run.base, paths)
    system = render("system.md.j2", workdir="/workspace", test_command=run.config.test)

    def task(repository: str) -> str:
        return render(
            "task.md.j2",
            instructions=instructions,
            instructions_source=source,
            repository=repository,
            test_command=run.config.test,
            environment=run.environment.describe() if run.environment else "",
            environment_notes=list(run.environment.notes) if run.environment else [],
            baseline_summary=before.summary(),
            baseline_failing=before.failing()[:50],
            baseline_output=neutralise(clip(before.output_tail, 3000)),
            issue=neutralise("\n\n".join([visible_only(run.request.issue), *run.notes])),
            issue_number=run.request.issue_number,
        )

    try:
        return first_messages(
            system,
            task,
            repo=repo,
            rev=run.base,
            about=run.request.issue,
            config=run.config,
            settings=settings,
            trajectory=run.trajectory,
            window=window,
            share=share,
        )
    except ContextTooSmall as exc:
        raise FixFailed(exc.reason) from exc


def _tests_tool(sb: Sandbox, run: _Run) -> str:
    run.attempts += 1
    result = run_tests(
        sb,
        run.config.test or "",
        label=f"agent-{run.attempts}",
        timeout=run.limits.test_timeout_s,
        reporters=run.config.reporters,
    )
    failing = result.failing()
    listed = f"\nFailing: {', '.join(failing[:30])}" if failing else ""
    return f"Tests {result.summary()}.{listed}\n{clip(result.output_tail, 6000)}"


def _sandbox_changed(sb: Sandbox) -> bool:
    """Whether the harness's own step (an upgrade, before any agent) changed the tree."""
    result = sb.run("git status --porcelain --untracked-files=all", timeout=120)
    if not result.ok:
        raise SandboxError(f"could not look for changes: {result.output[-500:]}")
    return bool(result.output.strip())


def _on_submit(sb: Sandbox, run: _Run, submit: SubmitRequested) -> SubmitOutcome:
    change = run.capture(sb)
    judgement = _judged(sb, run, change)
    if judgement.resolved:
        return SubmitOutcome(accepted=True, message=judgement.reason)
    if judgement.status == "unverified":
        if run.unverified_offered == change.tree:
            return SubmitOutcome(accepted=True, status="unverified", message=judgement.reason)
        run.unverified_offered = change.tree
    judged = judgement.judged
    verdict = judgement.verdict
    message = render(
        "submit_rejected.md.j2",
        reason=judgement.reason,
        test_command=run.config.test,
        summary=judged.summary() if judged else "not run",
        regressions=verdict.regressions[:30],
        still_failing=verdict.still_failing[:30],
        output=clip(judged.output_tail if judged else "", 6000),
        unverified=judgement.status == "unverified",
        edits=[c.describe() for c in judgement.edits],
    )
    return SubmitOutcome(accepted=False, message=message)


def _publish(
    result: FixResult, run: _Run, forge: LocalForge, agent_s: float, model_name: str
) -> None:
    request = run.request
    title = (result.title or request.title or request.issue.strip().splitlines()[0])[:72]
    wanted = request.branch or (
        f"qwenfix/issue-{request.issue_number}"
        if request.issue_number is not None
        else f"qwenfix/{slugify(request.title or request.issue.strip().splitlines()[0])}"
    )
    branch = forge.free_branch_name(wanted)
    before = run.baseline
    change, judgement = run.verified()
    stats = diffstat(change.diff)
    after, verdict = judgement.judged, judgement.verdict
    if after is None:
        raise RuntimeError("a resolved change without a judged test run")
    body = render(
        "pr_body.md.j2",
        summary=result.summary or title,
        issue_number=request.issue_number,
        before_summary=before.summary(),
        after_summary=after.summary(),
        test_command=run.config.test,
        verdict_reason=judgement.reason,
        red_baseline=verdict.red_baseline,
        still_failing=verdict.still_failing,
        test_changes=[c.describe() for c in judgement.test_changes],
        as_diff_summary=judgement.as_diff.summary() if judgement.as_diff else None,
        before_output=fence_safe(clip(before.output_tail, 1500)),
        after_output=fence_safe(clip(after.output_tail, 1500)),
        files_changed=len(stats.files),
        added=stats.added,
        removed=stats.removed,
        files=stats.files,
        turns=result.turns,
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        cached_tokens=result.usage.cached_tokens,
        duration_s=agent_s,
        model=model_name or "unknown",
    )
    message = f"{title}\n\n{result.summary or ''}".strip() + "\n"
    if request.issue_number is not None:
        message += f"\nFixes #{request.issue_number}\n"
    if request.co_author:
        message += (
            f"\nCo-authored-by: {request.co_author} "
            f"<{request.co_author}@users.noreply.github.com>\n"
        )
    published = forge.publish(
        base=run.base,
        diff=change.diff,
        branch=branch,
        message=message,
        description=f"# {title}\n\n{body}",
        tree=change.tree,
    )
    result.branch, result.commit = published.branch, published.commit
    result.title, result.pr_description = title, body
    result.pr_description_path = published.description_path
