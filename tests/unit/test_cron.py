"""Cron schedules fire when Vixie (and Debian) cron would fire them: the day fields OR'd
when both are restricted, AND'd when either starts with `*`; one that never fires is
refused. (How each field reads: test_cron_fields.py.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.engine.cron import _FIELDS, Cron, CronError, parse_field


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


NOW = at("2026-11-30T04:00:30")  # a Monday


@pytest.mark.parametrize(
    ("expression", "moment", "fires"),
    [
        ("0 4 * * *", "2026-11-30T04:00", True),
        ("0 4 * * *", "2026-11-30T04:00:59", True),  # any second of the minute
        ("0 4 * * *", "2026-11-30T04:01", False),
        ("*/15 * * * *", "2026-11-30T10:45", True),
        ("*/15 * * * *", "2026-11-30T10:46", False),
        ("0 4 * * mon-fri", "2026-11-29T04:00", False),  # a Sunday
        ("0 4 * * 7", "2026-11-29T04:00", True),  # 7 is Sunday too
        ("0 4 * * fri-mon", "2026-11-29T04:00", True),  # a range may wrap around
        ("0 4 * * fri-mon", "2026-12-02T04:00", False),  # a Wednesday
        ("@weekly", "2026-11-29T00:00", True),
        ("@daily", "2026-12-02T00:00", True),
        ("30 2 * jan,jul *", "2026-07-09T02:30", True),
        ("30 2 * jan,jul *", "2026-08-09T02:30", False),
        # Both day fields restricted: either matches.
        ("0 0 1 * 1", "2026-12-01T00:00", True),  # the 1st, a Tuesday
        ("0 0 1 * 1", "2026-11-30T00:00", True),  # a Monday
        ("0 0 1 * 1", "2026-12-02T00:00", False),
        ("0 0 1,15 * 1", "2026-12-01T00:00", True),
        ("0 0 1,15 * 1", "2026-12-15T00:00", True),  # a Tuesday
        ("0 0 1,15 * 1", "2026-12-07T00:00", True),  # a Monday
        ("0 0 1,15 * 1", "2026-12-08T00:00", False),
        # The day of month starts with `*`: a day must match both (the old parser OR'd
        # these, firing on every odd day and every Monday).
        ("0 0 */2 * 1", "2026-12-07T00:00", True),  # odd, a Monday
        ("0 0 */2 * 1", "2026-11-30T00:00", False),  # a Monday, even
        ("0 0 */2 * 1", "2026-12-14T00:00", False),  # a Monday, even
        ("0 0 */2 * 1", "2026-12-01T00:00", False),  # odd, a Tuesday
        # ... and so when the day of week does: Sunday, Tuesday, Thursday, Saturday.
        ("0 0 1 * */2", "2026-12-01T00:00", True),  # the 1st, a Tuesday
        ("0 0 1 * */2", "2026-11-01T00:00", True),  # the 1st, a Sunday
        ("0 0 1 * */2", "2027-01-01T00:00", False),  # the 1st, a Friday
        ("0 0 1 * */2", "2026-12-03T00:00", False),  # a Thursday, not the 1st
    ],
)
def test_cron_matches_like_crontab(expression: str, moment: str, fires: bool) -> None:
    assert Cron.parse(expression).matches(at(moment)) is fires


def test_odd_mondays_only() -> None:
    cron = Cron.parse("0 0 */2 * 1")
    days = [at("2026-11-01T00:00") + timedelta(days=n) for n in range(61)]
    assert [f"{d:%m-%d}" for d in days if cron.matches(d)] == ["11-09", "11-23", "12-07", "12-21"]


def test_the_1st_the_15th_and_mondays() -> None:
    cron = Cron.parse("0 0 1,15 * 1")
    days = [at("2026-12-01T00:00") + timedelta(days=n) for n in range(31)]
    assert [f"{d:%d}" for d in days if cron.matches(d)] == ["01", "07", "14", "15", "21", "28"]


@pytest.mark.parametrize(
    "expression",
    ["0 25 * * *", "* * *", "every day", "0 4 * 13 *", "0 0 * * * *", "0 0 L * *", "", "@often"],
)
def test_bad_cron_names_the_problem(expression: str) -> None:
    with pytest.raises(CronError, match=repr(expression).replace("*", r"\*")):
        Cron.parse(expression)


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 0 31 2 *", "none of its months has day 31"),
        ("0 0 30 feb *", "none of its months has day 30"),
        ("0 0 30,31 2 *", "none of its months has day 30 or 31"),
        ("0 0 31 4,6,9,11 *", "none of its months has day 31"),
        ("0 0 31 2 */2", "none of its months has day 31"),  # the days still ANDed
    ],
)
def test_a_schedule_that_never_fires_is_refused(expression: str, problem: str) -> None:
    with pytest.raises(CronError) as refused:
        Cron.parse(expression)
    assert str(refused.value) == f"{expression!r} never fires: {problem}"


def test_rare_schedules_are_not_refused() -> None:
    # The 31st of February or any Monday of February: the Mondays.
    assert Cron.parse("0 0 31 2 1").latest_fire(at("2026-01-01T00:00"), NOW) == at(
        "2026-02-23T00:00"
    )
    # The 29th of February (in leap years), and the 29th of February on a Sunday.
    assert Cron.parse("0 0 29 2 *").latest_fire(at("2020-01-01T00:00"), NOW) == at(
        "2024-02-29T00:00"
    )
    assert Cron.parse("0 0 29 2 */7").latest_fire(at("2000-01-01T00:00"), NOW) == at(
        "2004-02-29T00:00"
    )


def test_latest_fire_in_a_window() -> None:
    cron = Cron.parse("*/20 * * * *")
    assert cron.latest_fire(at("2026-11-30T03:55"), at("2026-11-30T04:45:10")) == at(
        "2026-11-30T04:40"
    )
    assert cron.latest_fire(at("2026-11-30T04:40"), at("2026-11-30T04:59")) is None
    # (after, upto]: the end minute counts, the start does not.
    assert cron.latest_fire(at("2026-11-30T04:39"), at("2026-11-30T04:40")) == at(
        "2026-11-30T04:40"
    )
    assert cron.latest_fire(at("2026-11-30T04:40"), at("2026-11-30T04:40:59")) is None
    weekly = Cron.parse("0 5 * * 1")
    assert weekly.latest_fire(NOW - timedelta(hours=1), NOW) is None
    assert weekly.latest_fire(NOW - timedelta(days=8), NOW) == at("2026-11-23T05:00")


def test_times_are_utc() -> None:
    cron = Cron.parse("0 4 * * *")
    plus_one = timezone(timedelta(hours=1))
    assert cron.matches(datetime(2026, 11, 30, 5, 0, tzinfo=plus_one))
    assert not cron.matches(datetime(2026, 11, 30, 4, 0, tzinfo=plus_one))
    assert cron.matches(datetime(2026, 11, 30, 4, 0))  # naive: taken as UTC
    fire = cron.latest_fire(NOW - timedelta(hours=1), NOW)
    assert fire is not None and fire == at("2026-11-30T04:00") and fire.tzinfo is UTC
    assert cron.latest_fire(datetime(2026, 11, 30, 3), datetime(2026, 11, 30, 5)) == datetime(
        2026, 11, 30, 4
    )


# -- against cron's rule, read from the fields -----------------------------------------

_DAYS_IN = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30}


def _field(top: int, bottom: int, names: list[str]) -> st.SearchStrategy[str]:
    """A field of numbers, `names` (often), ranges (some wrapping around) and steps."""
    number = st.integers(bottom, bottom + top - 1).map(str)
    atom = st.one_of(number, st.sampled_from(names))
    part = st.one_of(
        atom,
        st.tuples(atom, atom).map("-".join),
        st.tuples(atom, atom, st.integers(1, 9)).map(lambda t: f"{t[0]}-{t[1]}/{t[2]}"),
        st.integers(1, 9).map(lambda step: f"*/{step}"),
    )
    listed = st.lists(part, min_size=1, max_size=3).map(",".join)
    return st.one_of(listed, listed, st.just("*"))


EXPRESSIONS = st.tuples(
    _field(60, 0, ["0", "30"]),
    _field(24, 0, ["4"]),
    _field(31, 1, ["29", "30", "31"]),  # days some months lack
    _field(12, 1, ["2", "feb", "apr", "dec"]),
    _field(8, 0, ["sun", "mon", "fri", "sat"]),
).map(" ".join)
MOMENTS = st.datetimes(datetime(2001, 1, 1), datetime(2099, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


def cron_says(expression: str) -> Callable[[datetime], bool]:
    """When crontab(5) and Vixie cron's do_command say it fires, read off the fields."""
    fields = expression.split()
    minutes, hours, days, months, weekdays = (
        parse_field(value, top, bottom)
        for value, (_, top, bottom) in zip(fields, _FIELDS, strict=True)
    )
    sunday_is_0 = {v % 7 for v in weekdays}
    anded = fields[2].startswith("*") or fields[4].startswith("*")

    def fires(moment: datetime) -> bool:
        if moment.minute not in minutes or moment.hour not in hours or moment.month not in months:
            return False
        day = moment.day in days
        weekday = moment.isoweekday() % 7 in sunday_is_0
        return (day and weekday) if anded else (day or weekday)

    return fires


