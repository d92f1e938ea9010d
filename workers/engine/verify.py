"""The harness, not the model, decides success: run the tests and judge the change.

Per-test results come from each runner's own report, asked for by flags and environment
(reporters.py: pytest's JUnit XML through PYTEST_ADDOPTS, so it works under tox and make
too; go test -json, libtest's lines, node's JUnit, Jest and Vitest JSON, Surefire and
Gradle XML); otherwise only the exit code counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, Field

from sandbox import Sandbox
from workers.engine.ecosystems import Reporter
from workers.engine.reporters import instrument, outcomes, readable
from workers.engine.test_reports import FAILED

OUTPUT_TAIL = 4000
NOT_RUN = frozenset({"skipped", "xfailed"})
"""Outcomes that prove nothing either way: a skipped or xfailed test did not pass."""
_JUNIT_NOTICE = re.compile(r"^-* generated xml file: /tmp/qwenfix/\S+ -*\n", re.M)


class TestRun(BaseModel):
    __test__ = False  # not a pytest test class

    command: str
    exit_code: int | None
    timed_out: bool = False
    duration_s: float = 0.0
    output_tail: str = ""
    tests: dict[str, str] | None = None
    """test id -> passed | failed | error | skipped | xfailed, when the runner reported
    them."""

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def summary(self) -> str:
        if self.timed_out:
            return "timed out"
        state = "passed" if self.passed else f"failed (exit {self.exit_code})"
        if self.tests is None:
            return state
        counts: dict[str, int] = {}
        for outcome in self.tests.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        detail = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        return f"{state}: {detail}" if detail else state

    def failing(self) -> list[str]:
        return sorted(t for t, o in (self.tests or {}).items() if o in FAILED)


def run_tests(
    sb: Sandbox,
    command: str,
    *,
    timeout: float,
    label: str,
    reporters: Iterable[Reporter] = (),
) -> TestRun:
    """Run the test command with each runner asked for its per-test results
    (reporters.py: flags and environment only); the exit status decides without them."""
    asked = tuple(reporters)
    plan = instrument(command, asked, label)
    # Runners that report on stdout (go test -json, libtest) need all of it, not a tail.
    whole = bool({Reporter.GO_JSON, Reporter.CARGO} & set(asked))
    # One round trip: the report directory made, old reports gone, then the command.
    result = sb.run(
        f"{plan.before}\n{plan.command}",
        timeout=timeout,
        env=plan.env,
        max_output_bytes=50_000_000 if whole else 1_000_000,
    )
    if plan.collect is not None:
        sb.run(plan.collect, timeout=120)
    reports: dict[Reporter, bytes] = {}
    for reporter, path in plan.files.items():
        try:
            reports[reporter] = sb.read_file(path)
        except (FileNotFoundError, IsADirectoryError):
            continue
    tests = outcomes(asked, result.output, reports)
    # pytest announces the report file we asked for; that line is ours, not the project's.
    output = _JUNIT_NOTICE.sub("", readable(asked, result.output))
    tail = output[-OUTPUT_TAIL:]
    if result.timed_out:
        tail += f"\n[qwenfix: the test command was killed after {timeout:g}s]"
    return TestRun(
        command=command,
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        duration_s=result.duration_s,
        output_tail=tail,
        tests=tests,
    )


class Ranking(BaseModel):
    """Each test's outcome after the change, ranked against the baseline's."""

    regressions: list[str] = Field(default_factory=list)
    """Passed before; failed, errored, skipped, xfailed or absent now."""
    still_failing: list[str] = Field(default_factory=list)
    """Failed before and did not pass now (skipped, xfailed, deselected or absent counts)."""
    new_failures: list[str] = Field(default_factory=list)
    """Fail now, and did not fail before: new tests, or tests the base commit skipped."""
    missing: list[str] = Field(default_factory=list)
    """In the baseline's report, not in this one."""
    now: dict[str, str] = Field(default_factory=dict)
    """What each regressed or still-failing test is now (`missing` when absent)."""


def rank(before: Mapping[str, str], after: Mapping[str, str]) -> Ranking:
    ranking = Ranking(missing=sorted(set(before) - set(after)))
    for test, outcome in sorted(before.items()):
        now = after.get(test, "missing")
        if outcome == "passed" and now != "passed":
            ranking.regressions.append(test)
            ranking.now[test] = now
        elif outcome in FAILED and now != "passed":
            ranking.still_failing.append(test)
            ranking.now[test] = now
    ranking.new_failures = sorted(
        t
        for t, o in after.items()
        if o in FAILED and before.get(t) not in FAILED and before.get(t) != "passed"
    )
    return ranking


