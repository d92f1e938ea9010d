"""Per-test outcomes from each runner's report: JUnit XML (pytest, node --test, Surefire,
Gradle), Go's test2json events, Cargo's libtest lines, Jest's and Vitest's JSON.

Each parser maps test id -> passed | failed | error | skipped, as `verify.parse_junit` does,
and returns None when the data is not in its format, so a caller can try them in turn and
fall back to the exit status. They are pure: the caller reads the report or the output.

Node's built-in runner needs no parser of its own: `node --test --test-reporter=junit` writes
JUnit XML whose describe blocks are nested `<testsuite>` elements, and `verify.parse_junit`
reads every `<testcase>` wherever it is nested. Node 20 sets `classname="test"` on every case,
so same-named tests in two describe blocks or files share the id `test::<name>` and keep the
worse outcome; recent releases put the describe path there (`Math.Addition::adds`).
A todo or skipped test that throws carries both `<skipped>` and `<failure>`, and node does
not count it as failing, while parse_junit does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from defusedxml import ElementTree

from sandbox.protocol import WORKDIR

FAILED = frozenset({"failed", "error"})

_ANSI = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC (titles, hyperlinks), ended by BEL or ST
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # CSI (colours, cursor movement)
    r"|\x1b[ -/]*[0-~]"  # the other escapes: terminfo's sgr0 sends ESC ( B
)


def strip_ansi(text: str) -> str:
    """`text` without terminal escape sequences, as a log file would show it."""
    return _ANSI.sub("", text)


def record(results: dict[str, str], test_id: str, outcome: str) -> None:
    """Into `results`; a test reported twice (-count=2, a retried test, a setup error
    after a pass, two runners) keeps the worse outcome."""
    if results.get(test_id, "passed") not in FAILED:
        results[test_id] = outcome


# --- JUnit XML (pytest, node --test, Surefire, Gradle) --------------------------------------


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
        skipped = case.find("skipped")
        if skipped is not None:
            # node marks a todo test that throws with both, and does not count it failing.
            outcome = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
        else:
            for child in case:
                if child.tag in ("failure", "error"):
                    outcome = "failed" if child.tag == "failure" else "error"
                    break
        record(results, test_id, outcome)
    return results


# --- go test -json -------------------------------------------------------------------------

_GO_OUTCOMES = {"pass": "passed", "fail": "failed", "skip": "skipped", "bench": "passed"}


def _json_lines(data: bytes) -> Iterator[tuple[str, dict[str, object] | None]]:
    """Each line with its JSON object, or None for the plain text between them."""
    # bytes.splitlines splits on \n and \r only: str.splitlines would also split on
    # characters Go leaves unescaped inside JSON strings (U+0085).
    for raw in data.splitlines(keepends=True):
        line = raw.decode("utf-8", errors="replace")
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        yield line, event if isinstance(event, dict) else None


def parse_go_test_json(data: bytes) -> dict[str, str] | None:
    """`go test -json` (test2json events) -> `package::TestName` (subtests as `Test/sub`).

    A package that failed without running a test (it did not build, or `go vet` failed)
    gives `package::(build)` -> error. The go command may print build errors as plain text
    among the events; such lines are skipped."""
    results: dict[str, str] = {}
    seen_events = False
    tested: set[str] = set()
    failed: set[str] = set()
    for _, event in _json_lines(data):
        if event is None or not isinstance(event.get("Action"), str):
            continue
        seen_events = True
        action, package, test = event["Action"], event.get("Package"), event.get("Test")
        # Go 1.24's build events (build-output, build-fail) carry ImportPath, not Package.
        if not isinstance(package, str):
            continue
        if isinstance(test, str) and test:
            tested.add(package)
            outcome = _GO_OUTCOMES.get(str(action))
            if outcome is not None:
                record(results, f"{package}::{test}", outcome)
        elif action == "fail":
            failed.add(package)
    for package in sorted(failed - tested):
        record(results, f"{package}::(build)", "error")
    return results if seen_events else None


def go_test_output(data: bytes) -> str:
    """The text `go test` without -json would have shown: the events' Output, in order, and
    the plain lines among them."""
    parts: list[str] = []
    for line, event in _json_lines(data):
        if event is None:
            parts.append(line)
        elif isinstance(output := event.get("Output"), str):
            parts.append(output)
    return "".join(parts)


# --- cargo test (libtest's pretty format) --------------------------------------------------

_CARGO_TEST = re.compile(r"^test (?P<name>.+?) \.\.\. (?P<result>ok|FAILED|ignored|bench)\b")
# libtest prints a mode after the name, except when the test is ignored: stripped, so that
# ignoring a test does not rename it.
_CARGO_MODE = re.compile(r" - (?:should panic|compile fail|compile)$")
_CARGO_DOC_TESTS = re.compile(r"^\s*Doc-tests \S")
_CARGO_RUNNING = re.compile(r"^\s*Running \S")
_CARGO_OUTCOMES = {"ok": "passed", "FAILED": "failed", "ignored": "skipped", "bench": "passed"}


def parse_cargo_test(text: str) -> dict[str, str] | None:
    """`cargo test`'s console output -> the test's name as libtest prints it (`tests::adds`;
    doc-tests as `doctest::src/lib.rs - add (line 3)`).

    None when no test line is there: the build failed, or the output is libtest's terse
    format (`cargo test -q`), which names only the failures."""
    results: dict[str, str] = {}
    doc_tests = False
    for line in strip_ansi(text).splitlines():
        if _CARGO_DOC_TESTS.match(line):
            doc_tests = True
        elif _CARGO_RUNNING.match(line):
            doc_tests = False
        elif match := _CARGO_TEST.match(line):
            name = _CARGO_MODE.sub("", match["name"].rstrip())
            test_id = f"doctest::{name}" if doc_tests else name
            record(results, test_id, _CARGO_OUTCOMES[match["result"]])
    return results or None


# --- Jest and Vitest JSON --------------------------------------------------------------------

_JEST_OUTCOMES = {"passed": "passed", "failed": "failed"}
"""Anything else (pending, todo, skipped, disabled, focused) did not run to a pass."""


def _jest_name(assertion: dict[str, object]) -> str:
    full_name = assertion.get("fullName")
    if isinstance(full_name, str) and full_name:
        return full_name
    titles = assertion.get("ancestorTitles")
    parts = [t for t in titles if isinstance(t, str)] if isinstance(titles, list) else []
    return " ".join([*parts, str(assertion.get("title") or "?")])


def _jest_file(file: dict[str, object], results: dict[str, str]) -> None:
    name = file.get("name")
    path = name.removeprefix(f"{WORKDIR}/") if isinstance(name, str) else "?"
    assertions = file.get("assertionResults")
    any_failed = False
    for assertion in assertions if isinstance(assertions, list) else []:
        if not isinstance(assertion, dict):
            continue
        outcome = _JEST_OUTCOMES.get(str(assertion.get("status")), "skipped")
        any_failed = any_failed or outcome == "failed"
        record(results, f"{path}::{_jest_name(assertion)}", outcome)
    # A file fails with no failing test when it could not run (a syntax or import error) or
    # a hook outside the tests threw: the file itself is the error.
    if file.get("status") == "failed" and not any_failed:
        record(results, f"{path}::(suite)", "error")


def parse_jest_json(data: bytes) -> dict[str, str] | None:
    """Jest's `--json --outputFile=F` report, or Vitest's `--reporter=json`, which copies its
    shape -> `file::full name` (the file relative to the checkout).

    A test file that failed outside its tests gives `file::(suite)` -> error."""
    try:
        report = json.loads(data)
    except ValueError:
        return None
    files = report.get("testResults") if isinstance(report, dict) else None
    if not isinstance(files, list):
        return None
    entries = [f for f in files if isinstance(f, dict) and "assertionResults" in f]
    if files and not entries:
        return None
    results: dict[str, str] = {}
    for file in entries:
        _jest_file(file, results)
    return results
