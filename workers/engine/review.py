"""Reviewing a change in the sandbox: the model reads the repository at the head commit
and the diff, and hands over one review; comments are placed on the diff's lines."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from bot.contract.events import Event
from bot.contract.job import StopRequest
from sandbox import SandboxBackend, SandboxError
from sandbox.protocol import session
from workers.engine import git as gitops
from workers.engine.agent.loop import SubmitOutcome
from workers.engine.agent.tools import (
    REVIEW_TOOLS,
    SubmitRequested,
    SubmitReviewArgs,
    clip,
)
from workers.engine.agent.trajectory import Sink, Trajectory
from workers.engine.agent_run import AgentRun, ContextTooSmall, first_messages
from workers.engine.context import repository_instructions
from workers.engine.context.safety import neutralise, untrusted
from workers.engine.diffmap import DiffMap, ReviewComment
from workers.engine.environment import EnvironmentMissing, choose
from workers.engine.llm.types import Message, Model, Usage
from workers.engine.prompts import render
from workers.engine.repo_config import (
    ConfigDefaults,
    EffectiveLimits,
    RepoConfigError,
    load_repo_config,
)
from workers.engine.verify import run_tests
from workers.engine.workspace import WorkspaceFailed, prepare_workspace, sandbox_spec
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)
DIFF_TOKEN_SHARE = 0.25  # of the model's context, at most, for the diff itself


class ReviewRequest(BaseModel):
    repo: Path
    base: str
    head: str
    number: int
    title: str
    body: str = ""
    requester: str | None = None
    request: str = ""
    config_defaults: ConfigDefaults | None = None
    """The owner's defaults under the repository's config file (the worker fetched them)."""


class ReviewResult(BaseModel):
    status: str  # reviewed | error | stopped | unresolved (no review handed over)
    reason: str
    summary: str = ""
    inline: list[ReviewComment] = Field(default_factory=list)
    elsewhere: list[ReviewComment] = Field(default_factory=list)
    turns: int = 0
    usage: Usage = Field(default_factory=Usage)
    trajectory: str | None = None
    tests: str | None = None
    """The tests on the head commit, when the repository asks reviews to run them."""

    def body(self) -> str:
        text = self.summary.strip()
        if self.tests:
            text += f"\n\nTests on the head commit, run by qwenfix: {self.tests}."
        if self.elsewhere:
            notes = "\n".join(f"- `{c.path}` line {c.line}: {c.body}" for c in self.elsewhere)
            text += f"\n\nOn lines outside this diff:\n{notes}"
        return f"{text}\n\n<sub>Review by qwenfix · {self.turns} turn(s)</sub>"


def run_review(
    request: ReviewRequest,
    *,
    model: Model,
    backend: SandboxBackend,
    settings: WorkerSettings,
    sink: Sink | None = None,
    cancelled: Callable[[], StopRequest | None] = lambda: None,
) -> ReviewResult:
    """`cancelled()`: who wants the run stopped, asked before each model request."""
    repo = request.repo
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = settings.trajectory_dir / f"{stamp}-review-{request.number}-{uuid.uuid4().hex[:8]}.jsonl"
    diff = gitops.git(repo, "diff", "--no-color", "-M", f"{request.base}...{request.head}").decode(
        "utf-8", errors="replace"
    )
    with Trajectory(path, sink) as trajectory:
        try:
            result = _review(
                request,
                diff,
                model=model,
                backend=backend,
                settings=settings,
                trajectory=trajectory,
                cancelled=cancelled,
            )
        except (
            WorkspaceFailed,
            RepoConfigError,
            ContextTooSmall,
            SandboxError,
            EnvironmentMissing,
        ) as exc:
            result = ReviewResult(status="error", reason=str(exc))
        result.trajectory = str(path)
        trajectory.record(Event.RESULT, **result.model_dump())
    return result


def _review(
    request: ReviewRequest,
    diff: str,
    *,
    model: Model,
    backend: SandboxBackend,
    settings: WorkerSettings,
    trajectory: Trajectory,
    cancelled: Callable[[], StopRequest | None],
) -> ReviewResult:
    repo, head = request.repo, request.head
    paths = gitops.list_files(repo, head)
    config = load_repo_config(
        paths, lambda p: gitops.read_blob(repo, head, p), request.config_defaults
    )
    settings = choose(config, settings, backend).settings(settings)
    diff_map = DiffMap(diff)
    diff_text = neutralise(clip(diff, int(settings.llm_context_tokens * DIFF_TOKEN_SHARE * 3)))
    instructions, source = repository_instructions(repo, head, paths)
    system = render("review_system.md.j2", workdir="/workspace", test_command=config.test)

    def task(repository: str) -> str:
        return render(
            "review_task.md.j2",
            instructions=instructions,
            instructions_source=source,
            repository=repository,
            number=request.number,
            base=request.base[:12],
            head=head[:12],
            title=untrusted(request.title),
            body=untrusted(request.body),
            diff=diff_text,
            requester=request.requester or "",
            request=untrusted(request.request),
        )

    handed: list[SubmitReviewArgs] = []

    def on_submit(submit: SubmitRequested) -> SubmitOutcome:
        if isinstance(submit.payload, SubmitReviewArgs):
            handed.append(submit.payload)
        return SubmitOutcome(accepted=True, message="review handed over")

    started = time.monotonic()
    limits = EffectiveLimits.of(config, settings)

    def messages(window: int, share: float) -> list[Message]:
        return first_messages(
            system,
            task,
            repo=repo,
            rev=head,
            about=f"{request.title}\n{request.body}\n{diff[:20000]}",
            config=config,
            settings=settings,
            trajectory=trajectory,
            window=window,
            share=share,
        )

    with session(backend, sandbox_spec(config, settings, run_label=trajectory.path.stem)) as sb:
        prepare_workspace(sb, repo, head, config=config, settings=settings, trajectory=trajectory)
        head_tests = None
        if config.review_tests and config.test:
            ran = run_tests(
                sb,
                config.test,
                label="review-head",
                timeout=limits.test_timeout_s,
                reporters=config.reporters,
            )
            head_tests = ran.summary()
            trajectory.record(Event.TESTS_HEAD, **ran.model_dump())

        def tests() -> str:
            if not config.test:
                return "This repository has no test command."
            result = run_tests(
                sb,
                config.test,
                label=f"review-{uuid.uuid4().hex[:6]}",
                timeout=limits.test_timeout_s,
                reporters=config.reporters,
            )
            return f"Tests {result.summary()}.\n{clip(result.output_tail, 6000)}"

        outcome = AgentRun(
            model=model,
            sandbox=sb,
            limits=limits,
            settings=settings,
            trajectory=trajectory,
            messages=messages,
            run_tests=tests,
            on_submit=on_submit,
            tools=REVIEW_TOOLS,
            cancelled=cancelled,
        ).run()
    log.info(
        "review of #%s: %s after %.0fs", request.number, outcome.status, time.monotonic() - started
    )
    if outcome.status != "resolved" or not handed:
        return ReviewResult(
            status=outcome.status if outcome.status in ("error", "stopped") else "unresolved",
            reason=outcome.reason,
            turns=outcome.turns,
            usage=outcome.usage,
        )
    review = handed[-1]
    placed = diff_map.place([ReviewComment(**c.model_dump()) for c in review.comments])
    return ReviewResult(
        status="reviewed",
        reason="review handed over",
        summary=review.summary,
        inline=placed.inline,
        elsewhere=placed.elsewhere,
        turns=outcome.turns,
        usage=outcome.usage,
        tests=head_tests,
    )
