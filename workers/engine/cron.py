"""Five-field cron expressions (minute hour day-of-month month day-of-week), in UTC.

Fields take what crontab(5) takes: `*`, numbers, ranges, lists, steps and month or day
names, plus the @hourly, @daily, @weekly and @monthly shorthands, each read as Celery's
crontab parser reads it. The days are Vixie (and Debian) cron's: when both day fields
are restricted a day matches if either does, but when either starts with `*` (`*/2`,
say) a day must match both. cronsim, which follows Debian's cron, says when a schedule
fires; one that never can (`0 0 31 2 *`) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

from cronsim import CronSim, CronSimError

ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
# (name, parser upper bound, lower bound); day of week 0-6 with Sunday 0, as in cron.
_FIELDS = (
    ("minute", 60, 0),
    ("hour", 24, 0),
    ("day of month", 31, 1),
    ("month", 12, 1),
    ("day of week", 8, 0),
)  # 7 is Sunday too


class CronError(ValueError):
    """The expression is not a cron schedule; the message says which field is wrong."""


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# A field's parts, read as crontab(5) (and Celery's crontab parser) read them.
_RANGE_STEP = re.compile(r"(\w+?)-(\w+)/(\w+)?")
_RANGE = re.compile(r"(\w+?)-(\w+)")
_STAR_STEP = re.compile(r"\*/(\w+)?")


def _number(text: str, top: int, bottom: int) -> int:
    if text.isdigit():
        value = int(text)
    elif text[:3].lower() in _MONTHS:
        value = _MONTHS.index(text[:3].lower()) + 1
    elif text[:3].lower() in _WEEKDAYS:
        value = _WEEKDAYS.index(text[:3].lower())
    else:
        raise ValueError(f"not a number or a month or day name: {text!r}")
    if not bottom <= value < bottom + top:
        raise ValueError(f"{value} is out of range")
    return value


def _span(first: str, last: str | None, top: int, bottom: int) -> list[int]:
    low = _number(first, top, bottom)
    if last is None:
        return [low]
    high = _number(last, top, bottom)
    if high < low:  # wraps around, as in "fri-mon"
        return [*range(low, bottom + top), *range(bottom, high + 1)]
    return list(range(low, high + 1))


def _step(text: str | None) -> int:
    if not text or not text.isdigit() or int(text) == 0:
        raise ValueError(f"bad step {text!r}")
    return int(text)


def parse_field(value: str, top: int, bottom: int) -> set[int]:
    """One field: `*`, numbers, names, ranges (wrapping around), lists and steps; the
    values lie in [bottom, bottom + top). Raises ValueError."""
    values: set[int] = set()
    for part in value.split(","):
        if match := _RANGE_STEP.match(part):
            values.update(_span(match[1], match[2], top, bottom)[:: _step(match[3])])
        elif match := _RANGE.match(part):
            values.update(_span(match[1], match[2], top, bottom))
        elif match := _STAR_STEP.match(part):
            values.update(list(range(bottom, bottom + top))[:: _step(match[1])])
        elif part == "*":
            values.update(range(bottom, bottom + top))
        elif part:
            values.update(_span(part, None, top, bottom))
        else:
            raise ValueError("empty part")
    return values


# Where the check that a schedule fires at all starts. A cron schedule repeats every 400
# years, and its longest gap (the 29th of February on one weekday, across 2100) is 40
# years: cronsim's search, 50 years ahead, finds a firing if there is any.
_SINCE = datetime(2000, 1, 1)


def _listed(values: frozenset[int]) -> str:
    return ",".join(map(str, sorted(values)))


def _starred(values: frozenset[int], bottom: int, top: int) -> str:
    """A day field that starts with `*` and means `values`, in cronsim's syntax: the star
    is what makes cron AND the two day fields. (`*/top` is the bottom value alone, which
    a field that starts with `*` always holds.)"""
    if values == frozenset(range(bottom, bottom + top)):
        return "*"
    return ",".join([f"*/{top}", *map(str, sorted(values - {bottom}))])


def _utc(moment: datetime) -> datetime:
    """The minute of `moment`, in UTC (a naive one is taken as UTC already)."""
    moment = moment.replace(second=0, microsecond=0)
    return moment.astimezone(UTC) if moment.tzinfo else moment


@dataclass(frozen=True)
class Cron:
    """A schedule as `parse` reads it. `any_day` and `any_weekday` say that the day field
    starts with `*` (Vixie cron's DOM_STAR and DOW_STAR): then a day must match both."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        text = ALIASES.get(expression.strip().lower(), expression.strip())
        fields = text.split()
        if len(fields) != 5:
            raise CronError(
                f"{expression!r} is not a cron schedule: it needs five fields "
                "(minute hour day-of-month month day-of-week), e.g. '0 4 * * 1'"
            )
        sets = []
        for value, (name, top, bottom) in zip(fields, _FIELDS, strict=True):
            try:
                parsed = parse_field(value, top, bottom)
            except ValueError as exc:
                raise CronError(f"{expression!r}: bad {name} field {value!r}") from exc
            if not parsed or not all(bottom <= v < bottom + top for v in parsed):
                raise CronError(f"{expression!r}: {name} field {value!r} is out of range")
            sets.append(
                frozenset(v % 7 for v in parsed) if name == "day of week" else frozenset(parsed)
            )
        cron = cls(
            expression=expression,
            minutes=sets[0],
            hours=sets[1],
            days=sets[2],
            months=sets[3],
            weekdays=sets[4],
            any_day=fields[2].startswith("*"),
            any_weekday=fields[4].startswith("*"),
        )
        cron._check_it_fires()
        return cron

    @cached_property
    def _cronsim_text(self) -> str:
        """This schedule in cronsim's syntax, which lacks some of Celery's (ranges that
        wrap around, names in any field, ...): every field a list of numbers, but for a
        day field that starts with `*`."""
        days, weekdays = _listed(self.days), _listed(self.weekdays)
        if self.any_day:
            days = _starred(self.days, 1, 31)
        if self.any_weekday:
            weekdays = _starred(self.weekdays, 0, 7)
        return " ".join(
            [_listed(self.minutes), _listed(self.hours), days, _listed(self.months), weekdays]
        )

    def _check_it_fires(self) -> None:
        try:
            next(CronSim(self._cronsim_text, _SINCE))
        except CronSimError as exc:
            # What it refuses of a text in its own syntax: days that none of the months
            # has, with the day fields ANDed.
            days = " or ".join(map(str, sorted(self.days)))
            raise CronError(
                f"{self.expression!r} never fires: none of its months has day {days}"
            ) from exc
        except StopIteration as exc:
            raise CronError(f"{self.expression!r} never fires (not once in 50 years)") from exc

    def matches(self, moment: datetime) -> bool:
        """Whether this schedule fires in the minute of `moment`."""
        minute = _utc(moment)
        try:
            return next(CronSim(self._cronsim_text, minute - timedelta(minutes=1))) == minute
        except StopIteration:
            return False

    def latest_fire(self, after: datetime, upto: datetime) -> datetime | None:
        """The last minute in (after, upto] at which this schedule fires, if any."""
        start = _utc(upto) + timedelta(minutes=1)  # cronsim looks back from before start
        try:
            fire = next(CronSim(self._cronsim_text, start, reverse=True))
        except StopIteration:
            return None
        return fire if fire > after else None
