"""The first user message's repository part, packed once per run from the base commit."""

from __future__ import annotations

from pathlib import Path

from workers.engine import git as gitops
from workers.engine.context.classify import ContextRules
from workers.engine.context.pack import Pack, Packer
from workers.engine.context.safety import neutralise
from workers.engine.context.sources import CommitFiles
from workers.engine.context.tokens import CountCache, TokenCounter

INSTRUCTION_FILES = ("AGENTS.md", ".github/copilot-instructions.md", "CLAUDE.md", "QWEN.md")


def repository_instructions(
    repo: Path, rev: str, paths: list[str]
) -> tuple[str | None, str | None]:
    """The maintainers' instructions for agents, from the first such file that exists."""
    for name in INSTRUCTION_FILES:
        if name in paths:
            raw = gitops.read_blob(repo, rev, name)
            if raw and raw.strip():
                return neutralise(raw.decode("utf-8", errors="replace")), name
    return None, None


def pack_commit(
    repo: Path,
    rev: str,
    *,
    task: str,
    budget: int,
    rules: ContextRules,
    cache_path: Path | None,
    counter: TokenCounter,
) -> Pack:
    cache = CountCache(cache_path)
    try:
        return Packer(CommitFiles(repo, rev), rules=rules, cache=cache, counter=counter).pack(
            task=task, budget=budget
        )
    finally:
        cache.close()
