"""One place that assembles an agent run, for every job kind: the limits in force, the
toolbox, the context window (the server's, or the setting's when it does not say), the first
two messages with the packed repository, the one re-pack when the first prompt does not fit,
and the restarts of a conversation that filled the window."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from bot.contract.events import Event
from bot.contract.job import StopRequest
from sandbox import Sandbox
from workers.engine.agent.loop import Agent, AgentResult, SubmitOutcome
from workers.engine.agent.tools import SubmitRequested, Toolbox
from workers.engine.agent.trajectory import Trajectory
from workers.engine.agent.window import ContextWindow, WindowSize
from workers.engine.context import pack_commit
from workers.engine.context.pack import BudgetTooSmall
from workers.engine.context.tokens import TokenCounter
from workers.engine.llm.prompt_format import PromptCounter
from workers.engine.llm.types import Message, Model
from workers.engine.repo_config import EffectiveLimits, RepoConfig
from workers.engine.restart import RunAccount
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

REPACK_SHARE = 0.5
ACCOUNT_TOKENS = 6000
"""The most a restart's account of the run takes of the window."""
ACCOUNT_FLOOR = 400
"""Below this much room for an account, a restart would not get anywhere."""


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
    window: int | None = None,
    share: float = 1.0,
) -> list[Message]:
    """The system prompt, then the task with the repository at `rev` packed into `share` of
    the settings' pack budget for a window of `window` tokens (the setting's when None);
    `about` is the text the files are ranked against. Rendered once: the conversation only
    grows after it, so the prefix cache holds."""
    counter = TokenCounter()
    frame = counter.count(system) + counter.count(task(""))
    budget = int(settings.pack_budget(window, frame) * share)
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
            "QWENFIX_LLM_CONTEXT_TOKENS or QWENFIX_CONTEXT_PACK_TOKENS, or lower "
            "QWENFIX_CONTEXT_RESERVE_TOKENS."
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
    messages: Callable[[int, float], list[Message]]
    """The first messages, packed into a share (the float) of a window of so many tokens."""
    run_tests: Callable[[], str]
    on_submit: Callable[[SubmitRequested], SubmitOutcome]
    tools: dict[str, type[BaseModel]] | None = None
    """The tools the model is offered, when not the fix's."""
    cancelled: Callable[[], StopRequest | None] = lambda: None
    """Who asked the run to stop, or None; asked before each request to the model."""

    def window_size(self) -> WindowSize:
        """The server's window when it says (vLLM's `max_model_len`), never more than the
        setting; a reply's room scaled down for a small window."""
        told = self.settings.llm_context_tokens
        served = self.model.context_window()
        limit = min(told, served) if served else told
        # A reply may take a sixteenth of the window (8,192 of 262,144), so that in a small
        # window the reserve still holds a conversation, and an account after a restart.
        min_output = min(self.settings.llm_min_output_tokens, limit // 32)
        max_output = max(min_output, min(self.settings.llm_max_tokens, limit // 16))
        return WindowSize(limit=limit, max_output=max_output, min_output=min_output)

    def agent(self, window: ContextWindow) -> Agent:
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
            window=window,
        )

    def run(self) -> AgentResult:
        size = self.window_size()
        counter = PromptCounter()
        window = ContextWindow(size, counter)
        first = self.messages(size.limit, 1.0)
        agent = self.agent(window)
        outcome = agent.run(first)
        if outcome.turns == 0 and (
            outcome.refused_status == 400 or outcome.status == "context_full"
        ):
            # The first prompt does not fit: the server's window is smaller than it said or
            # than qwenfix was told. Pack the repository again into half the room, once.
            log.warning(
                "the first prompt does not fit (%s); packing the repository again into "
                "half the budget",
                outcome.reason,
            )
            self.trajectory.record(Event.REPACK, reason=outcome.reason, share=REPACK_SHARE)
            first = self.messages(size.limit, REPACK_SHARE)
            agent = self.agent(window)
            outcome = agent.run(first)
        return self._restarts(outcome, agent, first, window)

    def _restarts(
        self,
        outcome: AgentResult,
        agent: Agent,
        first: list[Message],
        window: ContextWindow,
    ) -> AgentResult:
        """While the conversation fills the window after making headway, begin it again:
        the same first messages (the server's cache still holds them) and an account of
        the run so far, at most `context_restarts` times."""
        size, counter = window.size, window.counter
        account = RunAccount()
        start, restarts, turns_before = first, 0, 0
        while outcome.status == "context_full" and outcome.turns > turns_before:
            if restarts >= self.settings.context_restarts:
                outcome.reason += f" after {restarts} restart(s) of the conversation"
                break
            room = size.limit - counter.count(first, agent.toolbox.schemas) - size.max_output
            budget = min(ACCOUNT_TOKENS, (room - size.margin) // 2)
            if budget < ACCOUNT_FLOOR:
                break
            restarts += 1
            account.add(agent.messages[len(start) :])
            text = account.render(
                self.sandbox,
                restart=restarts,
                restarts=self.settings.context_restarts,
                turns=outcome.turns,
                budget=budget,
                counter=counter,
            )
            if counter.count_text(text) > budget:
                text = counter.shorten(text, budget, "[qwenfix: the account was cut here]")
            log.info(
                "the conversation filled the window after %d turns; restart %d",
                outcome.turns,
                restarts,
            )
            self.trajectory.record(
                Event.RESTART,
                restart=restarts,
                turns=outcome.turns,
                prompt_tokens=outcome.prompt_tokens or 0,
                limit=size.limit,
                account_tokens=counter.count_text(text),
                reason=outcome.reason,
            )
            start = [*first, {"role": "user", "content": text}]
            turns_before = outcome.turns
            agent = self.agent(window)
            outcome = agent.run(start, after=outcome, recorded=len(first))
        return outcome
