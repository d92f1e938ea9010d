"""The context window kept by the agent loop: every request counted before it is sent, its
`max_tokens` what the window leaves, new observations cut to fit, and a full conversation
stopped as `context_full` instead of a request the server must refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.inprocess_model import ScriptedModel, call, calls
from tests.fakes.memory_sandbox import MemorySandbox
from workers.engine.agent.loop import Agent, Limits, SubmitOutcome
from workers.engine.agent.stops import ContextFull
from workers.engine.agent.tools import Toolbox
from workers.engine.agent.trajectory import Trajectory, read_trajectory
from workers.engine.agent.window import CUT_NOTE, ContextWindow, WindowSize
from workers.engine.llm.prompt_format import PromptCounter
from workers.engine.llm.types import Message

FIRST: list[Message] = [
    {"role": "system", "content": "You fix bugs."},
    {"role": "user", "content": "double() is wrong."},
]
BIG = "".join(f"line {n}: the quick brown fox jumps over the lazy dog\n" for n in range(400))


@pytest.fixture(scope="module")
def counter() -> PromptCounter:
    return PromptCounter()


def window(counter: PromptCounter, limit: int, **size: int) -> ContextWindow:
    return ContextWindow(WindowSize(limit=limit, **size), counter)


def test_the_budget_is_the_room_the_window_leaves(counter: PromptCounter) -> None:
    prompt = counter.count(FIRST, [])
    roomy = window(counter, 100_000, max_output=8192)
    assert roomy.budget(FIRST, []) == 8192
    assert roomy.last_count == prompt
    tight = window(counter, prompt + 32 + 2000, max_output=8192, min_output=1024, margin=32)
    assert tight.budget(FIRST, []) == 2000


def test_too_little_room_for_a_reply_is_context_full(counter: PromptCounter) -> None:
    prompt = counter.count(FIRST, [])
    full = window(counter, prompt + 32 + 1000, min_output=1024, margin=32)
    with pytest.raises(ContextFull) as stop:
        full.budget(FIRST, [])
    assert stop.value.status == "context_full"
    assert stop.value.data == {"prompt_tokens": prompt + 32, "limit": prompt + 32 + 1000}


def test_the_servers_higher_count_is_added_from_then_on(counter: PromptCounter) -> None:
    kept = window(counter, 100_000, max_output=200_000, margin=0)
    before = kept.budget(FIRST, [])
    kept.calibrate(kept.last_count + 40)
    kept.calibrate(kept.last_count + 10)  # a lower difference does not undo it
    assert kept.drift == 40
    assert kept.budget(FIRST, []) == before - 40


def test_an_observation_too_big_for_the_room_keeps_its_head_and_tail(
    counter: PromptCounter,
) -> None:
    prompt = counter.count(FIRST, [])
    kept = window(counter, prompt + 32 + 1024 + 4 * 1200, max_output=1024, margin=32)
    small, big = kept.fit(FIRST, [], ["exit 0", BIG])
    assert small == "exit 0"
    assert big.startswith("line 0:") and big.rstrip().splitlines()[-1].startswith("line 399:")
    assert "were cut here to fit the model's context window" in big
    assert counter.count_text(big) < counter.count_text(BIG) // 4
    assert CUT_NOTE.split("{cut}")[0] in big


def test_a_full_window_still_leaves_each_observation_its_gist(counter: PromptCounter) -> None:
    prompt = counter.count(FIRST, [])
    kept = window(counter, prompt + 100, max_output=1024, margin=32)
    (cut,) = kept.fit(FIRST, [], [BIG])
    assert 150 < counter.count_text(cut) < 260


def agent(model: ScriptedModel, trajectory: Trajectory, counter: PromptCounter) -> Agent:
    box = MemorySandbox({"big.txt": BIG, "mathlib.py": "def double(x):\n    return x + x\n"})
    toolbox = Toolbox(box, run_tests=lambda: "ok", command_timeout_s=30, output_chars=100_000)
    limit = model.window or 262_144
    return Agent(
        model,
        toolbox,
        on_submit=lambda _: SubmitOutcome(accepted=True, message="accepted"),
        limits=Limits(max_turns=60),
        trajectory=trajectory,
        window=ContextWindow(WindowSize(limit=limit, max_output=2048, min_output=512), counter),
    )


def test_every_request_fits_and_a_full_conversation_ends_context_full(
    tmp_path: Path, counter: PromptCounter
) -> None:
    reads = [calls(call("view", path="big.txt", end_line=400 - n)) for n in range(60)]
    model = ScriptedModel(reads, window=9000)
    with Trajectory(tmp_path / "t.jsonl") as log:
        result = agent(model, log, counter).run(FIRST)
    assert result.status == "context_full", result.reason
    assert result.prompt_tokens is not None and result.prompt_tokens > 9000 - 512
    assert "fills the model's context window" in result.reason
    assert len(model.requests) > 2
    tools = model.tools[0]
    for sent, max_tokens in zip(model.requests, model.max_tokens, strict=True):
        assert max_tokens is not None and max_tokens >= 512
        assert counter.count(sent, tools) + max_tokens <= 9000
    # Each output took a quarter of the room left, so each later one got less, down to
    # the gist every output keeps.
    outputs = [m["content"] for m in model.requests[-1] if m["role"] == "tool"]
    sizes = [counter.count_text(o) for o in outputs]
    assert sizes[0] > 1000 and sizes == sorted(sizes, reverse=True)
    assert "line 399:" in outputs[0] and "line 0:" in outputs[0]
    assert "cut here to fit" in outputs[-1]
    assert 150 < counter.count_text(outputs[-1]) < 260
    requests = [e for e in read_trajectory(log.path) if e["event"] == "request"]
    assert [e["max_tokens"] for e in requests] == model.max_tokens
    assert all(isinstance(e["prompt_tokens"], int) for e in requests)


def test_history_already_sent_is_never_rewritten(tmp_path: Path, counter: PromptCounter) -> None:
    reads = [calls(call("view", path="big.txt", end_line=400 - n)) for n in range(60)]
    model = ScriptedModel(reads, window=9000)
    with Trajectory(tmp_path / "t.jsonl") as log:
        agent(model, log, counter).run(FIRST)
    for earlier, later in zip(model.requests, model.requests[1:], strict=False):
        assert later[: len(earlier)] == earlier
