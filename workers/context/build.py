"""The first user message's repository part: a tree, then file contents within budget."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from workers import git as gitops
from workers.context.safety import neutralise
from workers.settings import WorkerSettings

INSTRUCTION_FILES = ("AGENTS.md", ".github/copilot-instructions.md", "CLAUDE.md", "QWEN.md")
CHARS_PER_TOKEN_BOUND = 3  # conservative until exact counting is in place
MAX_FILE_BYTES = 200_000


class RepositoryContext(BaseModel):
    text: str
    issue: str
    instructions: str | None = None
    instructions_source: str | None = None


def build_repository_context(repo: Path, rev: str, paths: list[str], *, task: str,
                             settings: WorkerSettings) -> RepositoryContext:
    budget_chars = (settings.llm_context_tokens - settings.context_reserve_tokens) \
        * CHARS_PER_TOKEN_BOUND
    tree = "\n".join(sorted(paths))
    parts = [f"<tree>\n{tree}\n</tree>"]
    used = len(parts[0])
    for path in sorted(paths):
        data = gitops.read_blob(repo, rev, path)
        if data is None or len(data) > MAX_FILE_BYTES or b"\0" in data[:8192]:
            continue
        block = f'<file path="{path}">\n{data.decode("utf-8", errors="replace")}\n</file>'
        if used + len(block) > budget_chars:
            continue
        parts.append(block)
        used += len(block)
    instructions, source = None, None
    for name in INSTRUCTION_FILES:
        if name in paths:
            raw = gitops.read_blob(repo, rev, name)
            if raw:
                instructions, source = neutralise(raw.decode("utf-8", errors="replace")), name
                break
    return RepositoryContext(
        text=neutralise("\n".join(parts)), issue=neutralise(task),
        instructions=instructions, instructions_source=source)
