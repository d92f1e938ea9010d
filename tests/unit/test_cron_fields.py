"""The engine's cron field parser reads every field as Celery's crontab parser (which the
workers used before the engine had to run without Celery) does."""

from __future__ import annotations

import pytest
from celery.schedules import ParseException, crontab_parser
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.engine.cron import _FIELDS, parse_field

ATOMS = st.one_of(
    st.just("*"),
    st.just(""),
    st.integers(0, 70).map(str),
    st.sampled_from(["jan", "Mar", "dec", "sun", "monday", "sat", "fri", "x"]),
)
PARTS = st.one_of(
    ATOMS,
    st.tuples(ATOMS, st.integers(0, 70)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.tuples(ATOMS, st.integers(0, 30)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.tuples(ATOMS, ATOMS, ATOMS).map(lambda t: f"{t[0]}-{t[1]}/{t[2]}"),
    st.tuples(st.integers(0, 70), st.integers(0, 70), st.integers(1, 20)).map(
        lambda t: f"{t[0]}-{t[1]}/{t[2]}"
    ),
)
FIELDS = st.lists(PARTS, min_size=1, max_size=3).map(",".join)


def celery_reads(value: str, top: int, bottom: int) -> set[int] | None:
    try:
        return set(crontab_parser(top, bottom).parse(value))
    except (ParseException, ValueError):
        return None


def ours(value: str, top: int, bottom: int) -> set[int] | None:
    try:
        return parse_field(value, top, bottom)
    except ValueError:
        return None


@pytest.mark.parametrize(("name", "top", "bottom"), _FIELDS)
@settings(max_examples=300, deadline=None)
@given(value=FIELDS)
def test_a_field_reads_as_celery_reads_it(name: str, top: int, bottom: int, value: str) -> None:
    assert ours(value, top, bottom) == celery_reads(value, top, bottom), (name, value)
