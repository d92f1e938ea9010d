"""Per-test outcomes read from Go, Cargo, Jest, Vitest and node's runner, on samples shaped
like what each runner writes."""

from __future__ import annotations

import json

import pytest

from workers.engine.test_reports import (
    go_test_output,
    parse_cargo_test,
    parse_go_test_json,
    parse_jest_json,
    parse_junit,
    strip_ansi,
)


def lines(*events: dict[str, object]) -> bytes:
    # Go writes one compact object a line.
    return b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in events)


T = "2024-05-01T10:00:00.123456Z"
PKG = "example.com/calc"


def ev(
    action: str, test: str | None = None, output: str | None = None, **more: object
) -> dict[str, object]:
    event: dict[str, object] = {"Time": T, "Action": action, "Package": PKG}
    if test is not None:
        event["Test"] = test
    if output is not None:
        event["Output"] = output
    return {**event, **more}


# The events of `go test -json ./...` (the TestEvent struct of cmd/test2json; "start" since
# Go 1.20): a pass, a test whose subtest fails, a skip, then a package with no test files.
GO_RUN = lines(
    ev("start"),
    ev("run", "TestAdd"),
    ev("output", "TestAdd", "=== RUN   TestAdd\n"),
    ev("output", "TestAdd", "--- PASS: TestAdd (0.00s)\n"),
    ev("pass", "TestAdd", Elapsed=0),
    ev("run", "TestDiv"),
    ev("output", "TestDiv", "=== RUN   TestDiv\n"),
    ev("run", "TestDiv/by_zero"),
    ev("output", "TestDiv/by_zero", "=== RUN   TestDiv/by_zero\n"),
    ev("output", "TestDiv/by_zero", "    calc_test.go:21: Div(1, 0) = 0, want an error\n"),
    ev("run", "TestDiv/exact"),
    ev("output", "TestDiv/exact", "=== RUN   TestDiv/exact\n"),
    ev("output", "TestDiv", "--- FAIL: TestDiv (0.00s)\n"),
    ev("output", "TestDiv/by_zero", "    --- FAIL: TestDiv/by_zero (0.00s)\n"),
    ev("fail", "TestDiv/by_zero", Elapsed=0),
    ev("output", "TestDiv/exact", "    --- PASS: TestDiv/exact (0.00s)\n"),
    ev("pass", "TestDiv/exact", Elapsed=0),
    ev("fail", "TestDiv", Elapsed=0),
    ev("run", "TestSlow"),
    ev("output", "TestSlow", "=== RUN   TestSlow\n"),
    ev("output", "TestSlow", "    calc_test.go:30: slow: run with -long\n"),
    ev("output", "TestSlow", "--- SKIP: TestSlow (0.00s)\n"),
    ev("skip", "TestSlow", Elapsed=0),
    ev("output", None, "FAIL\n"),
    ev("output", None, f"FAIL\t{PKG}\t0.002s\n"),
    ev("fail", None, Elapsed=0.002),
    {"Time": T, "Action": "start", "Package": f"{PKG}/cmd"},
    {
        "Time": T,
        "Action": "output",
        "Package": f"{PKG}/cmd",
        "Output": f"?   \t{PKG}/cmd\t[no test files]\n",
    },
    {"Time": T, "Action": "skip", "Package": f"{PKG}/cmd", "Elapsed": 0},
)

# Before Go 1.24 the compiler's errors reach stderr as plain text among the events.
GO_BUILD_FAILED_TEXT = (
    f"# {PKG} [{PKG}.test]\n./calc_test.go:9:2: undefined: Mul\n".encode()
    + lines(
        ev("start"),
        ev("output", None, f"FAIL\t{PKG} [build failed]\n"),
        ev("fail", None, Elapsed=0),
    )
)

