"""The trajectory's events are one contract: the writer checks each record against the
model the dashboard reads it through."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.contract.events import PAYLOADS, Event, TestsData, VerifyData, payload
from workers.engine.agent.trajectory import Trajectory, read_trajectory


def test_a_record_is_written_as_given_and_read_through_its_model(tmp_path: Path) -> None:
    with Trajectory(tmp_path / "t.jsonl") as trajectory:
        trajectory.record(
            Event.VERIFY,
            status="resolved",
            reason="the suite passes",
            tests={
                "exit_code": 0,
                "duration_s": 1.5,
                "tests": {"t::a": "passed", "t::b": "passed"},
            },
            test_changes=[],
        )
    (line,) = read_trajectory(tmp_path / "t.jsonl")
    found = payload(line["event"], line)
    assert isinstance(found, VerifyData) and found.tests is not None
    assert found.tests.summary() == "passed: 2 passed"
    assert line["test_changes"] == []  # what the model does not name is kept as written


def test_the_writer_refuses_a_record_the_dashboard_could_not_read(tmp_path: Path) -> None:
    with Trajectory(tmp_path / "t.jsonl") as trajectory, pytest.raises(ValidationError):
        trajectory.record(Event.PACK, tokens="many", counts={"full": 3})
    assert read_trajectory(tmp_path / "t.jsonl") == []


def test_a_foreign_or_unknown_record_reads_as_nothing() -> None:
    assert payload("pack", {"tokens": "many"}) is None
    assert payload("no-such-event", {}) is None
    assert payload(Event.SNAPSHOT, {"image": "x"}) is None  # an event without a model


def test_every_event_the_dashboard_reads_has_a_model() -> None:
    read = {
        Event.START,
        Event.SETUP,
        Event.UPGRADE,
        Event.AUTOFIX,
        Event.CHECK,
        Event.TESTS_BEFORE,
        Event.TESTS_HEAD,
        Event.PACK,
        Event.VERIFY,
        Event.STOP,
        Event.RESULT,
        Event.DIFF,
        Event.MESSAGE,
    }
    assert read <= set(PAYLOADS)
    assert TestsData(exit_code=None, timed_out=True).summary() == "timed out"
