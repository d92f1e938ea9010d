"""`qwenfix doctor` (the command, in a subprocess) against the real server, served both
ways. With random weights only the protocol can be checked: the served name and window,
and whether the server parses a forced call of the parameterless probe tool. Whether the
model would choose tools well is not something a forced call can tell, and the check
says so. Without the parser vLLM refuses the forced choice (HTTP 400), and the check
names the flags to serve with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.vllm.conftest import WINDOW
from tests.vllm.server import VllmServer

pytestmark = pytest.mark.vllm

FLAGS = "--enable-auto-tool-choice --tool-call-parser qwen3_coder"


def doctor(server: VllmServer, home: Path) -> tuple[int, dict[str, Any]]:
    """The exit status and the model check of `qwenfix doctor --json` aimed at `server`
    (the other checks see whatever this machine has; only the model's is read)."""
    env = {
        "QWENFIX_LLM_BASE_URL": server.base_url,
        "QWENFIX_LLM_MODEL": "tiny",
        "QWENFIX_LLM_CONTEXT_TOKENS": str(WINDOW),
        "QWENFIX_REDIS_URL": "redis://127.0.0.1:1/0",  # refused at once
        "QWENFIX_DATABASE_URL": f"sqlite:///{home / 'absent.db'}",
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "qwenfix"), "doctor", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    return done.returncode, checks["model"]


def test_doctor_passes_the_model_check_with_the_parser_on(
    vllm_server: VllmServer, tmp_path: Path
) -> None:
    _, check = doctor(vllm_server, tmp_path)
    assert check["ok"], check
    assert check["detail"].startswith(f"tiny, window {WINDOW}, tool calls parsed by the server")
    # What a forced call on random weights can and cannot tell, in the detail itself.
    assert "the protocol and the parser work, not how well the model chooses" in check["detail"]
    assert check["fix"] == ""


def test_doctor_fails_the_model_check_with_the_parser_off_naming_the_flags(
    vllm_server_no_parser: VllmServer, tmp_path: Path
) -> None:
    status, check = doctor(vllm_server_no_parser, tmp_path)
    assert status == 1
    assert not check["ok"]
    assert "qwen3_coder parser is off" in check["detail"]
    assert "HTTP 400" in check["detail"] and "--tool-call-parser" in check["detail"]
    assert FLAGS in check["fix"]