# Go 1.24 reports them as build events (`go help buildjson`): ImportPath, no Package, and
# the package's fail event names the build that failed.
GO_BUILD_FAILED_JSON = lines(
    {
        "ImportPath": f"{PKG} [{PKG}.test]",
        "Action": "build-output",
        "Output": f"# {PKG} [{PKG}.test]\n",
    },
    {
        "ImportPath": f"{PKG} [{PKG}.test]",
        "Action": "build-output",
        "Output": "./calc_test.go:9:2: undefined: Mul\n",
    },
    {"ImportPath": f"{PKG} [{PKG}.test]", "Action": "build-fail"},
    ev("start"),
    ev("output", None, f"FAIL\t{PKG} [build failed]\n"),
    ev("fail", None, Elapsed=0, FailedBuild=f"{PKG} [{PKG}.test]"),
)


def test_go_outcomes_with_subtests() -> None:
    assert parse_go_test_json(GO_RUN) == {
        f"{PKG}::TestAdd": "passed",
        f"{PKG}::TestDiv": "failed",
        f"{PKG}::TestDiv/by_zero": "failed",
        f"{PKG}::TestDiv/exact": "passed",
        f"{PKG}::TestSlow": "skipped",
    }


@pytest.mark.parametrize("data", [GO_BUILD_FAILED_TEXT, GO_BUILD_FAILED_JSON])
def test_go_build_failure_is_the_packages_error(data: bytes) -> None:
    assert parse_go_test_json(data) == {f"{PKG}::(build)": "error"}


def test_go_test_reported_twice_keeps_the_failure() -> None:
    # -count=2: the same test runs twice, and a flaky failure is not hidden by a later pass.
    twice = lines(ev("fail", "TestFlaky"), ev("pass", "TestFlaky"))
    assert parse_go_test_json(twice) == {f"{PKG}::TestFlaky": "failed"}


def test_go_package_with_no_tests_gives_an_empty_report() -> None:
    only = lines({"Action": "skip", "Package": PKG, "Elapsed": 0})
    assert parse_go_test_json(only) == {}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        f"ok  \t{PKG}\t0.002s\n".encode(),  # go test without -json
        b'[1, 2]\nnull\n"text"\n',
        b'{"no": "action"}\n',
        b"\xff\xfe garbage",
    ],
)
def test_go_rejects_what_is_not_test2json(data: bytes) -> None:
    assert parse_go_test_json(data) is None


def test_go_output_is_the_text_go_test_prints() -> None:
    text = go_test_output(GO_RUN)
    assert text.startswith("=== RUN   TestAdd\n--- PASS: TestAdd (0.00s)\n=== RUN   TestDiv\n")
    assert "    --- FAIL: TestDiv/by_zero (0.00s)\n" in text
    assert text.endswith(f"FAIL\t{PKG}\t0.002s\n?   \t{PKG}/cmd\t[no test files]\n")
    assert '"Action"' not in text


@pytest.mark.parametrize("data", [GO_BUILD_FAILED_TEXT, GO_BUILD_FAILED_JSON])
def test_go_output_keeps_the_build_errors(data: bytes) -> None:
    assert go_test_output(data) == (
        f"# {PKG} [{PKG}.test]\n./calc_test.go:9:2: undefined: Mul\nFAIL\t{PKG} [build failed]\n"
    )


# libtest's pretty format (library/test/src/formatters/pretty.rs): `test NAME ... RESULT`,
# with ` - should panic` after the name of a should_panic test, `ignored, REASON` for
# #[ignore = "..."]; cargo stops at the first failing binary, so no doc-tests here.
CARGO_FAILED = """\
   Compiling adder v0.1.0 (/workspace)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 0.52s
     Running unittests src/lib.rs (target/debug/deps/adder-1b2c3d4e5f6a7b8c)

running 4 tests
test tests::adds ... ok
test tests::overflow_panics - should panic ... ok
test tests::slow ... ignored, needs a network
test tests::subtracts ... FAILED

failures:

---- tests::subtracts stdout ----

thread 'tests::subtracts' panicked at src/lib.rs:21:9:
assertion `left == right` failed
  left: 1
 right: 2
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    tests::subtracts

test result: FAILED. 2 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s

error: test failed, to rerun pass `--lib`
"""

