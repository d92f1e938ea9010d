"""qwenfix against a real vLLM server (CPU build, tiny random-weight Qwen3-MoE, the
qwen3_coder parser and prefix caching on, an 8,192-token window).

Random weights almost never call a tool of their own accord, so the client names the tool
of every request (tests/vllm/forcing.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.docker_backend import DockerBackend
from tests.helpers import BUGGY_REPO, ISSUE, make_repo
from tests.vllm.conftest import WINDOW
from tests.vllm.forcing import forcing_model
from tests.vllm.server import VllmServer
from workers.engine.agent.trajectory import read_trajectory
from workers.engine.fix import FixRequest, FixResult, run_fix
from workers.settings import WorkerSettings


def fix_with(server: VllmServer, repo: Path, settings: WorkerSettings, backend: Any) -> FixResult:
    settings.llm_base_url, settings.llm_model = server.base_url, "tiny"
    # run_tests only: it takes no arguments, which is all a forced call from random
    # weights carries, so every turn really runs the tests.
    with forcing_model(server, rotation=("run_tests",)) as model:
        return run_fix(
            FixRequest(repo=repo, issue=ISSUE, issue_number=7),
            model=model,
            backend=backend,
            settings=settings,
            model_name="tiny",
        )


def records(result: FixResult, event: str) -> list[dict[str, Any]]:
    return [r for r in read_trajectory(Path(result.trajectory or "")) if r["event"] == event]


def test_a_fix_run_is_accepted_turn_after_turn_and_counted_exactly(
    vllm_server: VllmServer, tmp_path: Path, settings: WorkerSettings, backend: DockerBackend
) -> None:
    repo = make_repo(tmp_path / "repo", BUGGY_REPO)
    settings.max_turns = 4
    hits = vllm_server.metric("vllm:prefix_cache_hits_total")
    queries = vllm_server.metric("vllm:prefix_cache_queries_total")
    result = fix_with(vllm_server, repo, settings, backend)

    # Every request accepted; the run ends on its turn limit, not in error.
    assert result.status == "unresolved", result.reason
    assert "turn limit reached (4 turns)" in result.reason
    assert result.turns == 4
    answers = [r for r in records(result, "message") if r["message"]["role"] == "assistant"]
    tools = [r for r in records(result, "message") if r["message"]["role"] == "tool"]
    assert len(answers) == 4 and len(tools) == 4
    for answer in answers:
        (call,) = answer["message"]["tool_calls"]
        assert call["function"]["name"] == "run_tests"
    assert all(t["message"]["content"].startswith("Tests ") for t in tools), tools[0]
    assert records(result, "stop")[-1]["status"] == "unresolved"
    # qwenfix's count of each prompt is the server's, token for token.
    counted = [r["prompt_tokens"] for r in records(result, "request")]
    reported = [a["usage"]["prompt_tokens"] for a in answers]
    assert counted == reported
    assert all(r["max_tokens"] + r["prompt_tokens"] <= WINDOW for r in records(result, "request"))
    # The prefix cache, from vLLM's own counters: every request after the first repeats
    # the one before, so all but the new messages and vLLM's last partial block hit.
    hit = vllm_server.metric("vllm:prefix_cache_hits_total") - hits
    asked = vllm_server.metric("vllm:prefix_cache_queries_total") - queries
    rate = hit / asked
    floor = sum(reported[:-1]) / sum(reported) * 0.9
    print(f"\nvLLM prefix-cache hit rate over {result.turns} turns: {rate:.1%} (floor {floor:.1%})")
    assert rate >= floor


NOISY_TEST = (
    "import uuid\n\n\ndef test_noisy():\n"
    "    for _ in range(120):\n        print(uuid.uuid4().hex, 'heartbeat')\n"
    "    assert False\n"
)


def test_a_run_that_fills_the_servers_window_restarts_and_never_overflows(
    vllm_server: VllmServer, tmp_path: Path, settings: WorkerSettings, backend: DockerBackend
) -> None:
    repo = make_repo(tmp_path / "repo", {**BUGGY_REPO, "tests/test_noisy.py": NOISY_TEST})
    settings.max_turns, settings.context_restarts = 40, 1
    result = fix_with(vllm_server, repo, settings, backend)

    # Long outputs fill 8,192 tokens in a few turns: the run restarts once, fills the
    # window again and stops saying so, with no request refused on the way.
    assert result.status == "context_full", result.reason
    assert "after 1 restart" in result.reason
    (restart,) = records(result, "restart")
    assert restart["limit"] == WINDOW and restart["account_tokens"] > 0
    requests = records(result, "request")
    assert all(r["prompt_tokens"] + r["max_tokens"] <= WINDOW for r in requests)
    assert len(requests) == result.turns
