"""The harness, not the model, decides success: run the tests and judge the change.

Per-test results come from JUnit XML where the runner writes it (pytest, through
PYTEST_ADDOPTS, so it works under tox and make too); otherwise only the exit code counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from defusedxml import ElementTree
from pydantic import BaseModel, Field

from sandbox import Sandbox

JUNIT_DIR = "/tmp/qwenfix"
OUTPUT_TAIL = 4000
PASSING = frozenset({"passed", "skipped"})
_JUNIT_NOTICE = re.compile(r"^-* generated xml file: /tmp/qwenfix/\S+ -*\n", re.M)


class TestRun(BaseModel):
    __test__ = False  # not a pytest test class

    command: str
    exit_code: int | None
    timed_out: bool = False
    duration_s: float = 0.0
    output_tail: str = ""
    tests: dict[str, str] | None = None
    """test id -> passed | failed | error | skipped, when the runner reported them."""

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
        return sorted(t for t, o in (self.tests or {}).items() if o not in PASSING)


def run_tests(sb: Sandbox, command: str, *, timeout: float, label: str) -> TestRun:
    junit = f"{JUNIT_DIR}/{label}.xml"
    env = {
        # -p no:cacheprovider keeps .pytest_cache out of the workspace and the diff.
        "PYTEST_ADDOPTS": f"--junitxml={junit} -p no:cacheprovider",
        "PYTHONDONTWRITEBYTECODE": "1",
        "CI": "true",
    }
    sb.run(f"mkdir -p {JUNIT_DIR} && rm -f {junit}", timeout=30)
    result = sb.run(command, timeout=timeout, env=env)
    tests: dict[str, str] | None = None
    try:
        tests = parse_junit(sb.read_file(junit))
    except (FileNotFoundError, IsADirectoryError):
        tests = None
    # pytest announces the report file we asked for; that line is ours, not the project's.
    output = _JUNIT_NOTICE.sub("", result.output)
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


def parse_junit(data: bytes) -> dict[str, str] | None:
    """test id (`classname::name`) -> outcome. None when the file is not JUnit XML."""
    try:
        root = ElementTree.fromstring(data)
    except Exception:  # defusedxml raises several unrelated types for hostile or broken XML
        return None
    results: dict[str, str] = {}
    for case in root.iter("testcase"):
        name = case.get("name") or "?"
        classname = case.get("classname") or ""
        test_id = f"{classname}::{name}" if classname else name
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "error"
                break
            if child.tag == "skipped":
                outcome = "skipped"
        # A test reported twice (setup error after a pass) keeps the worse outcome.
        if results.get(test_id, "passed") in PASSING:
            results[test_id] = outcome
    return results


class Verdict(BaseModel):
    resolved: bool
    reason: str
    red_baseline: bool = False
    regressions: list[str] = Field(default_factory=list)
    still_failing: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)


_TEST_NAME = re.compile(r"\btest_?\w+", re.I)


def _named_in(issue_text: str, test_id: str) -> bool:
    name = test_id.rsplit("::", 1)[-1].split("[", 1)[0]
    return bool(name) and name in set(_TEST_NAME.findall(issue_text))


def judge(before: TestRun, after: TestRun, *, diff: str, issue_text: str) -> Verdict:
    """Resolved: a non-empty diff, no test that passed before fails (or vanished), and the
    suite passes; or, on a suite that was red before, no new failure and the tests the
    agent added or the issue names pass."""
    red = not before.passed
    if not diff.strip():
        return Verdict(resolved=False, reason="the change is empty", red_baseline=red)
    regressions = _regressions(before.tests, after.tests)
    removed = sorted(set(before.tests or {}) - set(after.tests or {})) \
        if before.tests is not None and after.tests is not None else []
    removed = [t for t in removed if t not in regressions]
    if removed:
        return Verdict(
            resolved=False, red_baseline=red, regressions=removed,
            reason=f"{len(removed)} failing test(s) were removed instead of fixed",
        )
    if regressions:
        return Verdict(
            resolved=False, red_baseline=red, regressions=regressions,
            reason=f"{len(regressions)} test(s) that passed before fail or are gone now",
        )
    if after.passed:
        return Verdict(resolved=True, red_baseline=red, reason="the test suite passes")
    still = after.failing()
    if after.timed_out or not red or after.tests is None or before.tests is None:
        return Verdict(resolved=False, red_baseline=red, still_failing=still,
                       reason=f"the test suite {after.summary()}")
    targets = sorted(
        t for t in after.tests
        if t not in before.tests or _named_in(issue_text, t)
    )
    failing_targets = [t for t in targets if after.tests[t] not in PASSING]
    if targets and not failing_targets:
        return Verdict(
            resolved=True, red_baseline=True, still_failing=still, targets=targets,
            reason=(
                "the suite was already red before the change; no new failure, and the "
                f"{len(targets)} test(s) added or named in the issue pass "
                f"({len(still)} failure(s) predate the change)"
            ),
        )
    return Verdict(
        resolved=False, red_baseline=True, still_failing=still, targets=targets,
        reason=(
            f"the test suite {after.summary()}; it was red before the change, and "
            + ("no added or named test proves the fix" if not targets
               else f"{len(failing_targets)} test(s) added or named in the issue still fail")
        ),
    )


def _regressions(
    before: Mapping[str, str] | None, after: Mapping[str, str] | None
) -> list[str]:
    if before is None or after is None:
        return []
    return sorted(
        t for t, o in before.items()
        if o == "passed" and after.get(t) not in PASSING
    )
