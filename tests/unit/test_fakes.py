"""The doubles are only worth what they match: MemorySandbox's answers to the commands the
Toolbox sends are checked against real find and grep on the same files (local, no
Docker)."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from sandbox.protocol import CommandResult, SandboxSpec
from tests.fakes.memory_sandbox import MemorySandbox
from workers.engine.agent.tools import Toolbox
from workers.engine.llm.types import ToolCall

TREE: dict[str, str | bytes] = {
    "mathlib.py": "def double(x):\n    return x + x + 1\n",
    "src/pkg/deep/mod.py": "def helper():\n    return double(3)\n",
    "src/pkg/__init__.py": "",
    ".gitignore": "*.pyc\n",
    ".github/workflows/ci.yml": "run: double\n",
    ".git/HEAD": "ref: refs/heads/double\n",
    "data.bin": b"double\0\x01\x02",
    "notes.txt": "no newline at the end: double",
}


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("view", {"path": "."}),
        ("view", {"path": "src"}),
        ("view", {"path": "mathlib.py"}),
        ("search", {"pattern": "double"}),
        ("search", {"pattern": "return [a-z]+\\(", "path": "src"}),
        ("search", {"pattern": "double", "path": "mathlib.py"}),
        ("search", {"pattern": "double", "path": "missing"}),
    ],
)
def test_toolbox_commands_are_answered_as_find_and_grep_would(
    tmp_path: Path, tool: str, arguments: dict[str, object]
) -> None:
    for name, content in TREE.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    sandbox = MemorySandbox(TREE)
    toolbox = Toolbox(sandbox, run_tests=lambda: "", command_timeout_s=30, output_chars=4000)
    toolbox.execute(ToolCall(id="c1", name=tool, arguments=arguments))
    assert sandbox.runs, "the Toolbox ran no command"
    for ran in sandbox.runs:
        real = subprocess.run(
            ["bash", "-c", ran.command],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
        )
        fake = MemorySandbox(TREE).run(ran.command, timeout=ran.timeout)
        expected = real.stdout + real.stderr
        if ran.command.startswith("grep"):
            # grep -r visits files in readdir order, which is the filesystem's, not sorted.
            fake.output, expected = _sorted_lines(fake.output), _sorted_lines(expected)
        assert (fake.exit_code, fake.output) == (real.returncode, expected)


def _sorted_lines(text: str) -> str:
    return "".join(sorted(text.splitlines(keepends=True)))


def test_handlers_answer_by_prefix_and_everything_else_is_not_found() -> None:
    sandbox = MemorySandbox(
        handlers={
            "python -m pytest": CommandResult(command="", exit_code=1, output="1 failed\n"),
            "git": lambda command: CommandResult(
                command=command, exit_code=0, output=f"ran {command}\n"
            ),
        }
    )
    tests = sandbox.run("python -m pytest -q", timeout=60)
    assert (tests.command, tests.exit_code, tests.output) == (
        "python -m pytest -q",
        1,
        "1 failed\n",
    )
    assert sandbox.run("git status", timeout=5).output == "ran git status\n"
    missing = sandbox.run("npm test", timeout=5)
    assert (missing.exit_code, missing.output) == (127, "bash: line 1: npm: command not found\n")
    assert sandbox.commands == ["python -m pytest -q", "git status", "npm test"]


def test_files_tar_and_network() -> None:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in (("repo/a.py", b"A = 1\n"), ("repo/empty", None)):
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    sandbox = MemorySandbox(spec=SandboxSpec(image="memory", network=True))
    sandbox.upload_tar(archive.getvalue(), "/workspace")
    assert sandbox.read_file("repo/a.py") == b"A = 1\n"
    assert sandbox.read_file("/workspace/repo/a.py") == b"A = 1\n"
    with pytest.raises(IsADirectoryError):
        sandbox.read_file("repo/empty")
    with pytest.raises(FileNotFoundError):
        sandbox.read_file("repo/b.py")
    assert (
        sandbox.run(
            "test -d repo/empty && find repo/empty -maxdepth 2 -not -path "
            "'*/.git*' | sort | head -500",
            timeout=5,
        ).output
        == "repo/empty\n"
    )
    assert sandbox.network is True
    sandbox.disable_network()
    assert sandbox.network is False
