"""Each runner asked for its per-test results by flags and environment only."""

from __future__ import annotations

import pytest

from workers.engine.ecosystems import Reporter
from workers.engine.reporters import instrument, outcomes, readable


@pytest.mark.parametrize(
    ("command", "reporter", "run"),
    [
        ("npm test", Reporter.JEST, "npm test -- --json --outputFile=/tmp/qwenfix/b-jest.json"),
        ("yarn test", Reporter.JEST, "yarn test --json --outputFile=/tmp/qwenfix/b-jest.json"),
        (
            "pnpm test",
            Reporter.VITEST,
            "pnpm test --reporter=default --reporter=json"
            " --outputFile.json=/tmp/qwenfix/b-jest.json",
        ),
        ("go test ./...", Reporter.GO_JSON, "go test -json ./..."),
        ("go test -json ./...", Reporter.GO_JSON, "go test -json ./..."),
        ("cargo test", Reporter.CARGO, "cargo test --no-fail-fast"),
        ("cargo test --workspace", Reporter.CARGO, "cargo test --no-fail-fast --workspace"),
        ("cargo test --no-fail-fast", Reporter.CARGO, "cargo test --no-fail-fast"),
        ("mvn -B -o test", Reporter.SUREFIRE, "mvn -B -o test"),
        # The user's own arguments to the script: left alone, the exit status decides.
        ("npm test -- --ci", Reporter.JEST, "npm test -- --ci"),
        # A command of the user's that is not the runner's is not touched either.
        ("make test", Reporter.GO_JSON, "make test"),
    ],
)
def test_commands_get_the_runners_own_flags(command: str, reporter: Reporter, run: str) -> None:
    assert instrument(command, [reporter], "b").command == run


def test_every_part_of_a_joined_command_is_instrumented() -> None:
    joined = "status=0; npm test || status=$?; go test ./... || status=$?; exit $status"
    plan = instrument(joined, [Reporter.JEST, Reporter.GO_JSON], "x")
    assert plan.command == (
        "status=0; npm test -- --json --outputFile=/tmp/qwenfix/x-jest.json || status=$?; "
        "go test -json ./... || status=$?; exit $status"
    )


def test_environment_asks_for_plain_offline_output() -> None:
    plan = instrument("node --test", [Reporter.NODE_TEST], "before")
    assert plan.env["CI"] == "true" and plan.env["NO_COLOR"] == "1"
    assert plan.env["CARGO_NET_OFFLINE"] == "true" and plan.env["GOPROXY"] == "off"
    assert (
        "--test-reporter=junit --test-reporter-destination=/tmp/qwenfix/before-node.xml"
        in (plan.env["NODE_OPTIONS"])
    )
    assert "--junitxml=/tmp/qwenfix/before.xml" in plan.env["PYTEST_ADDOPTS"]
    assert plan.files == {
        Reporter.PYTEST: "/tmp/qwenfix/before.xml",
        Reporter.NODE_TEST: "/tmp/qwenfix/before-node.xml",
    }
    # The old reports of the same label are gone before the run.
    assert "rm -f /tmp/qwenfix/before.xml /tmp/qwenfix/before-*" in plan.before


def test_jvm_reports_are_cleared_before_and_gathered_after() -> None:
    plan = instrument("mvn -B -o test", [Reporter.SUREFIRE], "v")
    assert "-path '*/target/surefire-reports' \\) -prune -exec rm -rf {} +" in plan.before
    assert plan.collect is not None and plan.collect.endswith("> /tmp/qwenfix/v-jvm.xml")
    assert plan.files[Reporter.SUREFIRE] == "/tmp/qwenfix/v-jvm.xml"
    gathered = (
        b"<testsuites>\n"
        b'<testsuite name="calc.CalcTest"><testcase name="doubles" classname="calc.CalcTest">'
        b'<failure message="expected 4"/></testcase>'
        b'<testcase name="runs" classname="calc.CalcTest"/></testsuite>\n'
        b"</testsuites>\n"
    )
    assert outcomes([Reporter.SUREFIRE], "", {Reporter.SUREFIRE: gathered}) == {
        "calc.CalcTest::doubles": "failed",
        "calc.CalcTest::runs": "passed",
    }


GO_EVENTS = (
    '{"Action":"start","Package":"example.com/calc"}\n'
    '{"Action":"run","Package":"example.com/calc","Test":"TestDouble"}\n'
    '{"Action":"output","Package":"example.com/calc","Test":"TestDouble",'
    '"Output":"    calc_test.go:6: Double(2) = 5, want 4\\n"}\n'
    '{"Action":"fail","Package":"example.com/calc","Test":"TestDouble","Elapsed":0}\n'
    '{"Action":"pass","Package":"example.com/calc","Test":"TestOther","Elapsed":0}\n'
    '{"Action":"fail","Package":"example.com/calc","Elapsed":0.01}\n'
)


def test_stdout_runners_are_read_from_the_output_and_shown_as_text() -> None:
    assert outcomes([Reporter.GO_JSON], GO_EVENTS, {}) == {
        "example.com/calc::TestDouble": "failed",
        "example.com/calc::TestOther": "passed",
    }
    shown = readable([Reporter.GO_JSON], GO_EVENTS)
    assert "Double(2) = 5, want 4" in shown and '"Action"' not in shown
    cargo = "running 1 test\ntest tests::doubles ... \x1b[31mFAILED\x1b[0m\n"
    assert outcomes([Reporter.CARGO], cargo, {}) == {"tests::doubles": "failed"}
    assert readable([Reporter.CARGO], cargo) == "running 1 test\ntest tests::doubles ... FAILED\n"


def test_nothing_reported_leaves_the_exit_status_to_decide() -> None:
    assert outcomes([Reporter.GO_JSON, Reporter.CARGO], "go: command not found\n", {}) is None
    assert outcomes([Reporter.JEST], "", {Reporter.JEST: b"not json"}) is None


def test_a_test_reported_by_two_runners_keeps_the_worse_outcome() -> None:
    junit = b'<testsuite><testcase classname="a" name="t"/></testsuite>'
    jest = (
        b'{"testResults":[{"name":"/workspace/a","assertionResults":'
        b'[{"title":"t","ancestorTitles":[],"status":"failed"}]}]}'
    )
    found = outcomes(
        [Reporter.NODE_TEST, Reporter.JEST], "", {Reporter.NODE_TEST: junit, Reporter.JEST: jest}
    )
    assert found == {"a::t": "failed"}