# A passing run through an integration test binary and the doc-tests, coloured as on a
# terminal: cargo's bold green status words, libtest's terminfo colours (setaf, then sgr0,
# which is ESC ( B ESC [ m on xterm).
G, R = "\x1b[32m", "\x1b(B\x1b[m"
CARGO_COLOURED = f"""\
\x1b[1m\x1b[92m    Finished\x1b[0m `test` profile [unoptimized + debuginfo] target(s) in 0.04s
\x1b[1m\x1b[92m     Running\x1b[0m unittests src/lib.rs (target/debug/deps/adder-1b2c3d4e5f6a7b8c)

running 1 test
test tests::adds ... {G}ok{R}

test result: {G}ok{R}. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

\x1b[1m\x1b[92m     Running\x1b[0m tests/integration.rs \
(target/debug/deps/integration-0a9b8c7d6e5f4a3b)

running 2 tests
test adds_from_outside ... {G}ok{R}
test tests::adds ... {G}ok{R}

test result: {G}ok{R}. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

\x1b[1m\x1b[92m   Doc-tests\x1b[0m adder

running 3 tests
test src/lib.rs - add (line 3) ... {G}ok{R}
test src/lib.rs - checked_div (line 12) - compile fail ... {G}ok{R}
test src/lib.rs - Calc::new (line 30) ... \x1b[33mignored{R}

test result: {G}ok{R}. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.31s

"""

CARGO_COMPILE_ERROR = """\
   Compiling adder v0.1.0 (/workspace)
error[E0425]: cannot find function `ad` in this scope
  --> src/lib.rs:10:9
   |
10 |         ad(1, 2)
   |         ^^ help: a function with a similar name exists: `add`

For more information about this error, try `rustc --explain E0425`.
error: could not compile `adder` (lib test) due to 1 previous error
"""


def test_cargo_outcomes() -> None:
    assert parse_cargo_test(CARGO_FAILED) == {
        "tests::adds": "passed",
        "tests::overflow_panics": "passed",
        "tests::slow": "skipped",
        "tests::subtracts": "failed",
    }


def test_cargo_doc_tests_and_colours() -> None:
    assert parse_cargo_test(CARGO_COLOURED) == {
        "tests::adds": "passed",
        "adds_from_outside": "passed",
        "doctest::src/lib.rs - add (line 3)": "passed",
        "doctest::src/lib.rs - checked_div (line 12)": "passed",
        "doctest::src/lib.rs - Calc::new (line 30)": "skipped",
    }


def test_cargo_ignoring_a_should_panic_test_keeps_its_name() -> None:
    # libtest prints no mode for an ignored test.
    before = parse_cargo_test("test tests::overflow_panics - should panic ... ok\n")
    after = parse_cargo_test("test tests::overflow_panics ... ignored\n")
    assert before is not None and after is not None
    assert before.keys() == after.keys()


def test_cargo_time_limit_failure_is_a_failure() -> None:
    line = "test tests::slow ... FAILED (time limit exceeded) <62.001s>\n"
    assert parse_cargo_test(line) == {"tests::slow": "failed"}


@pytest.mark.parametrize(
    "text",
    [
        CARGO_COMPILE_ERROR,
        "",
        "running 3 tests\n..F\n",  # the terse format of `cargo test -q` names no passes
        "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n",
        "test tests::adds has been running for over 60 seconds\n",
    ],
)
def test_cargo_without_test_lines_is_none(text: str) -> None:
    assert parse_cargo_test(text) is None