class Verdict(BaseModel):
    resolved: bool
    reason: str
    red_baseline: bool = False
    regressions: list[str] = Field(default_factory=list)
    still_failing: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)


_TEST_NAME = re.compile(r"\btest_?\w+", re.I)


def _named_in(issue_text: str, test_id: str) -> bool:
    name = test_id.rsplit("::", 1)[-1].split("[", 1)[0]
    return bool(name) and name in set(_TEST_NAME.findall(issue_text))


def _listed(tests: list[str], ranking: Ranking, limit: int = 5) -> str:
    shown = [f"{t} ({ranking.now[t]})" if t in ranking.now else t for t in tests[:limit]]
    more = f" and {len(tests) - limit} more" if len(tests) > limit else ""
    return ", ".join(shown) + more


def judge(before: TestRun, after: TestRun, *, diff: str, issue_text: str) -> Verdict:
    """Rank one test run after the change against the baseline.

    With per-test results, they decide and the exit status cannot override them: a test
    that failed before must pass now (skipped, xfailed, deselected or absent is still
    failing), a test that passed before must still pass, and nothing may fail that did not
    fail before. Then the suite passes when the command also exits 0; or, on a suite that
    was already red, when the tests the change adds or the issue names pass. Without
    per-test results, the exit status decides."""
    red = not before.passed or bool(before.failing())
    if not diff.strip():
        return Verdict(resolved=False, reason="the change is empty", red_baseline=red)
    if after.timed_out:
        return Verdict(resolved=False, red_baseline=red, reason="the tests timed out")
    if before.tests is not None and after.tests is None:
        return Verdict(
            resolved=False,
            red_baseline=red,
            reason=(
                f"the tests wrote no per-test report ({after.summary()}), though the base "
                "commit's run did: something stopped the test runner from reporting"
            ),
        )
    if before.tests is None or after.tests is None:
        if after.passed:
            return Verdict(
                resolved=True,
                red_baseline=red,
                reason="the test command exits 0 (it reports no per-test results)",
            )
        return Verdict(resolved=False, red_baseline=red, reason=f"the test suite {after.summary()}")
    ranking = rank(before.tests, after.tests)
    ranked = Verdict(resolved=False, reason="", red_baseline=red, missing=ranking.missing)

    def verdict(resolved: bool, reason: str, **found: list[str]) -> Verdict:
        return ranked.model_copy(update={"resolved": resolved, "reason": reason, **found})

    if ranking.regressions:
        return verdict(
            False,
            f"{len(ranking.regressions)} test(s) that passed before do not "
            f"pass now: {_listed(ranking.regressions, ranking)}",
            regressions=ranking.regressions,
        )
    if ranking.new_failures:
        return verdict(
            False,
            f"{len(ranking.new_failures)} test(s) fail that did not fail "
            f"before: {_listed(ranking.new_failures, ranking)}",
            regressions=ranking.new_failures,
        )
    still = ranking.still_failing
    gone = [t for t in still if ranking.now[t] not in FAILED]
    if not still and after.passed:
        return verdict(True, "the test suite passes")
    if not still and before.passed:
        return verdict(False, f"every test passes, but the test command exits {after.exit_code}")
    targets = sorted(
        t
        for t in after.tests
        if (t not in before.tests or _named_in(issue_text, t)) and t not in gone
    )
    failing_targets = [t for t in targets if after.tests[t] != "passed"]
    if gone:
        return verdict(
            False,
            f"{len(gone)} test(s) that failed before still do not pass: "
            "skipped, xfailed, deselected or removed instead of fixed: "
            f"{_listed(gone, ranking)}",
            still_failing=still,
            targets=targets,
        )
    if targets and not failing_targets:
        return verdict(
            True,
            "the suite was already red before the change; no new failure, "
            f"and the {len(targets)} test(s) added or named in the issue pass "
            f"({len(still)} failure(s) predate the change)",
            still_failing=still,
            targets=targets,
        )
    return verdict(
        False,
        f"the test suite {after.summary()}; it was red before the change, "
        "and "
        + (
            "no added or named test proves the fix"
            if not targets
            else f"{len(failing_targets)} test(s) added or named in the issue still fail"
        ),
        still_failing=still,
        targets=targets,
    )
