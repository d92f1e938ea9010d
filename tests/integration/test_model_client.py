"""The model client against a real HTTP server that answers like vLLM."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.fakes.model_server import ScriptedModelServer
from tests.helpers import call, step
from workers.engine.agent.tools import tool_schemas
from workers.engine.llm.client import OpenAICompatibleModel
from workers.engine.llm.errors import ModelRequestRejected, ModelUnavailable

MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": "fix it"}]


def client(
    base_url: str, sleeps: list[float] | None = None, retries: int = 2
) -> OpenAICompatibleModel:
    recorded = sleeps if sleeps is not None else []
    return OpenAICompatibleModel(
        base_url=base_url,
        model="qwen",
        max_retries=retries,
        backoff_s=0.5,
        timeout_s=5,
        sleep=recorded.append,
    )


def test_openai_tool_calls_usage_and_sampling(scripted_model: Any) -> None:
    server = scripted_model([step(call("view", path="a.py"), content="Looking.")])
    with client(server.base_url) as model:
        turn = model.complete(MESSAGES, tool_schemas())
    assert [(c.name, c.arguments) for c in turn.tool_calls] == [("view", {"path": "a.py"})]
    assert turn.content == "Looking."
    assert not turn.raw_tool_text
    assert turn.usage.prompt_tokens > 0 and turn.usage.completion_tokens > 0
    body = server.requests[0]
    assert (body["temperature"], body["top_p"], body["top_k"], body["repetition_penalty"]) == (
        0.7,
        0.8,
        20,
        1.05,
    )
    assert body["tool_choice"] == "auto"
    assert {t["function"]["name"] for t in body["tools"]} >= {"bash", "submit"}


def test_raw_qwen3_coder_text_is_parsed_client_side(scripted_model: Any) -> None:
    server = scripted_model(
        [step(call("bash", command="ls -la", timeout=5), content="Listing.")], mode="raw"
    )
    with client(server.base_url) as model:
        turn = model.complete(MESSAGES, tool_schemas())
    assert turn.raw_tool_text
    assert turn.content == "Listing."
    assert [(c.name, c.arguments) for c in turn.tool_calls] == [
        ("bash", {"command": "ls -la", "timeout": 5})
    ]
    # Sent back exactly as received: the raw text, tags included.
    assert "<function=bash>" in turn.message["content"]
    assert "tool_calls" not in turn.message


def test_cached_tokens_reported_for_an_append_only_conversation(scripted_model: Any) -> None:
    server = scripted_model([step(call("run_tests")), step(call("run_tests"))])
    with client(server.base_url) as model:
        first = model.complete(MESSAGES, tool_schemas())
        convo = [
            *MESSAGES,
            first.message,
            {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "ok"},
        ]
        second = model.complete(convo, tool_schemas())
    assert first.usage.cached_tokens == 0
    assert second.usage.cached_tokens > 0


def test_server_errors_are_retried_with_backoff(scripted_model: Any) -> None:
    server = scripted_model([{"status": 500}, {"status": 503}, step(call("run_tests"))])
    sleeps: list[float] = []
    with client(server.base_url, sleeps) as model:
        turn = model.complete(MESSAGES, tool_schemas())
    assert turn.tool_calls[0].name == "run_tests"
    assert sleeps == [0.5, 1.0]
    assert len(server.requests) == 3


def test_rate_limit_honours_retry_after(scripted_model: Any) -> None:
    server = scripted_model([{"status": 429}, step(call("run_tests"))])
    sleeps: list[float] = []
    with client(server.base_url, sleeps) as model:
        model.complete(MESSAGES, tool_schemas())
    assert len(sleeps) == 1


def test_persistent_500_ends_in_model_unavailable(scripted_model: Any) -> None:
    server = scripted_model([{"status": 500, "body": "engine dead"}] * 5)
    with client(server.base_url) as model, pytest.raises(ModelUnavailable) as info:
        model.complete(MESSAGES, tool_schemas())
    assert info.value.attempts == 3
    assert info.value.status == 500
    assert "engine dead" in str(info.value)


def test_client_errors_are_not_retried(scripted_model: Any) -> None:
    server = scripted_model([{"status": 400, "body": "maximum context length exceeded"}])
    sleeps: list[float] = []
    with client(server.base_url, sleeps) as model, pytest.raises(ModelRequestRejected) as info:
        model.complete(MESSAGES, tool_schemas())
    assert info.value.status == 400
    assert sleeps == [] and len(server.requests) == 1


def test_nobody_listening_is_retried_then_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    sleeps: list[float] = []
    with (
        client(f"http://127.0.0.1:{port}/v1", sleeps) as model,
        pytest.raises(ModelUnavailable) as info,
    ):
        model.complete(MESSAGES, tool_schemas())
    assert "ConnectError" in str(info.value)
    assert len(sleeps) == 2


def test_malformed_arguments_become_call_errors(scripted_model: Any) -> None:
    server = scripted_model(
        [
            {
                "raw_tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "view", "arguments": "{oops"},
                    },
                    {
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "view", "arguments": "[1]"},
                    },
                ]
            }
        ]
    )
    with client(server.base_url) as model:
        turn = model.complete(MESSAGES, tool_schemas())
    assert [c.error is not None for c in turn.tool_calls] == [True, True]
    assert "not valid JSON" in (turn.tool_calls[0].error or "")


def test_scripted_server_rejects_invalid_requests_like_a_server() -> None:
    with (
        ScriptedModelServer({"steps": []}) as server,
        client(server.base_url) as model,
        pytest.raises(ModelRequestRejected),
    ):
        model.complete([{"role": "wizard", "content": "x"}], [])
