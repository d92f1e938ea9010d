"""Helpers for building real git repositories and scripts in tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
        env={**os.environ, **GIT_ENV},
    ).stdout


def make_repo(path: Path, files: dict[str, str | bytes]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def step(*calls: dict[str, Any], content: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"tool_calls": list(calls), **extra}
    if content is not None:
        out["content"] = content
    return out


BUGGY_REPO: dict[str, str | bytes] = {
    "mathlib.py": "def double(x):\n    return x + x + 1\n",
    "tests/test_mathlib.py": (
        "from mathlib import double\n\n\n"
        "def test_double():\n    assert double(2) == 4\n\n\n"
        "def test_double_zero():\n    assert double(0) == 0\n"
    ),
    "conftest.py": "",
    ".qwenfix.yml": "test: python -m pytest -q\n",
}

FIX_STEPS = [
    step(call("view", path="mathlib.py")),
    step(call("str_replace", path="mathlib.py", old_str="x + x + 1", new_str="x * 2")),
    step(call("run_tests")),
    step(call("submit", summary="double() added one too many.", title="Fix double()")),
]