def never_fires(expression: str) -> bool:
    fields = expression.split()
    days = parse_field(fields[2], 31, 1)
    months = parse_field(fields[3], 12, 1)
    anded = fields[2].startswith("*") or fields[4].startswith("*")
    return anded and min(days) > max(_DAYS_IN.get(m, 31) for m in months)


@settings(max_examples=300, deadline=None)
@given(expression=EXPRESSIONS, moment=MOMENTS, data=st.data())
def test_fires_when_cron_would(expression: str, moment: datetime, data: st.DataObject) -> None:
    if never_fires(expression):
        with pytest.raises(CronError, match="never fires"):
            Cron.parse(expression)
        return
    cron = Cron.parse(expression)
    fires = cron_says(expression)
    assert cron.matches(moment) is fires(moment)
    # At a minute and hour it names, so that the day rule decides.
    on_time = moment.replace(
        hour=data.draw(st.sampled_from(sorted(cron.hours))),
        minute=data.draw(st.sampled_from(sorted(cron.minutes))),
    )
    assert cron.matches(on_time) is fires(on_time)


@settings(max_examples=100, deadline=None)
@given(expression=EXPRESSIONS, upto=MOMENTS, hours=st.integers(0, 36))
def test_latest_fire_is_the_last_minute_cron_would_fire(
    expression: str, upto: datetime, hours: int
) -> None:
    if never_fires(expression):
        return
    after = upto - timedelta(hours=hours)
    fires = cron_says(expression)
    minute = upto.replace(second=0, microsecond=0)
    while minute > after and not fires(minute):
        minute -= timedelta(minutes=1)
    expected = minute if minute > after else None
    assert Cron.parse(expression).latest_fire(after, upto) == expected


LATE_DAYS = st.lists(st.sampled_from(["29", "30", "31", "30-31", "*/29"]), min_size=1, max_size=2)
SHORT_MONTHS = st.lists(st.sampled_from(["2", "feb", "4", "6", "9", "nov", "1"]), min_size=1)


@settings(max_examples=200, deadline=None)
@given(
    days=LATE_DAYS.map(",".join),
    months=SHORT_MONTHS.map(",".join),
    weekdays=st.sampled_from(["*", "*/2", "mon", "1-5", "sat-mon"]),
)
def test_refused_only_if_it_never_fires(days: str, months: str, weekdays: str) -> None:
    expression = f"0 4 {days} {months} {weekdays}"
    if never_fires(expression):
        with pytest.raises(CronError, match="never fires"):
            Cron.parse(expression)
    else:  # within 40 years (the 29th of February on a Monday waits 28)
        assert Cron.parse(expression).latest_fire(NOW - timedelta(days=366 * 40), NOW)
