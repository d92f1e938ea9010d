"""Which deliveries the redelivery sweep asks for (the latest attempt of each delivery none
of whose attempts succeeded, oldest first), and beat's schedule entry for the sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.contract.job import TaskName
from workers.github.hook_deliveries import Attempt
from workers.runtime.beat import redelivery_schedule
from workers.runtime.redeliver import needing_redelivery
from workers.settings import WorkerSettings

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def attempt(n: int, guid: str, code: int, minutes: int) -> Attempt:
    return Attempt(
        id=n,
        guid=guid,
        delivered_at=T0 + timedelta(minutes=minutes),
        status_code=code,
        event="issues",
        action="opened",
        redelivery=False,
    )


def test_the_latest_attempt_of_each_delivery_that_never_succeeded() -> None:
    attempts = [
        attempt(1, "a", 503, 0),
        attempt(2, "a", 0, 5),  # a timed out the second time: asked for by this attempt
        attempt(3, "b", 503, 1),
        attempt(4, "b", 202, 6),  # b was delivered in the end
        attempt(5, "c", 200, 2),
        attempt(6, "c", 500, 7),  # c was delivered once: a later failure changes nothing
        attempt(7, "d", 302, 3),  # a redirect is not a delivery
        attempt(8, "e", 204, 4),
        attempt(9, "f", 401, -1),
    ]
    assert [a.id for a in needing_redelivery(attempts)] == [9, 7, 2]
    assert needing_redelivery([]) == []


def test_same_time_attempts_are_ordered_by_id() -> None:
    assert [
        a.id for a in needing_redelivery([attempt(11, "x", 503, 0), attempt(10, "x", 502, 0)])
    ] == [11]


def test_beat_sends_the_sweep_to_the_quick_queue_unless_it_is_off() -> None:
    entry = redelivery_schedule(WorkerSettings(redeliver_every_s=120, quick_queue="q"), "b1")
    assert entry == {
        "qwenfix-redeliver": {
            "task": TaskName.REDELIVER.value,
            "schedule": 120,
            "kwargs": {"beat": "b1"},
            "options": {"queue": "q", "expires": 120},
        }
    }
    assert redelivery_schedule(WorkerSettings(redeliver_every_s=0), "b1") == {}


def test_the_window_is_within_githubs_retention() -> None:
    assert WorkerSettings().redeliver_window_s < 3 * 24 * 3600
