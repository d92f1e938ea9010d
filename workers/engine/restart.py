"""The account a restarted conversation begins with: what was tried, what changed in the
working tree and what the tests said last, in a few thousand tokens. It follows the same
first messages as before (the packed repository), so the server's prefix cache still
holds everything up to it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox import Sandbox
from sandbox.errors import SandboxError
from workers.engine.agent.window import PromptCounting
from workers.engine.llm.types import Message
from workers.engine.prompts import render

ACTIONS_SHOWN = 40
RESULT_TOOLS = ("run_tests", "submit")
"""Tools whose last answer says where the tests stand."""


def _brief(name: str, arguments: Any, limit: int = 120) -> str:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError:
            return f"{name} (arguments were not valid JSON)"
    if not isinstance(arguments, dict):
        return name
    shown = " ".join(
        f"{k}={v[:60]!r}" if isinstance(v, str) else f"{k}={v!r}"
        for k, v in arguments.items()
        if k not in ("content", "new_str")
    )
    text = f"{name} {shown}".strip()
    return text if len(text) <= limit else text[:limit] + "…"


def _first_line(text: str, limit: int = 100) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "(no output)")
    return line if len(line) <= limit else line[:limit] + "…"


@dataclass
class RunAccount:
    """What a run did, gathered over its conversations."""

    actions: list[str] = field(default_factory=list)
    tests: str = ""

    def add(self, messages: Sequence[Message]) -> None:
        """Take in one conversation's messages after its first ones."""
        calls: dict[str, tuple[str, Any]] = {}
        for message in messages:
            for raw in message.get("tool_calls") or []:
                fn = raw.get("function") or {}
                calls[str(raw.get("id"))] = (str(fn.get("name")), fn.get("arguments"))
            if message.get("role") != "tool":
                continue
            name, arguments = calls.get(str(message.get("tool_call_id")), ("a tool", {}))
            content = str(message.get("content") or "")
            self.actions.append(f"{_brief(name, arguments)} → {_first_line(content)}")
            if name in RESULT_TOOLS:
                self.tests = content

    def render(
        self,
        sandbox: Sandbox,
        *,
        restart: int,
        restarts: int,
        turns: int,
        budget: int,
        counter: PromptCounting,
    ) -> str:
        """The account as the next user message, in about `budget` tokens."""
        stat, diff = _working_tree(sandbox)
        note = "[qwenfix: cut here to fit the account in the window]"
        shown = self.actions[-ACTIONS_SHOWN:]
        if len(self.actions) > len(shown):
            shown = [f"… {len(self.actions) - len(shown)} earlier actions", *shown]
        return render(
            "restart.md.j2",
            restart=restart,
            restarts=restarts,
            turns=turns,
            actions=shown,
            stat=counter.shorten(stat, budget // 8, note),
            diff=counter.shorten(diff, budget // 2, note),
            tests=counter.shorten(self.tests, budget // 4, note),
        )


def _working_tree(sandbox: Sandbox) -> tuple[str, str]:
    """`git status` with `git diff --stat`, and `git diff`, of the working tree against the
    base. Read only: the index stays as the model left it."""
    try:
        status = sandbox.run("git status --short", timeout=60)
        stat = sandbox.run("git diff --stat HEAD", timeout=60)
        diff = sandbox.run("git diff HEAD", timeout=60, max_output_bytes=200_000)
    except SandboxError as exc:
        return f"(could not read the working tree: {exc})", ""
    return f"{status.output.strip()}\n{stat.output.strip()}".strip(), diff.output.strip()
