"""The agent loop's behaviours with in-process doubles: the same ones
tests/integration/test_fix_end_to_end.py shows through Docker, in milliseconds."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.contract.job import StopRequest
from sandbox.protocol import CommandResult
from tests.fakes.inprocess_model import RawCall, ScriptedModel, call, calls, malformed, text
from tests.fakes.memory_sandbox import MemorySandbox
from workers.engine.agent.loop import (
    CUT_NOTE,
    NO_CALL_NUDGE,
    REPEAT_STOP,
    REPEAT_WARN,
    Agent,
    AgentResult,
    Limits,
    SubmitOutcome,
)
from workers.engine.agent.stops import Stuck
from workers.engine.agent.tools import FIX_TOOLS, SubmitRequested, Toolbox
from workers.engine.agent.trajectory import Trajectory, read_trajectory
from workers.engine.llm.errors import ModelError, ModelRequestRejected, ModelUnavailable
from workers.engine.llm.types import Message, Usage

FIRST: list[Message] = [
    {"role": "system", "content": "You fix bugs. The tests run with `python -m pytest -q`."},
    {"role": "user", "content": "double() is wrong: double(2) gives 5."},
]
BUGGY = "def double(x):\n    return x + x + 1\n"
FIXED = "def double(x):\n    return x * 2\n"
ACCEPTED = SubmitOutcome(accepted=True, message="the tests pass now: 2 failed → 2 passed")
REJECTED = SubmitOutcome(
    accepted=False,
    message="Not accepted: the test suite failed (exit 1)\nFAILED tests/test_m.py::test_double",
)
THE_FIX = call("str_replace", path="mathlib.py", old_str="x + x + 1", new_str="x * 2")
SUBMIT = call("submit", summary="double() added one too many.", title="Fix double()")


class Judge:
    """`on_submit`: answers each submission with the next outcome, keeping what it got."""

    def __init__(self, *outcomes: SubmitOutcome) -> None:
        self.outcomes = list(outcomes)
        self.submitted: list[SubmitRequested] = []

    def __call__(self, submit: SubmitRequested) -> SubmitOutcome:
        self.submitted.append(submit)
        return self.outcomes[len(self.submitted) - 1]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def trajectory(tmp_path: Path) -> Iterator[Trajectory]:
    with Trajectory(tmp_path / "trajectory.jsonl") as log:
        yield log


@pytest.fixture
def box() -> MemorySandbox:
    return MemorySandbox({"mathlib.py": BUGGY})


def make_agent(
    model: ScriptedModel,
    trajectory: Trajectory,
    sandbox: MemorySandbox,
    *,
    judge: Judge | None = None,
    limits: Limits | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Agent:
    toolbox = Toolbox(
        sandbox, run_tests=lambda: "Tests passed (exit 0).", command_timeout_s=30, output_chars=4000
    )
    return Agent(
        model,
        toolbox,
        on_submit=judge or Judge(ACCEPTED),
        limits=limits or Limits(),
        trajectory=trajectory,
        clock=clock,
    )


def run(
    model: ScriptedModel,
    trajectory: Trajectory,
    sandbox: MemorySandbox,
    *,
    judge: Judge | None = None,
    limits: Limits | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AgentResult:
    agent = make_agent(model, trajectory, sandbox, judge=judge, limits=limits, clock=clock)
    return agent.run(FIRST)


def told(model: ScriptedModel) -> list[Message]:
    """What the loop answered (tool and user messages), as the last request carried it."""
    return [m for m in model.requests[-1][len(FIRST) :] if m["role"] in ("tool", "user")]


def stop_event(trajectory: Trajectory) -> dict[str, object]:
    events = read_trajectory(trajectory.path)
    assert events[-1]["event"] == "stop"
    return events[-1]


def bash(command: str) -> RawCall:
    return call("bash", command=command)


# -- limits -----------------------------------------------------------------------------


def test_turn_limit_stops_before_the_next_request(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    model = ScriptedModel([calls(bash(f"echo {n}")) for n in range(3)])
    result = run(model, trajectory, box, limits=Limits(max_turns=3))
    assert (result.status, result.reason) == ("unresolved", "turn limit reached (3 turns)")
    assert result.turns == 3 and len(model.requests) == 3
    assert box.commands == ["echo 0", "echo 1", "echo 2"]
    assert stop_event(trajectory)["kind"] == "TurnLimit"


def test_token_limit_counts_prompt_and_completion_of_every_turn(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    turn = Usage(prompt_tokens=400, completion_tokens=100, cached_tokens=300)
    model = ScriptedModel([calls(bash(f"echo {n}"), usage=turn) for n in range(2)])
    result = run(model, trajectory, box, limits=Limits(max_total_tokens=1000))
    assert result.status == "unresolved"
    assert result.reason == "token limit reached (1000 of 1000)"
    assert result.turns == 2
    assert result.usage == Usage(prompt_tokens=800, completion_tokens=200, cached_tokens=600)
    assert stop_event(trajectory)["kind"] == "TokenLimit"


def test_wall_clock_limit_uses_the_injected_clock(trajectory: Trajectory) -> None:
    clock = Clock()

    def slow_build(command: str) -> CommandResult:
        clock.now += 600  # the command "takes" ten minutes; nothing sleeps
        return CommandResult(command=command, exit_code=0, output="built\n")

    sandbox = MemorySandbox(handlers={"make": slow_build})
    model = ScriptedModel([calls(bash("make")), calls(bash("make all"))])
    result = run(model, trajectory, sandbox, limits=Limits(max_wall_s=1000), clock=clock)
    assert (result.status, result.reason) == ("unresolved", "time limit reached (1000s)")
    assert result.turns == 2 and result.duration_s == 1200.0
    assert stop_event(trajectory)["kind"] == "TimeLimit"


def test_a_cancel_stops_the_run_before_the_next_request(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    asked: list[str] = []
    model = ScriptedModel([calls(bash(f"echo {n}")) for n in range(3)])
    agent = make_agent(model, trajectory, box)
    stop = StopRequest(by="maintainer", why="@maintainer asked it to stop")
    agent.cancelled = lambda: stop if asked else None
    box.handlers["echo 0"] = lambda command: (
        asked.append(command) or CommandResult(command=command, exit_code=0, output="0\n")
    )
    result = agent.run(FIRST)
    assert (result.status, result.reason) == ("stopped", "@maintainer asked it to stop")
    assert result.stopped_by == "maintainer"
    assert result.turns == 1 and len(model.requests) == 1 and box.commands == ["echo 0"]
    assert stop_event(trajectory)["kind"] == "Cancelled"


# -- stuck --------------------------------------------------------------------------------


def test_a_repeating_model_is_warned_then_stopped_as_stuck(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    model = ScriptedModel([calls(call("view", path="mathlib.py"))] * REPEAT_STOP)
    result = run(model, trajectory, box)
    assert result.status == "unresolved"
    assert result.reason == (
        f"stuck: the model repeated the same action with the same result {REPEAT_STOP} times"
    )
    assert result.turns == REPEAT_STOP
    replies = [m["content"] for m in told(model)]
    assert len(replies) == REPEAT_STOP - 1
    assert all(r.startswith("     1\tdef double(x):") for r in replies)
    assert not any("exactly this" in r for r in replies[: REPEAT_WARN - 1])
    assert f"you have now done exactly this {REPEAT_WARN} times" in replies[REPEAT_WARN - 1]
    assert "you have now done exactly this 4 times" in replies[3]
    assert stop_event(trajectory)["kind"] == "Stuck"


def test_the_stuck_stop_carries_the_repeated_action(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    model = ScriptedModel([calls(call("view", path="mathlib.py"))] * REPEAT_STOP)
    agent = make_agent(model, trajectory, box)
    agent.messages = list(FIRST)
    for _ in range(REPEAT_STOP - 1):
        agent.step()
    with pytest.raises(Stuck) as stop:
        agent.step()
    assert stop.value.data == {
        "action": json.dumps([["view", {"path": "mathlib.py"}]], sort_keys=True)
    }


def test_the_same_action_with_a_new_result_is_not_stuck(trajectory: Trajectory) -> None:
    runs = itertools.count(1)
    sandbox = MemorySandbox(
        handlers={
            "make": lambda c: CommandResult(
                command=c, exit_code=2, output=f"attempt {next(runs)} failed\n"
            )
        }
    )
    model = ScriptedModel([calls(bash("make"))] * (REPEAT_STOP + 1))
    result = run(model, trajectory, sandbox, limits=Limits(max_turns=REPEAT_STOP + 1))
    assert result.reason == f"turn limit reached ({REPEAT_STOP + 1} turns)"
    assert not any("exactly this" in m["content"] for m in told(model))


# -- replies that are not run -----------------------------------------------------------


def test_a_reply_without_a_tool_call_gets_the_nudge(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    model = ScriptedModel(
        [
            text("I think I know what to do."),
            text("Really, I do."),
            text("Really, I do."),
            text("Really, I do."),
            calls(SUBMIT),
        ]
    )
    result = run(model, trajectory, box)
    assert result.status == "resolved" and result.turns == 5
    nudges = told(model)
    assert [m["role"] for m in nudges] == ["user"] * 4
    assert [m["content"] for m in nudges[:3]] == [NO_CALL_NUDGE] * 3
    # The same text a third time in a row: the nudge says so.
    assert nudges[3]["content"].startswith(NO_CALL_NUDGE)
    assert f"exactly this {REPEAT_WARN} times" in nudges[3]["content"]


def test_a_reply_cut_at_max_tokens_with_tool_calls_is_never_run(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    cut = calls(
        call("str_replace", path="mathlib.py", old_str="def", new_str="BROKEN"),
        bash("rm -rf ."),
        finish_reason="length",
    )
    model = ScriptedModel([cut, calls(SUBMIT)])
    result = run(model, trajectory, box)
    assert result.status == "resolved"
    announced = [c["id"] for c in model.turns[0].message["tool_calls"]]
    # Each announced call gets its answer, or the next prompt is malformed.
    assert [(m["role"], m["tool_call_id"], m["content"]) for m in told(model)] == [
        ("tool", announced[0], CUT_NOTE),
        ("tool", announced[1], CUT_NOTE),
    ]
    assert box.commands == [] and box.text("mathlib.py") == BUGGY


def test_a_reply_cut_at_max_tokens_in_raw_text_is_never_run(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    cut = text(
        "<tool_call>\n<function=bash>\n<parameter=command>\nrm -rf math", finish_reason="length"
    )
    model = ScriptedModel([cut, calls(SUBMIT)])
    result = run(model, trajectory, box)
    assert result.status == "resolved"
    # The half call still parses into a complete-looking `rm -rf math`: it must not run.
    assert [c.arguments for c in model.turns[0].tool_calls] == [{"command": "rm -rf math"}]
    assert told(model) == [{"role": "user", "content": CUT_NOTE}]
    assert box.commands == []


def test_the_same_cut_reply_again_and_again_is_warned_then_stuck(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    cut = text(
        "<tool_call>\n<function=write_file>\n<parameter=path>\nbig.py\n<parameter=content>\nx = 1",
        finish_reason="length",
    )
    model = ScriptedModel([cut] * REPEAT_STOP)
    result = run(model, trajectory, box)
    assert result.reason.startswith("stuck:") and result.turns == REPEAT_STOP
    notes = [m["content"] for m in told(model)]
    assert notes[: REPEAT_WARN - 1] == [CUT_NOTE] * (REPEAT_WARN - 1)
    assert notes[REPEAT_WARN - 1].startswith(CUT_NOTE)
    assert f"exactly this {REPEAT_WARN} times" in notes[REPEAT_WARN - 1]
    assert box.files.keys() == {"/workspace/mathlib.py"}  # big.py was never written


def test_malformed_and_unknown_calls_are_answered_and_the_loop_goes_on(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    model = ScriptedModel(
        [
            calls(malformed("view", "{not json")),
            calls(call("delete_repository", really=True)),
            calls(call("view")),
            calls(call("str_replace", path="mathlib.py", old_str="nowhere", new_str="x")),
            calls(THE_FIX),
            calls(SUBMIT),
        ]
    )
    result = run(model, trajectory, box)
    assert result.status == "resolved" and result.turns == 6
    replies = [m["content"] for m in told(model)]
    assert replies[0].startswith(
        "ERROR: could not decode the call to 'view': arguments are not valid JSON"
    )
    assert replies[1] == (
        "ERROR: unknown tool 'delete_repository'; available tools: " + ", ".join(FIX_TOOLS)
    )
    assert replies[2] == "ERROR: invalid arguments for view: path: Field required"
    assert replies[3].startswith("ERROR: old_str was not found in mathlib.py")
    assert replies[4].startswith("Edited mathlib.py.")
    assert box.text("mathlib.py") == FIXED


def test_every_call_of_a_turn_is_answered_in_order(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    model = ScriptedModel([calls(call("teleport"), THE_FIX, call("run_tests")), calls(SUBMIT)])
    run(model, trajectory, box)
    ids = [c["id"] for c in model.turns[0].message["tool_calls"]]
    answers = told(model)
    assert [m["tool_call_id"] for m in answers] == ids
    assert answers[0]["content"].startswith("ERROR: unknown tool 'teleport'")
    assert answers[1]["content"].startswith("Edited mathlib.py.")
    assert answers[2]["content"] == "Tests passed (exit 0)."


# -- submit -------------------------------------------------------------------------------


def test_a_rejected_submit_is_told_to_the_model_and_the_run_goes_on(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    judge = Judge(REJECTED, ACCEPTED)
    model = ScriptedModel([calls(SUBMIT), calls(THE_FIX), calls(SUBMIT)])
    result = run(model, trajectory, box, judge=judge)
    assert (result.status, result.reason) == ("resolved", ACCEPTED.message)
    assert result.turns == 3 and len(judge.submitted) == 2
    first_submit = model.turns[0].message["tool_calls"][0]["id"]
    assert told(model)[0] == {
        "role": "tool",
        "tool_call_id": first_submit,
        "content": REJECTED.message,
    }


def test_an_accepted_submit_ends_resolved_with_what_was_handed_over(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    submit = call(
        "submit",
        summary="double() added one too many.",
        title="Fix double()",
        declined=["rename the module: not asked for"],
    )
    model = ScriptedModel([calls(THE_FIX), calls(submit, bash("touch after-submit"))])
    judge = Judge(ACCEPTED)
    result = run(model, trajectory, box, judge=judge)
    assert (result.status, result.reason) == ("resolved", ACCEPTED.message)
    assert (result.summary, result.title) == ("double() added one too many.", "Fix double()")
    assert result.declined == ["rename the module: not asked for"]
    assert result.turns == 2 and result.refused_status is None
    assert judge.submitted[0].summary == "double() added one too many."
    assert box.commands == []  # the call after an accepted submit never runs
    assert stop_event(trajectory)["kind"] == "Resolved"


def test_an_accepted_unverified_submit_ends_unverified(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    outcome = SubmitOutcome(
        accepted=True, status="unverified", message="passes only with its own edits to the tests"
    )
    result = run(ScriptedModel([calls(SUBMIT)]), trajectory, box, judge=Judge(outcome))
    assert (result.status, result.reason) == ("unverified", outcome.message)
    assert result.summary == "double() added one too many."
    assert stop_event(trajectory)["kind"] == "Unverified"


# -- the model server -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "error", "status"),
    [
        (
            0,
            ModelRequestRejected(
                "model server rejected the request: HTTP 400: maximum context "
                "length is 8192 tokens",
                status=400,
            ),
            400,
        ),
        (
            1,
            ModelUnavailable(
                "model server at http://gpu:8000/v1 failed 3 time(s); last: "
                "HTTP 500: CUDA out of memory",
                status=500,
                attempts=3,
            ),
            500,
        ),
        (
            2,
            ModelUnavailable(
                "model server at http://gpu:8000/v1 failed 3 time(s); last: ConnectError: refused",
                attempts=3,
            ),
            None,
        ),
    ],
)
def test_a_model_error_ends_the_run_in_error(
    trajectory: Trajectory, box: MemorySandbox, before: int, error: ModelError, status: int | None
) -> None:
    model = ScriptedModel([*(calls(bash(f"echo {n}")) for n in range(before)), error])
    result = run(model, trajectory, box)
    assert (result.status, result.reason) == ("error", str(error))
    assert result.refused_status == status
    assert result.turns == before
    assert stop_event(trajectory)["kind"] == "ModelFailed"


# -- the conversation -----------------------------------------------------------------


def test_the_conversation_is_append_only_and_recorded(
    trajectory: Trajectory, box: MemorySandbox
) -> None:
    model = ScriptedModel(
        [
            text("Let me look first."),
            calls(call("view", path="mathlib.py"), content="Viewing."),
            calls(malformed("view", '{"path": "math')),
            calls(call("write_file", path="mathlib.py", content="x" * 50), finish_reason="length"),
            calls(THE_FIX, call("run_tests")),
            calls(SUBMIT),
            calls(SUBMIT),
        ]
    )
    agent = make_agent(model, trajectory, box, judge=Judge(REJECTED, ACCEPTED))
    result = agent.run(FIRST)
    assert result.status == "resolved" and result.turns == 7
    assert model.requests[0] == FIRST
    for index, (earlier, later) in enumerate(itertools.pairwise(model.requests)):
        assert later[: len(earlier)] == earlier
        # What follows starts with the assistant turn exactly as the server sent it.
        assert later[len(earlier)] == model.turns[index].message
    assert all(tools == agent.toolbox.schemas for tools in model.tools)
    assert [s["function"]["name"] for s in model.tools[0]] == list(FIX_TOOLS)
    recorded = [e["message"] for e in read_trajectory(trajectory.path) if e["event"] == "message"]
    assert recorded == agent.messages
    assert box.text("mathlib.py") == FIXED
