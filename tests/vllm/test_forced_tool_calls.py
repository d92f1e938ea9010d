"""The agent loop against the real server, its tool calls made by vLLM's guided decoding
(a named `tool_choice`) and read by the server's qwen3_coder parser: each call is run in a
sandbox (the in-memory one of the unit tests), answered, and the whole conversation sent
back turn after turn, accepted every time.

Random weights mean the calls carry no arguments (see `CLOSE` in forcing.py): `run_tests`
runs; the others are answered with the toolbox's own error for missing arguments. That is
the point: what is checked is the protocol, not the model's choices."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tests.vllm.forcing import FIRST, ROTATION, run_forced_agent
from tests.vllm.server import VllmServer
from workers.engine.agent.trajectory import read_trajectory

pytestmark = pytest.mark.vllm

TURNS = 6


def test_forced_calls_are_parsed_by_the_server_run_answered_and_replayed(
    vllm_server: VllmServer, tmp_path: Path
) -> None:
    run = run_forced_agent(vllm_server, tmp_path / "trajectory.jsonl", TURNS)
    result, model = run.result, run.model

    # Every request accepted: the run ends on its turn limit, not on a refusal.
    assert result.status == "unresolved", result.reason
    assert result.reason == f"turn limit reached ({TURNS} turns)"
    assert result.turns == TURNS == len(model.responses)

    # Each answer is a call of the named tool, in the server's `tool_calls` (its parser's
    # reading), not text left for ours.
    expected = [ROTATION[i % len(ROTATION)] for i in range(TURNS)]
    for response, name in zip(model.responses, expected, strict=True):
        message = response["choices"][0]["message"]
        assert [c["function"]["name"] for c in message["tool_calls"]] == [name], message
        assert "<tool_call>" not in (message.get("content") or "")
    events = read_trajectory(run.trajectory)
    answers = [e for e in events if e["event"] == "message" and e["message"]["role"] == "assistant"]
    assert [e["raw_tool_text"] for e in answers] == [False] * TURNS

    # Each call was run and answered under its id: run_tests by the suite, the calls
    # without their required arguments by the toolbox's refusal.
    replies = {m["tool_call_id"]: m["content"] for m in run.agent.messages if m["role"] == "tool"}
    for answer, name in zip(answers, expected, strict=True):
        (call,) = answer["message"]["tool_calls"]
        reply = replies[call["id"]]
        if name == "run_tests":
            assert reply.startswith("Tests failed (exit 1): run "), reply
        else:
            assert reply.startswith(f"ERROR: invalid arguments for {name}: "), reply
    assert run.test_runs == expected.count("run_tests")

    # Replayed: each request is the one before with the new turn appended, byte for byte,
    # and the server counts exactly what qwenfix counted.
    sent = [body["messages"] for body in model.bodies]
    assert sent[0] == FIRST
    for before, after in itertools.pairwise(sent):
        assert after[: len(before)] == before
        assert len(after) == len(before) + 2
    assert sent[-1] == json.loads(json.dumps(run.agent.messages[:-2]))
    counted = [e["prompt_tokens"] for e in events if e["event"] == "request"]
    reported = [r["usage"]["prompt_tokens"] for r in model.responses]
    assert counted == reported
    later = model.responses[1:]
    assert all(r["usage"]["prompt_tokens_details"]["cached_tokens"] > 0 for r in later)