# Jest's `--json --outputFile=F`: AggregatedResult through formatTestResults
# (packages/jest-test-result/src/formatTestResults.ts); a file whose run threw
# (testExecError) has no assertions, coverage {} and the error as its message.
JEST_REPORT = {
    "numFailedTestSuites": 2,
    "numFailedTests": 1,
    "numPassedTestSuites": 0,
    "numPassedTests": 2,
    "numPendingTestSuites": 0,
    "numPendingTests": 1,
    "numRuntimeErrorTestSuites": 1,
    "numTodoTests": 1,
    "numTotalTestSuites": 2,
    "numTotalTests": 5,
    "openHandles": [],
    "snapshot": {"added": 0, "failure": False, "matched": 0, "total": 0, "unmatched": 0},
    "startTime": 1714557600000,
    "success": False,
    "testResults": [
        {
            "assertionResults": [
                {
                    "ancestorTitles": ["math", "add"],
                    "duration": 2,
                    "failureMessages": [],
                    "fullName": "math add adds two numbers",
                    "location": None,
                    "status": "passed",
                    "title": "adds two numbers",
                },
                {
                    "ancestorTitles": ["math"],
                    "duration": 3,
                    "failureMessages": [
                        "Error: expect(received).toBe(expected) // Object.is equality\n\n"
                        "Expected: 2\nReceived: 1\n"
                        "    at Object.toBe (/workspace/src/math.test.js:12:23)"
                    ],
                    "fullName": "math subtracts",
                    "location": None,
                    "status": "failed",
                    "title": "subtracts",
                },
                {
                    "ancestorTitles": ["math"],
                    "duration": None,
                    "failureMessages": [],
                    "fullName": "math divides by zero",
                    "location": None,
                    "status": "pending",
                    "title": "divides by zero",
                },
                {
                    "ancestorTitles": ["math"],
                    "duration": None,
                    "failureMessages": [],
                    "fullName": "math multiplies",
                    "location": None,
                    "status": "todo",
                    "title": "multiplies",
                },
                {
                    "ancestorTitles": [],
                    "duration": 1,
                    "failureMessages": [],
                    "fullName": "rounds",
                    "location": None,
                    "status": "passed",
                    "title": "rounds",
                },
            ],
            "endTime": 1714557601200,
            "message": "\x1b[1m\x1b[31m  \x1b[1m● \x1b[22m\x1b[1mmath \u203a subtracts"
            "\x1b[39m\x1b[22m\n\n...",
            "name": "/workspace/src/math.test.js",
            "startTime": 1714557600400,
            "status": "failed",
            "summary": "",
        },
        {
            "assertionResults": [],
            "coverage": {},
            "endTime": 1714557601300,
            "message": "  ● Test suite failed to run\n\n"
            "    Cannot find module './missing' from 'src/broken.test.js'",
            "name": "/workspace/src/broken.test.js",
            "startTime": 1714557601300,
            "status": "failed",
            "summary": "",
        },
    ],
    "wasInterrupted": False,
}

# Vitest's `--reporter=json` (packages/vitest/src/node/reporters/json.ts): Jest's shape,
# statuses skipped/todo, fullName joined from the titles, a file that failed to load with no
# assertions and its first error as the message.
VITEST_REPORT = {
    "numTotalTestSuites": 3,
    "numPassedTestSuites": 1,
    "numFailedTestSuites": 2,
    "numPendingTestSuites": 0,
    "numTotalTests": 3,
    "numPassedTests": 1,
    "numFailedTests": 0,
    "numPendingTests": 1,
    "numTodoTests": 1,
    "snapshot": {"added": 0, "failure": False, "matched": 0, "total": 0},
    "startTime": 1714557600000,
    "success": False,
    "testResults": [
        {
            "assertionResults": [
                {
                    "ancestorTitles": ["parse"],
                    "fullName": "parse reads numbers",
                    "status": "passed",
                    "title": "reads numbers",
                    "duration": 1.21,
                    "failureMessages": [],
                    "meta": {},
                },
                {
                    "ancestorTitles": ["parse"],
                    "fullName": "parse reads dates",
                    "status": "skipped",
                    "title": "reads dates",
                    "failureMessages": [],
                    "meta": {},
                },
                {
                    "ancestorTitles": ["parse"],
                    "fullName": "parse reads money",
                    "status": "todo",
                    "title": "reads money",
                    "failureMessages": [],
                    "meta": {},
                },
            ],
            "startTime": 1714557600100,
            "endTime": 1714557600101.21,
            "status": "passed",
            "message": "",
            "name": "/workspace/test/parse.test.ts",
        },
        {
            "assertionResults": [],
            "startTime": 1714557600000,
            "endTime": 1714557600000,
            "status": "failed",
            "message": "Failed to load url ./missing (resolved id: ./missing) in "
            "/workspace/test/broken.test.ts. Does the file exist?",
            "name": "/workspace/test/broken.test.ts",
        },
    ],
}


