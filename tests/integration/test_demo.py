"""The README's first command, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import SANDBOX_IMAGE, fresh_redis


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWENFIX_")}
    env.update(
        {
            "QWENFIX_SANDBOX_IMAGE": SANDBOX_IMAGE,
            "HOME": str(tmp_path),
            "QWENFIX_DEMO_REDIS_URL": fresh_redis(8)[0],
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
    )
    return subprocess.run(
        ["qwenfix", "demo", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_demo_turns_a_comment_into_a_pull_request(tmp_path: Path, docker_client: Any) -> None:
    proc = run([], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "scripted model" in out and "real vLLM server" in out
    assert "receiver: 202" in out
    assert "Pull request: http://127.0.0.1:" in out and "/demo-org/calculator/pull/" in out
    assert "Fixes #1" in out and "review requested from demo-maintainer" in out
    assert "+    return total(values) / len(values)" in out


def test_local_demo_without_github(tmp_path: Path, docker_client: Any) -> None:
    proc = run(["--local"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "RESOLVED: the test suite passes" in proc.stdout
    assert "branch: qwenfix/issue-1" in proc.stdout
