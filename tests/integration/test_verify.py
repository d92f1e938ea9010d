from __future__ import annotations

import pytest

from workers.engine.test_reports import parse_junit
from workers.engine.verify import TestRun, judge

JUNIT = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.test_a" name="test_ok" time="0.001"/>
<testcase classname="tests.test_a" name="test_bad"><failure message="boom">x</failure></testcase>
<testcase classname="tests.test_a" name="test_err"><error message="e"/></testcase>
<testcase classname="tests.test_a" name="test_skip"><skipped message="s"/></testcase>
</testsuite></testsuites>"""


def run(exit_code: int, tests: dict[str, str] | None) -> TestRun:
    return TestRun(command="pytest", exit_code=exit_code, tests=tests)


DIFF = "diff --git a/x b/x\n"


def test_parse_junit_outcomes() -> None:
    assert parse_junit(JUNIT) == {
        "tests.test_a::test_ok": "passed",
        "tests.test_a::test_bad": "failed",
        "tests.test_a::test_err": "error",
        "tests.test_a::test_skip": "skipped",
    }


def test_parse_junit_rejects_garbage_and_entity_bombs() -> None:
    assert parse_junit(b"not xml") is None
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
        b"<testsuite>&b;</testsuite>"
    )
    assert parse_junit(bomb) is None


def test_green_after_red_is_resolved() -> None:
    verdict = judge(
        run(1, {"t::a": "failed", "t::b": "passed"}),
        run(0, {"t::a": "passed", "t::b": "passed"}),
        diff=DIFF,
        issue_text="",
    )
    assert verdict.resolved and verdict.red_baseline


def test_empty_diff_is_never_resolved() -> None:
    verdict = judge(run(1, None), run(0, None), diff="  \n", issue_text="")
    assert not verdict.resolved
    assert "empty" in verdict.reason


def test_deleting_a_passing_test_is_a_regression_even_when_green() -> None:
    verdict = judge(
        run(1, {"t::a": "failed", "t::b": "passed"}),
        run(0, {"t::a": "passed"}),
        diff=DIFF,
        issue_text="",
    )
    assert not verdict.resolved
    assert verdict.regressions == ["t::b"]


def test_still_red_without_per_test_results_is_unresolved() -> None:
    verdict = judge(run(1, None), run(1, None), diff=DIFF, issue_text="")
    assert not verdict.resolved


def test_red_baseline_with_named_test_fixed_and_old_failure_left() -> None:
    before = run(1, {"t::test_parse": "failed", "t::test_network": "failed", "t::c": "passed"})
    after = run(1, {"t::test_parse": "passed", "t::test_network": "failed", "t::c": "passed"})
    verdict = judge(before, after, diff=DIFF, issue_text="test_parse fails on empty input")
    assert verdict.resolved and verdict.red_baseline
    assert verdict.targets == ["t::test_parse"]
    assert verdict.still_failing == ["t::test_network"]


def test_red_baseline_with_new_test_added_by_agent() -> None:
    before = run(1, {"t::old_broken": "failed"})
    after = run(1, {"t::old_broken": "failed", "t::test_new": "passed"})
    assert judge(before, after, diff=DIFF, issue_text="").resolved


def test_red_baseline_with_named_test_still_failing() -> None:
    before = run(1, {"t::test_parse": "failed"})
    after = run(1, {"t::test_parse": "failed"})
    verdict = judge(before, after, diff=DIFF, issue_text="test_parse is broken")
    assert not verdict.resolved
    assert "still fail" in verdict.reason


def test_green_baseline_turning_red_is_unresolved() -> None:
    verdict = judge(
        run(0, {"t::a": "passed"}),
        run(1, {"t::a": "passed", "t::b": "failed"}),
        diff=DIFF,
        issue_text="",
    )
    assert not verdict.resolved
    assert not verdict.red_baseline


def test_removing_a_failing_test_is_not_a_fix() -> None:
    verdict = judge(
        run(1, {"t::test_bug": "failed", "t::b": "passed"}),
        run(0, {"t::b": "passed"}),
        diff=DIFF,
        issue_text="",
    )
    assert not verdict.resolved
    assert verdict.still_failing == ["t::test_bug"]
    assert verdict.missing == ["t::test_bug"]
    assert "removed instead of fixed" in verdict.reason
    assert "t::test_bug (missing)" in verdict.reason


def test_parse_junit_tells_xfail_from_skip() -> None:
    report = (
        b'<testsuite><testcase classname="t" name="a"><skipped type="pytest.xfail" '
        b'message="x"/></testcase><testcase classname="t" name="b"><skipped '
        b'type="pytest.skip" message="s"/></testcase></testsuite>'
    )
    assert parse_junit(report) == {"t::a": "xfailed", "t::b": "skipped"}


@pytest.mark.parametrize("now", ["skipped", "xfailed"])
def test_a_failing_test_skipped_or_xfailed_is_still_failing(now: str) -> None:
    before = run(1, {"t::test_bug": "failed", "t::b": "passed"})
    verdict = judge(
        before, run(0, {"t::test_bug": now, "t::b": "passed"}), diff=DIFF, issue_text=""
    )
    assert not verdict.resolved
    assert verdict.still_failing == ["t::test_bug"]
    assert f"t::test_bug ({now})" in verdict.reason


@pytest.mark.parametrize("now", ["skipped", "xfailed", None])
def test_a_passing_test_skipped_xfailed_or_gone_is_a_regression(now: str | None) -> None:
    before = run(1, {"t::test_bug": "failed", "t::b": "passed"})
    after = {"t::test_bug": "passed", **({"t::b": now} if now else {})}
    verdict = judge(before, run(0, after), diff=DIFF, issue_text="")
    assert not verdict.resolved
    assert verdict.regressions == ["t::b"]
    assert f"t::b ({now or 'missing'})" in verdict.reason


def test_failures_in_the_report_count_whatever_the_exit_status() -> None:
    verdict = judge(
        run(1, {"t::test_bug": "failed"}),
        run(0, {"t::test_bug": "failed"}),
        diff=DIFF,
        issue_text="",
    )
    assert not verdict.resolved
    assert verdict.still_failing == ["t::test_bug"]


def test_skips_the_base_commit_had_stay_as_they_were() -> None:
    before = run(1, {"t::test_bug": "failed", "t::slow": "skipped", "t::old": "xfailed"})
    after = run(0, {"t::test_bug": "passed", "t::slow": "skipped", "t::old": "xfailed"})
    assert judge(before, after, diff=DIFF, issue_text="").resolved


def test_a_test_the_base_commit_skipped_that_fails_now_is_a_new_failure() -> None:
    before = run(1, {"t::test_bug": "failed", "t::slow": "skipped"})
    after = run(1, {"t::test_bug": "passed", "t::slow": "failed"})
    verdict = judge(before, after, diff=DIFF, issue_text="")
    assert not verdict.resolved
    assert "did not fail before" in verdict.reason


def test_no_report_where_the_baseline_had_one_is_not_a_pass() -> None:
    verdict = judge(run(1, {"t::test_bug": "failed"}), run(0, None), diff=DIFF, issue_text="")
    assert not verdict.resolved
    assert "no per-test report" in verdict.reason


def test_every_test_passing_with_a_failing_command_is_not_a_pass() -> None:
    verdict = judge(
        run(0, {"t::a": "passed"}),
        run(2, {"t::a": "passed", "t::new": "passed"}),
        diff=DIFF,
        issue_text="",
    )
    assert not verdict.resolved
    assert "exits 2" in verdict.reason
