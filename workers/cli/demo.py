"""The demo: fix the bundled calculator repository end to end."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.fakes.model_server import ScriptedModelServer
from workers.cli.local_fix import execute_fix
from workers.engine.fix import FixRequest, FixResult
from workers.engine.resources import resource_dir
from workers.settings import WorkerSettings

DEMO_REPO = "calculator"


def make_demo_repository(target: Path) -> Path:
    """A fresh git repository holding the example project, committed once."""
    shutil.copytree(resource_dir("examples") / DEMO_REPO, target, dirs_exist_ok=True)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Demo",
        "GIT_AUTHOR_EMAIL": "demo@example.com",
        "GIT_COMMITTER_NAME": "Demo",
        "GIT_COMMITTER_EMAIL": "demo@example.com",
    }
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["commit", "-q", "-m", "Calculator with a broken mean()"],
    ):
        subprocess.run(["git", "-C", str(target), *args], check=True, env=env)
    return target


def run_demo(*, keep: Path | None, echo: Callable[[str], None]) -> FixResult:
    examples = resource_dir("examples")
    issue = (examples / f"{DEMO_REPO}.issue.md").read_text()
    title = issue.partition("\n")[0]
    workdir = keep or Path(tempfile.mkdtemp(prefix="qwenfix-demo-"))
    repo = make_demo_repository(workdir)
    echo(f"demo repository: {repo}")
    settings = WorkerSettings()
    if "QWENFIX_LLM_BASE_URL" in os.environ:
        echo(f"model: {settings.llm_model} at {settings.llm_base_url} (real server)")
        result = execute_fix(
            FixRequest(repo=repo, issue=issue, issue_number=1, title=title), settings
        )
    else:
        with ScriptedModelServer.from_file(examples / f"{DEMO_REPO}.script.json") as server:
            echo(
                f"model: scripted model at {server.base_url} "
                "(set QWENFIX_LLM_BASE_URL to use a real vLLM server)"
            )
            settings.llm_base_url = server.base_url
            result = execute_fix(
                FixRequest(repo=repo, issue=issue, issue_number=1, title=title), settings
            )
    if result.status == "resolved":
        echo("\n--- pull-request description ---")
        echo(f"# {result.title}\n\n{result.pr_description}")
        echo("--- diff ---")
        echo(result.diff)
    return result
