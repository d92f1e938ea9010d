"""Making random weights call tools: the project's client with `tool_choice` naming a tool
in every request, so that vLLM's guided decoding writes a call whatever the weights, and
its qwen3_coder parser reads it. What the model decides means nothing; every byte of the
protocol (template, parser, replay, prefix cache) is the real server's."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.memory_sandbox import MemorySandbox
from tests.vllm.server import VllmServer
from workers.engine.agent.loop import Agent, AgentResult, Limits, SubmitOutcome
from workers.engine.agent.tools import Toolbox
from workers.engine.agent.trajectory import Trajectory
from workers.engine.agent.window import ContextWindow, WindowSize
from workers.engine.llm.client import OpenAICompatibleModel
from workers.engine.llm.prompt_format import PromptCounter
from workers.engine.llm.types import Message, ToolSchema

CLOSE = "522"
"""Qwen3's token for `</`. vLLM 0.32 makes a named call through a structural tag in
Qwen3-Coder's own format (`<tool_call>\n<function=NAME>\n` …), which lets random weights
write filler up to `max_tokens` before `</function>`; a bias towards `</` (allowed only
where the tag allows it) closes the call at once, with no parameters."""
ROTATION = ("run_tests", "view", "search", "bash")
"""The tools named in turn: consecutive calls differ, so the loop never stops as stuck."""


class ForcingModel(OpenAICompatibleModel):
    """Names the tool of every request: the next of `rotation` by the number of assistant
    turns so far (a replayed conversation asks for the same one). Keeps a copy of every
    request body and every raw response."""

    def __init__(self, *, rotation: Sequence[str] = ROTATION, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rotation = tuple(rotation)
        self.bodies: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []

    def forced(self, messages: Sequence[Message]) -> str:
        turn = sum(1 for m in messages if m["role"] == "assistant")
        return self.rotation[turn % len(self.rotation)]

    def __enter__(self) -> ForcingModel:
        return self

    def request_body(self, messages: list[Message], tools: list[ToolSchema]) -> dict[str, Any]:
        body = super().request_body(messages, tools)
        body["tool_choice"] = {"type": "function", "function": {"name": self.forced(messages)}}
        body["logit_bias"] = {CLOSE: 100}
        return body

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append(json.loads(json.dumps(body)))  # the loop's list grows after
        data = super()._post(body)
        self.responses.append(data)
        return data


def forcing_model(server: VllmServer, **kwargs: Any) -> ForcingModel:
    return ForcingModel(
        base_url=server.base_url,
        model="tiny",
        max_retries=0,  # a refusal or an error shows at once, not after retries
        backoff_s=0.01,
        timeout_s=120,
        **kwargs,
    )


FIRST: list[Message] = [
    {"role": "system", "content": "You fix bugs. The tests run with `python -m pytest -q`."},
    {"role": "user", "content": "double() is wrong: double(2) gives 5."},
]


@dataclass
class ForcedRun:
    agent: Agent
    result: AgentResult
    model: ForcingModel
    trajectory: Path
    test_runs: int


def run_forced_agent(server: VllmServer, trajectory: Path, turns: int) -> ForcedRun:
    """The agent loop for `turns` turns against `server`, every turn a forced call, run in
    the in-memory sandbox of the unit tests (no Docker); `run_tests` answers as a failing
    suite would. Requests are sized to the server's window, as in production."""
    runs: list[int] = []

    def run_tests() -> str:
        runs.append(1)
        return f"Tests failed (exit 1): run {len(runs)}"

    box = MemorySandbox({"mathlib.py": "def double(x):\n    return x + x + 1\n"})
    toolbox = Toolbox(box, run_tests=run_tests, command_timeout_s=30, output_chars=4000)
    size = WindowSize(limit=server.window, max_output=512, min_output=256)
    with forcing_model(server) as model, Trajectory(trajectory) as log:
        agent = Agent(
            model,
            toolbox,
            on_submit=lambda _: SubmitOutcome(accepted=False, message="not now"),
            limits=Limits(max_turns=turns),
            trajectory=log,
            window=ContextWindow(size, PromptCounter()),
        )
        result = agent.run(FIRST)
    return ForcedRun(agent, result, model, trajectory, len(runs))


def block_size(server: VllmServer) -> int:
    """The KV cache's block size (the prefix cache's unit), from `vllm:cache_config_info`."""
    import httpx

    for line in httpx.get(f"{server.root}/metrics", timeout=10).text.splitlines():
        if line.startswith("vllm:cache_config_info{"):
            for label in line[line.index("{") + 1 : line.rindex("}")].split(","):
                key, _, value = label.partition("=")
                if key == "block_size":
                    return int(value.strip('"'))
    raise AssertionError("the server's /metrics has no block_size in vllm:cache_config_info")
