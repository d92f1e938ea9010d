"""Task sets in SWE-bench's format: one JSON object per line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator


class TaskSetError(Exception):
    """The task file cannot be used; the message names the line and the field."""


class EvalTask(BaseModel):
    instance_id: str
    repo: str
    base_commit: str
    problem_statement: str
    patch: str = ""
    """The gold patch (only the oracle model reads it)."""
    test_patch: str = ""
    FAIL_TO_PASS: list[str] = Field(default_factory=list)
    PASS_TO_PASS: list[str] = Field(default_factory=list)
    version: str | None = None
    """The repository's release line, as SWE-bench names it: the key to its specs."""
    environment_setup_commit: str | None = None
    """The commit whose dependency files define the environment (SWE-bench)."""
    setup: str | None = None
    test_cmd: str | None = None
    """Default: SWE-bench's for the repository and version, else `python -m pytest -q`."""
    python: str | None = None
    """The Python the task needs ("3.9"): its sandbox image is QWENFIX_EVAL_IMAGE."""
    network: bool | None = None
    """Whether the verdict's tests have the network; default: SWE-bench's rule (on) for
    its repositories, off for others."""
    log_parser: str | None = None
    """The repository (owner/name) whose SWE-bench log parser reads this task's test
    output when it writes no JUnit report."""
    repo_path: str | None = None
    """A local git repository (or a plain directory) holding `repo`; else --repos or a
    clone of https://github.com/<repo>."""

    @field_validator("FAIL_TO_PASS", "PASS_TO_PASS", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        # SWE-bench encodes these lists as JSON strings.
        return json.loads(value) if isinstance(value, str) else value


def load_tasks(path: Path) -> list[EvalTask]:
    tasks: list[EvalTask] = []
    seen: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TaskSetError(f"cannot read {path}: {exc.strerror}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            task = EvalTask.model_validate_json(line)
        except ValueError as exc:
            raise TaskSetError(f"{path}:{number}: not a task: {exc}") from exc
        if task.instance_id in seen:
            raise TaskSetError(f"{path}:{number}: instance_id {task.instance_id} twice")
        if task.repo_path and not Path(task.repo_path).is_absolute():
            task.repo_path = str((path.parent / task.repo_path).resolve())
        seen.add(task.instance_id)
        tasks.append(task)
    return tasks


def junit_id(node_id: str) -> str:
    """pytest's node id (`tests/test_x.py::TestA::test_b[1]`) as the JUnit id the harness
    reads (`tests.test_x.TestA::test_b[1]`)."""
    path, _, rest = node_id.partition("::")
    if not rest:
        return node_id
    module = path.removesuffix(".py").replace("/", ".")
    *classes, name = rest.split("::")
    return f"{'.'.join([module, *classes])}::{name}"