def test_jest_outcomes_and_a_suite_that_failed_to_run() -> None:
    assert parse_jest_json(json.dumps(JEST_REPORT).encode()) == {
        "src/math.test.js::math add adds two numbers": "passed",
        "src/math.test.js::math subtracts": "failed",
        "src/math.test.js::math divides by zero": "skipped",
        "src/math.test.js::math multiplies": "skipped",
        "src/math.test.js::rounds": "passed",
        "src/broken.test.js::(suite)": "error",
    }


def test_vitest_report_reads_the_same() -> None:
    assert parse_jest_json(json.dumps(VITEST_REPORT).encode()) == {
        "test/parse.test.ts::parse reads numbers": "passed",
        "test/parse.test.ts::parse reads dates": "skipped",
        "test/parse.test.ts::parse reads money": "skipped",
        "test/broken.test.ts::(suite)": "error",
    }


def test_jest_file_failed_outside_its_tests_is_an_error() -> None:
    # An afterAll hook threw: every test passed, the file failed.
    file = {
        "name": "/workspace/a.test.js",
        "status": "failed",
        "message": "afterAll threw",
        "assertionResults": [{"ancestorTitles": [], "title": "works", "status": "passed"}],
    }
    report = json.dumps({"testResults": [file]}).encode()
    assert parse_jest_json(report) == {"a.test.js::works": "passed", "a.test.js::(suite)": "error"}


def test_jest_name_from_titles_when_full_name_is_missing() -> None:
    file = {
        "name": "/elsewhere/a.test.js",
        "status": "passed",
        "assertionResults": [{"ancestorTitles": ["a", "b"], "title": "c", "status": "disabled"}],
    }
    report = json.dumps({"testResults": [file]}).encode()
    assert parse_jest_json(report) == {"/elsewhere/a.test.js::a b c": "skipped"}


def test_jest_run_with_no_test_files_is_an_empty_report() -> None:
    assert parse_jest_json(b'{"numTotalTests": 0, "success": true, "testResults": []}') == {}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"testResults": {}}',
        b'{"testResults": [{"title": "x"}]}',  # testResults of some other tool
        b'{"results": []}',
    ],
)
def test_jest_rejects_what_is_not_its_report(data: bytes) -> None:
    assert parse_jest_json(data) is None


