"""A fix run end to end against the real server, as `qwenfix fix` runs it: a local git
repository with a failing test, the Docker sandbox, the packed repository in the first
prompt, the window the server reports (8,192 tokens), every tool call forced.

With random weights the run cannot fix anything: it ends on its turn limit. What it shows
is that qwenfix and vLLM agree on everything else: every request of a real run (its
system prompt, the packed repository, tool answers from a real sandbox) is accepted and
answered with a parsed call, the real test suite runs when called, and the record is
whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker
import pytest

from sandbox.docker_backend import LABEL, DockerBackend
from tests.helpers import BUGGY_REPO, ISSUE, branches, git, make_repo
from tests.vllm.conftest import WINDOW
from tests.vllm.forcing import ROTATION, forcing_model
from tests.vllm.server import VllmServer
from workers.cli.main import print_result
from workers.engine.agent.trajectory import read_trajectory
from workers.engine.fix import FixRequest, run_fix
from workers.settings import WorkerSettings

pytestmark = pytest.mark.vllm

TURNS = 6


@pytest.fixture
def backend(docker_client: docker.DockerClient) -> DockerBackend:
    """The Docker backend, without the suite-wide check that no sandbox is left: other
    suites may run sandboxes on this engine meanwhile. This run's own are checked."""
    return DockerBackend(docker_client)


def test_a_fix_run_against_vllm_is_accepted_every_turn_and_recorded_whole(
    vllm_server: VllmServer,
    tmp_path: Path,
    settings: WorkerSettings,
    backend: DockerBackend,
    docker_client: docker.DockerClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = make_repo(tmp_path / "repo", BUGGY_REPO)
    head = git(repo, "rev-parse", "HEAD").strip()
    settings.llm_base_url, settings.llm_model = vllm_server.base_url, "tiny"
    settings.max_turns = TURNS
    with forcing_model(vllm_server) as model:
        result = run_fix(
            FixRequest(repo=repo, issue=ISSUE, issue_number=7),
            model=model,
            backend=backend,
            settings=settings,
            model_name="tiny",
        )

    # Not an error: no request refused, nothing failed before or in the agent's run.
    assert result.status == "unresolved", result.reason
    assert result.failed_in is None
    assert result.reason == f"turn limit reached ({TURNS} turns)"
    assert result.turns == TURNS == len(model.responses)
    assert result.tests_before and result.tests_before.exit_code == 1
    assert branches(repo) == [] and git(repo, "rev-parse", "HEAD").strip() == head

    # Every request answered with the named call, parsed by the server.
    for response, body in zip(model.responses, model.bodies, strict=True):
        (call,) = response["choices"][0]["message"]["tool_calls"]
        assert call["function"]["name"] == body["tool_choice"]["function"]["name"]
        assert body["max_tokens"] + response["usage"]["prompt_tokens"] <= WINDOW
    system, task = model.bodies[0]["messages"][:2]
    assert system["role"] == "system" and '<file path="mathlib.py">' in task["content"]

    # The record is whole: start to result, each turn's request, answer and tool replies,
    # the stop with the status the result has.
    events = read_trajectory(Path(result.trajectory or ""))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "result"
    assert {"tests_before", "pack", "request", "message", "stop"} <= set(kinds)
    assert kinds.count("request") == TURNS and kinds.count("stop") == 1
    messages = [e for e in events if e["event"] == "message"]
    assistant = [e for e in messages if e["message"]["role"] == "assistant"]
    tools = [e for e in messages if e["message"]["role"] == "tool"]
    assert len(assistant) == len(tools) == TURNS
    assert [e["tool"] for e in tools] == [ROTATION[i % len(ROTATION)] for i in range(TURNS)]
    assert all("usage" in e and e["raw_tool_text"] is False for e in assistant)
    # run_tests ran the repository's own suite in the sandbox.
    ran = [e["message"]["content"] for e in tools if e["tool"] == "run_tests"]
    assert ran and all("test_double" in text for text in ran), ran[0]
    (stop,) = [e for e in events if e["event"] == "stop"]
    assert stop["status"] == "unresolved" and stop["kind"] == "TurnLimit"
    assert events[-1]["status"] == "unresolved" and events[-1]["turns"] == TURNS
    run = Path(result.trajectory or "").stem
    left = docker_client.containers.list(
        all=True, filters={"label": [LABEL, f"io.qwenfix.run={run}"]}
    )
    assert left == [], "the run left a sandbox behind"

    # What `qwenfix fix --json` prints of it.
    print_result(result, True)
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert out["status"] == "unresolved" and out["turns"] == TURNS
    assert out["usage"]["cached_tokens"] > 0
