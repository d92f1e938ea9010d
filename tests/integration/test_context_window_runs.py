"""A fix run against a server with a small context window (the scripted server keeping an
8,192-token window as vLLM's `--max-model-len 8192` does, counting prompts exactly and
refusing what does not fit): every request fits, a full conversation restarts from its first
messages and an account of the run and finishes, and a run that cannot go on ends
`context_full`, not `error`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.docker_backend import DockerBackend
from tests.helpers import BUGGY_REPO, FIX_STEPS, call, fix, make_repo, step
from workers.engine.agent.trajectory import read_trajectory
from workers.settings import WorkerSettings

WINDOW = 8192
LOG = "".join(f"{n:05d} INFO worker heartbeat ok, queue depth {n % 7}\n" for n in range(3000))


def reads(count: int) -> list[dict[str, Any]]:
    """`count` different looks at a long log: each output is more than the window can take."""
    return [step(call("view", path="build.log", end_line=3000 - n)) for n in range(count)]


def events(result: Any) -> list[dict[str, Any]]:
    return read_trajectory(Path(result.trajectory or ""))


def test_a_run_that_fills_the_window_restarts_and_finishes(
    tmp_path: Path, scripted_model: Any, backend: DockerBackend, settings: WorkerSettings
) -> None:
    repo = make_repo(tmp_path / "repo", {**BUGGY_REPO, "build.log": LOG})
    server = scripted_model([*reads(14), *FIX_STEPS], max_model_len=WINDOW)
    result = fix(repo, server, backend, settings)

    assert result.status == "resolved", result.reason
    assert "-    return x + x + 1\n+    return x * 2" in result.diff
    assert server.refused == []
    for body, prompt in zip(server.requests, server.prompt_counts, strict=True):
        assert prompt + body["max_tokens"] <= WINDOW
    log = events(result)
    restarts = [e for e in log if e["event"] == "restart"]
    assert len(restarts) >= 1
    assert restarts[0]["restart"] == 1 and restarts[0]["limit"] == WINDOW
    assert restarts[0]["account_tokens"] > 0
    # A restart begins with the very same first messages (the server's cached prefix) and
    # then the account: what was done, what changed, what the tests said.
    first = server.requests[0]["messages"][:2]
    again = next(r["messages"] for r in server.requests if len(r["messages"]) == 3)
    assert again[:2] == first
    account = again[2]["content"]
    assert "filled the model's context window" in account
    assert "view path='build.log'" in account
    assert "working tree" in account
    # The trajectory holds the first messages once, and every message of every part.
    stops = [e for e in log if e["event"] == "stop"]
    assert [s["status"] for s in stops][-1] == "resolved"
    assert "context_full" in [s["status"] for s in stops]
    assert result.turns == len(server.requests)


def test_a_run_that_keeps_filling_the_window_ends_context_full(
    tmp_path: Path, scripted_model: Any, backend: DockerBackend, settings: WorkerSettings
) -> None:
    repo = make_repo(tmp_path / "repo", {**BUGGY_REPO, "build.log": LOG})
    settings.context_restarts = 1
    server = scripted_model(reads(60), max_model_len=WINDOW)
    result = fix(repo, server, backend, settings)

    assert result.status == "context_full", result.reason
    assert "context window" in result.reason and "after 1 restart" in result.reason
    assert server.refused == []
    assert len(server.requests) < 60
    assert [e["restart"] for e in events(result) if e["event"] == "restart"] == [1]
