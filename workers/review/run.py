"""Reviewing a change in the sandbox: the model reads the repository at the head commit
and the diff, and hands over one review; comments are placed on the diff's lines."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from sandbox import SandboxBackend, SandboxError
from sandbox.protocol import session
from workers import git as gitops
from workers.agent.loop import Agent, Limits, SubmitOutcome
from workers.agent.tools import REVIEW_TOOLS, SubmitRequested, SubmitReviewArgs, Toolbox, clip
from workers.agent.trajectory import Sink, Trajectory
from workers.context import pack_commit, repository_instructions
from workers.context.pack import BudgetTooSmall
from workers.context.safety import neutralise, untrusted
from workers.context.tokens import TokenCounter
from workers.llm.types import Model, Usage
from workers.prompts import render
from workers.repo_config import RepoConfigError, load_repo_config
from workers.review.diffmap import DiffMap, ReviewComment
from workers.settings import WorkerSettings
from workers.verify import run_tests
from workers.workspace import WorkspaceFailed, prepare_workspace, sandbox_spec

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


class ReviewResult(BaseModel):
    status: str  # reviewed | error | unresolved (no review handed over)
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


def run_review(request: ReviewRequest, *, model: Model, backend: SandboxBackend,
               settings: WorkerSettings, sink: Sink | None = None) -> ReviewResult:
    repo = request.repo
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = settings.trajectory_dir / f"{stamp}-review-{request.number}-{uuid.uuid4().hex[:8]}.jsonl"
    diff = gitops.git(repo, "diff", "--no-color", "-M", f"{request.base}...{request.head}"
                      ).decode("utf-8", errors="replace")
    with Trajectory(path, sink) as trajectory:
        try:
            result = _review(request, diff, model=model, backend=backend, settings=settings,
                             trajectory=trajectory)
        except (WorkspaceFailed, RepoConfigError, BudgetTooSmall, SandboxError) as exc:
            result = ReviewResult(status="error", reason=str(exc))
        result.trajectory = str(path)
        trajectory.record("result", **result.model_dump())
    return result


def _review(request: ReviewRequest, diff: str, *, model: Model, backend: SandboxBackend,
            settings: WorkerSettings, trajectory: Trajectory) -> ReviewResult:
    repo, head = request.repo, request.head
    paths = gitops.list_files(repo, head)
    config = load_repo_config(paths, lambda p: gitops.read_blob(repo, head, p))
    diff_map = DiffMap(diff)
    counter = TokenCounter()
    diff_text = neutralise(clip(diff, int(settings.llm_context_tokens * DIFF_TOKEN_SHARE * 3)))
    instructions, source = repository_instructions(repo, head, paths)
    system = render("review_system.md.j2", workdir="/workspace", test_command=config.test)

    def task(repository: str) -> str:
        return render("review_task.md.j2", instructions=instructions,
                      instructions_source=source, repository=repository,
                      number=request.number, base=request.base[:12], head=head[:12],
                      title=untrusted(request.title), body=untrusted(request.body),
                      diff=diff_text, requester=request.requester or "",
                      request=untrusted(request.request))

    frame = counter.count(system) + counter.count(task(""))
    budget = settings.llm_context_tokens - settings.context_reserve_tokens - frame
    pack = pack_commit(repo, head, task=f"{request.title}\n{request.body}\n{diff[:20000]}",
                       budget=budget, rules=config.context, counter=counter,
                       cache_path=settings.cache_dir / "pack.sqlite3")
    handed: list[SubmitReviewArgs] = []

    def on_submit(submit: SubmitRequested) -> SubmitOutcome:
        if isinstance(submit.payload, SubmitReviewArgs):
            handed.append(submit.payload)
        return SubmitOutcome(accepted=True, message="review handed over")

    started = time.monotonic()
    with session(backend, sandbox_spec(config, settings, run_label=trajectory.path.stem)) as sb:
        prepare_workspace(sb, repo, head, config=config, settings=settings,
                          trajectory=trajectory)
        head_tests = None
        if config.review_tests and config.test:
            ran = run_tests(sb, config.test, label="review-head",
                            timeout=config.limits.test_timeout_s or settings.test_timeout_s)
            head_tests = ran.summary()
            trajectory.record("tests_head", **ran.model_dump())

        def tests() -> str:
            if not config.test:
                return "This repository has no test command."
            result = run_tests(sb, config.test, label=f"review-{uuid.uuid4().hex[:6]}",
                               timeout=config.limits.test_timeout_s or settings.test_timeout_s)
            return f"Tests {result.summary()}.\n{clip(result.output_tail, 6000)}"

        agent = Agent(
            model,
            Toolbox(sb, run_tests=tests, tools=REVIEW_TOOLS,
                    command_timeout_s=config.limits.command_timeout_s
                    or settings.command_timeout_s, output_chars=settings.tool_output_chars),
            on_submit=on_submit,
            limits=Limits(max_turns=config.limits.max_turns or settings.max_turns,
                          max_total_tokens=config.limits.max_total_tokens
                          or settings.max_total_tokens,
                          max_wall_s=config.limits.max_wall_s or settings.max_wall_s),
            trajectory=trajectory)
        outcome = agent.run([{"role": "system", "content": system},
                             {"role": "user", "content": task(pack.text)}])
    log.info("review of #%s: %s after %.0fs", request.number, outcome.status,
             time.monotonic() - started)
    if outcome.status != "resolved" or not handed:
        return ReviewResult(status="error" if outcome.status == "error" else "unresolved",
                            reason=outcome.reason, turns=outcome.turns, usage=outcome.usage)
    review = handed[-1]
    placed = diff_map.place([ReviewComment(**c.model_dump()) for c in review.comments])
    return ReviewResult(status="reviewed", reason="review handed over",
                        summary=review.summary, inline=placed.inline,
                        elsewhere=placed.elsewhere, turns=outcome.turns, usage=outcome.usage,
                        tests=head_tests)