# `node --test --test-reporter=junit` (lib/internal/test_runner/reporter/junit.js): tabs,
# a describe block as a <testsuite> with counts, nested ones inside it, every test a
# <testcase classname="test">, a failure's message both as the case's attribute and in a
# <failure type="testCodeFailure"> holding util.inspect of the error, skip and todo as
# <skipped type=...>, and the run's diagnostics as comments.
NODE_JUNIT = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites>
\t<testsuite name="math" time="0.003215" disabled="0" errors="0" tests="3" \
failures="1" skipped="1" hostname="runner">
\t\t<testcase name="adds" time="0.000512" classname="test"/>
\t\t<testcase name="subtracts" time="0.001033" classname="test" \
failure="Expected values to be strictly equal:&#10;&#10;1 !== 2&#10;">
\t\t\t<failure type="testCodeFailure" \
message="Expected values to be strictly equal:&#10;&#10;1 !== 2">
[Error [ERR_TEST_FAILURE]: Expected values to be strictly equal:

1 !== 2
] {
  code: 'ERR_TEST_FAILURE',
  failureType: 'testCodeFailure',
  cause: AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:

  1 !== 2

      at TestContext.&lt;anonymous> (/workspace/test/math.test.js:9:12) {
    generatedMessage: true,
    code: 'ERR_ASSERTION',
    actual: 1,
    expected: 2,
    operator: 'strictEqual'
  }
}
\t\t\t</failure>
\t\t</testcase>
\t\t<testsuite name="division" time="0.000201" disabled="0" errors="0" tests="1" \
failures="0" skipped="1" hostname="runner">
\t\t\t<testcase name="divides" time="0.000101" classname="test">
\t\t\t\t<skipped type="skipped" message="true"/>
\t\t\t</testcase>
\t\t</testsuite>
\t</testsuite>
\t<testcase name="top level" time="0.000301" classname="test"/>
\t<testcase name="later" time="0.000051" classname="test">
\t\t<skipped type="todo" message="true"/>
\t</testcase>
\t<!-- tests 5 -->
\t<!-- suites 2 -->
\t<!-- pass 2 -->
\t<!-- fail 1 -->
\t<!-- cancelled 0 -->
\t<!-- skipped 1 -->
\t<!-- todo 1 -->
\t<!-- duration_ms 45.2 -->
</testsuites>
"""


def test_node_junit_needs_only_parse_junit() -> None:
    assert parse_junit(NODE_JUNIT) == {
        "test::adds": "passed",
        "test::subtracts": "failed",
        "test::divides": "skipped",
        "test::top level": "passed",
        "test::later": "skipped",
    }


# Newer node names the describe path in classname and adds the file
# (test/fixtures/test-runner/output/junit_classname_hierarchy.snapshot in nodejs/node).
NODE_JUNIT_HIERARCHY = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites>
\t<testsuite name="Math" time="0.001" disabled="0" errors="0" tests="1" failures="0" \
skipped="0" timestamp="2025-05-01T10:00:00.000Z" hostname="runner">
\t\t<testsuite name="Addition" time="0.001" disabled="0" errors="0" tests="1" failures="0" \
skipped="0" timestamp="2025-05-01T10:00:00.000Z" hostname="runner">
\t\t\t<testcase name="adds positive numbers" time="0.000212" classname="Math.Addition" \
file="/workspace/test/math.test.js"/>
\t\t</testsuite>
\t</testsuite>
\t<testcase name="standalone test" time="0.000105" classname="test" \
file="/workspace/test/math.test.js"/>
\t<!-- tests 2 -->
</testsuites>
"""


def test_node_junit_with_the_describe_path_as_classname() -> None:
    assert parse_junit(NODE_JUNIT_HIERARCHY) == {
        "Math.Addition::adds positive numbers": "passed",
        "test::standalone test": "passed",
    }


def test_node_failing_todo_does_not_fail() -> None:
    # Node reports a todo (or skipped) test that throws with both children, and counts it
    # as todo: the run still exits 0 (junit_reporter.snapshot, "sync fail todo").
    case = b"""<testsuites>
\t<testcase name="sync fail todo" time="0.0001" classname="test" failure="thrown">
\t\t<skipped type="todo" message="true"/>
\t\t<failure type="testCodeFailure" message="thrown">[Error [ERR_TEST_FAILURE]: thrown]</failure>
\t</testcase>
</testsuites>"""
    assert parse_junit(case) == {"test::sync fail todo": "skipped"}


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("\x1b[1m\x1b[31mFAIL\x1b[39m\x1b[22m src/a.test.js", "FAIL src/a.test.js"),
        ("ok\x1b(B\x1b[m", "ok"),
        ("\x1b]0;cargo test\x07running", "running"),  # a window title
        ("\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\", "link"),  # a hyperlink
        ("\x1b[2K\x1b[1Gprogress", "progress"),
        ("plain [brackets] stay", "plain [brackets] stay"),
    ],
)
def test_strip_ansi(text: str, plain: str) -> None:
    assert strip_ansi(text) == plain
