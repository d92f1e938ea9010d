"""Asking each ecosystem's test runner for per-test results, by flags and environment
only: the repository's files are never edited for it.

`instrument` turns a test command into the one that is run, with the environment and the
report files to read afterwards; `outcomes` reads what the runners wrote. A runner nobody
asked, or one that wrote nothing readable, leaves the exit status to decide.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from workers.engine.ecosystems import Reporter
from workers.engine.test_reports import (
    go_test_output,
    parse_cargo_test,
    parse_go_test_json,
    parse_jest_json,
    parse_junit,
    record,
    strip_ansi,
)

REPORT_DIR = "/tmp/qwenfix"

PLAIN_OUTPUT = {
    # Output a log file would show: no colours, no progress bars, no prompts.
    "CI": "true",
    "NO_COLOR": "1",
    "FORCE_COLOR": "0",
    "CARGO_TERM_COLOR": "never",
    "npm_config_color": "false",
    "npm_config_progress": "false",
    "PY_COLORS": "0",
}
OFFLINE = {
    # The verdict runs without network: runners that would fetch say so at once instead
    # of hanging on a connection (mvn -o and gradle --offline are in their commands).
    "CARGO_NET_OFFLINE": "true",
    "GOPROXY": "off",
    "npm_config_offline": "true",
}

# `npm test`, `yarn test`, `pnpm test` as a whole command: not followed by arguments of
# the user's own, which a second `--` would turn into test-file patterns.
_PACKAGE_TEST = re.compile(r"(?<![\w./-])((?:npm|yarn|pnpm)(?: run)? test)(?=\s*(?:$|[;&|)\n]))")
_GO_TEST = re.compile(r"(?<![\w./-])go test(?=\s)(?!\s+-json)")
_CARGO_TEST = re.compile(r"(?<![\w./-])cargo test(?=\s|$)(?![^;&|\n]*--no-fail-fast)")
_XML_REPORTS = {
    # Where the JVM builds leave one JUnit XML file per test class, in every module.
    Reporter.SUREFIRE: "*/target/surefire-reports/TEST-*.xml",
    Reporter.GRADLE: "*/build/test-results/*/TEST-*.xml",
}


@dataclass(frozen=True)
class Instrumented:
    command: str
    env: dict[str, str]
    before: str
    """Shell run first: the report directory made, old reports gone."""
    collect: str | None = None
    """Shell run after the command: scattered XML reports gathered into one file."""
    files: dict[Reporter, str] = field(default_factory=dict)
    """The report file each reporter leaves."""


def _package_args(manager: str, args: str) -> str:
    # npm needs `--` before the script's own arguments; yarn and pnpm pass them on.
    return f" -- {args}" if manager.startswith("npm") else f" {args}"


def _with_args(command: str, args: str) -> str:
    def add(m: re.Match[str]) -> str:
        return m.group(1) + _package_args(m.group(1), args)

    return _PACKAGE_TEST.sub(add, command)


def instrument(command: str, reporters: Iterable[Reporter], label: str) -> Instrumented:
    asked = set(reporters)
    env = {**PLAIN_OUTPUT, **OFFLINE, "PYTHONDONTWRITEBYTECODE": "1"}
    files: dict[Reporter, str] = {}
    stem = f"{REPORT_DIR}/{label}"
    # pytest's report is asked for whatever was detected: the environment reaches pytest
    # under tox, nox and make too. -p no:cacheprovider keeps .pytest_cache out of the diff.
    files[Reporter.PYTEST] = f"{stem}.xml"
    env["PYTEST_ADDOPTS"] = f"--junitxml={stem}.xml -p no:cacheprovider"
    if Reporter.NODE_TEST in asked:
        files[Reporter.NODE_TEST] = f"{stem}-node.xml"
        env["NODE_OPTIONS"] = (
            "--test-reporter=spec --test-reporter-destination=stdout "
            f"--test-reporter=junit --test-reporter-destination={stem}-node.xml"
        )
    for reporter, args in (
        (Reporter.JEST, f"--json --outputFile={stem}-jest.json"),
        (Reporter.VITEST, f"--reporter=default --reporter=json --outputFile.json={stem}-jest.json"),
    ):
        if reporter in asked:
            files[reporter] = f"{stem}-jest.json"
            command = _with_args(command, args)
    if Reporter.GO_JSON in asked:
        command = _GO_TEST.sub("go test -json", command)
    if Reporter.CARGO in asked:
        command = _CARGO_TEST.sub("cargo test --no-fail-fast", command)
    before = f"mkdir -p {REPORT_DIR} && rm -f {stem}.xml {stem}-*"
    xml = [pattern for r, pattern in _XML_REPORTS.items() if r in asked]
    collect = None
    if xml:
        files[Reporter.SUREFIRE if Reporter.SUREFIRE in asked else Reporter.GRADLE] = (
            f"{stem}-jvm.xml"
        )
        # Old reports would pass for this run's: gone before it, gathered after it. `*`
        # matches `.` and `/` too, so one pattern finds the root module's and the others'.
        dirs = " -o ".join(f"-path {shlex.quote(p.rsplit('/', 1)[0])}" for p in xml)
        before += f" && find . \\( {dirs} \\) -prune -exec rm -rf {{}} +"
        names = " -o ".join(f"-path {shlex.quote(p)}" for p in xml)
        collect = (
            f"{{ echo '<testsuites>'; find . \\( {names} \\) -print0 | sort -z"
            " | xargs -0 -r sed -e '/^<?xml/d'; echo '</testsuites>'; }"
            f" > {stem}-jvm.xml"
        )
    return Instrumented(command=command, env=env, before=before, collect=collect, files=files)


def outcomes(
    reporters: Iterable[Reporter], output: str, reports: Mapping[Reporter, bytes]
) -> dict[str, str] | None:
    """Every test any runner reported (None: none reported any), ids as each runner names
    them."""
    asked = set(reporters)
    found: list[dict[str, str] | None] = [
        parse_jest_json(data) if reporter in (Reporter.JEST, Reporter.VITEST) else parse_junit(data)
        for reporter, data in reports.items()
    ]
    if Reporter.GO_JSON in asked:
        found.append(parse_go_test_json(output.encode()))
    if Reporter.CARGO in asked:
        found.append(parse_cargo_test(strip_ansi(output)))
    if all(results is None for results in found):
        return None
    merged: dict[str, str] = {}
    for results in found:
        for test, outcome in (results or {}).items():
            record(merged, test, outcome)
    return merged


def readable(reporters: Iterable[Reporter], output: str) -> str:
    """The output as the model and people read it: go's JSON events back to go's text,
    terminal escapes gone."""
    if Reporter.GO_JSON in set(reporters) and parse_go_test_json(output.encode()) is not None:
        output = go_test_output(output.encode())
    return strip_ansi(output)
