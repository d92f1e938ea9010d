"""One place that assembles an agent run, for every job kind: the limits in force, the
toolbox, the first two messages with the packed repository, and the one re-pack when the
model server refuses the first prompt (its window is smaller than qwenfix was told)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from bot.contract.events import Event
from sandbox import Sandbox
from workers.engine.agent.loop import Agent, AgentResult, SubmitOutcome
from workers.engine.agent.tools import SubmitRequested, Toolbox
from workers.engine.agent.trajectory import Trajectory
from workers.engine.context import pack_commit
from workers.engine.context.pack import BudgetTooSmall
from workers.engine.context.tokens import TokenCounter
from workers.engine.llm.types import Message, Model
from workers.engine.repo_config import EffectiveLimits, RepoConfig
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

REPACK_SHARE = 0.5


class ContextTooSmall(Exception):
    """Not even the task fits the model's window; `reason` says what to change."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def first_messages(
    system: str,
    task: Callable[[str], str],
    *,
    repo: Path,
    rev: str,
    about: str,
    config: RepoConfig,
    settings: WorkerSettings,
    trajectory: Trajectory,
    share: float = 1.0,
) -> list[Message]:
    """The system prompt, then the task with the repository at `rev` packed into what the
    window leaves (`share` of it); `about` is the text the files are ranked against.
    Rendered once: the conversation only grows after it, so the prefix cache holds."""
    counter = TokenCounter()
    frame = counter.count(system) + counter.count(task(""))
    budget = int((settings.llm_context_tokens - settings.context_reserve_tokens - frame) * share)
    try:
        pack = pack_commit(
            repo,
            rev,
            task=about,
            budget=budget,
            rules=config.context,
            counter=counter,
            cache_path=settings.cache_dir / "pack.sqlite3",
        )
    except BudgetTooSmall as exc:
        raise ContextTooSmall(
            f"the model's context is too small for this repository: {exc}. Raise "
            "QWENFIX_LLM_CONTEXT_TOKENS or lower QWENFIX_CONTEXT_RESERVE_TOKENS."
        ) from exc
    counts = pack.report.counts()
    log.info(
        "packed the repository: %d of %d tokens, %d files in full, %d as outlines",
        pack.report.tokens,
        budget,
        counts["full"],
        counts["outline"],
    )
    trajectory.record(
        Event.PACK,
        tokens=pack.report.tokens,
        budget=budget,
        elapsed_s=pack.report.elapsed_s,
        counts=counts,
        files=[f.model_dump() for f in pack.report.files if f.tokens],
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": task(pack.text)}]


@dataclass
class AgentRun:
    """What an agent run is made of; `run()` assembles the agent and runs it."""

    model: Model
    sandbox: Sandbox
    limits: EffectiveLimits
    settings: WorkerSettings
    trajectory: Trajectory
    messages: Callable[[float], list[Message]]
    """The first messages, packed into the given share of the window."""
    run_tests: Callable[[], str]
    on_submit: Callable[[SubmitRequested], SubmitOutcome]
    tools: dict[str, type[BaseModel]] | None = None
    """The tools the model is offered, when not the fix's."""
    cancelled: Callable[[], str | None] = lambda: None
    """The reason to stop now, or None; asked before each request to the model."""

    def agent(self) -> Agent:
        toolbox = Toolbox(
            self.sandbox,
            run_tests=self.run_tests,
            command_timeout_s=self.limits.command_timeout_s,
            output_chars=self.settings.tool_output_chars,
            tools=self.tools,
        )
        return Agent(
            self.model,
            toolbox,
            on_submit=self.on_submit,
            limits=self.limits.agent(),
            trajectory=self.trajectory,
            cancelled=self.cancelled,
        )

    def run(self) -> AgentResult:
        outcome = self.agent().run(self.messages(1.0))
        if outcome.turns == 0 and outcome.refused_status == 400:
            # A 400 before any turn: the server's window is smaller than qwenfix was told.
            # Pack the repository again into half the room and carry on, once.
            log.warning(
                "the model server refused the first prompt (%s); packing the "
                "repository again into half the budget",
                outcome.reason,
            )
            self.trajectory.record(Event.REPACK, reason=outcome.reason, share=REPACK_SHARE)
            outcome = self.agent().run(self.messages(REPACK_SHARE))
        return outcome
