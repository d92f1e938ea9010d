"""`run_fix` on a small repository of each ecosystem, with no .qwenfix.yml: detection picks
the image, setup and test command; the verdict reads the runner's per-test results; a
correct fix is resolved, a model that claims success without a change or writes a wrong
fix is refused. Real Docker and git, the scripted model over real HTTP; the Jest project
installs Jest from the npm registry during setup."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.docker_backend import DockerBackend
from tests.helpers import call, fix, make_repo, step
from workers.engine.agent.trajectory import read_trajectory
from workers.settings import WorkerSettings

NODE_TEST = {
    "package.json": json.dumps(
        {"name": "calc", "version": "1.0.0", "scripts": {"test": "node --test"}}, indent=2
    ),
    "calc.js": "exports.double = (x) => x + x + 1;\n",
    "test/calc.test.js": (
        "const test = require('node:test');\n"
        "const assert = require('node:assert');\n"
        "const { double } = require('../calc');\n\n"
        "test('double doubles', () => assert.strictEqual(double(2), 4));\n"
        "test('double is a function', () => assert.strictEqual(typeof double, 'function'));\n"
    ),
}
JEST = {
    "package.json": json.dumps(
        {
            "name": "calc",
            "version": "1.0.0",
            "scripts": {"test": "jest"},
            "devDependencies": {"jest": "29.7.0"},
        },
        indent=2,
    ),
    "calc.js": "exports.double = (x) => x + x + 1;\n",
    "calc.test.js": (
        "const { double } = require('./calc');\n\n"
        "describe('double', () => {\n"
        "  test('doubles', () => expect(double(2)).toBe(4));\n"
        "  test('is a function', () => expect(typeof double).toBe('function'));\n"
        "});\n"
    ),
}
GO = {
    "go.mod": "module example.com/calc\n\ngo 1.22\n",
    "calc.go": "package calc\n\nfunc Double(x int) int {\n\treturn x + x + 1\n}\n",
    "calc_test.go": (
        'package calc\n\nimport "testing"\n\n'
        "func TestDouble(t *testing.T) {\n"
        '\tif got := Double(2); got != 4 {\n\t\tt.Fatalf("Double(2) = %d, want 4", got)\n\t}\n}\n\n'
        "func TestDoubleIsInt(t *testing.T) {\n\t_ = Double(1)\n}\n"
    ),
}
RUST = {
    "Cargo.toml": '[package]\nname = "calc"\nversion = "0.1.0"\nedition = "2021"\n',
    "src/lib.rs": (
        "pub fn double(x: i64) -> i64 {\n    x + x + 1\n}\n\n"
        "#[cfg(test)]\nmod tests {\n    use super::*;\n\n"
        "    #[test]\n    fn doubles() {\n        assert_eq!(double(2), 4);\n    }\n\n"
        "    #[test]\n    fn runs() {\n        let _ = double(1);\n    }\n}\n"
    ),
}

# (files, image, the file the bug is in, the failing test's id, the passing test's id)
CASES: dict[str, tuple[dict[str, str], str, str, str, str]] = {
    "node-test": (
        NODE_TEST,
        "node",
        "calc.js",
        "test::double doubles",
        "test::double is a function",
    ),
    "jest": (
        JEST,
        "node",
        "calc.js",
        "calc.test.js::double doubles",
        "calc.test.js::double is a function",
    ),
    "go": (
        GO,
        "go",
        "calc.go",
        "example.com/calc::TestDouble",
        "example.com/calc::TestDoubleIsInt",
    ),
    "rust": (RUST, "rust", "src/lib.rs", "tests::doubles", "tests::runs"),
}
ISSUE = "double() is wrong: double(2) gives 5, it should give 4."


def _fix_steps(path: str) -> list[dict[str, Any]]:
    return [
        step(call("view", path=path)),
        step(call("str_replace", path=path, old_str="x + x + 1", new_str="x + x")),
        step(call("run_tests")),
        step(call("submit", summary="double() added one too many.", title="Fix double()")),
    ]


@pytest.fixture
def eco_settings(settings: WorkerSettings) -> WorkerSettings:
    # Every job of a repository after its first starts from the setup snapshot.
    settings.setup_cache = True
    settings.test_timeout_s = 300
    settings.setup_timeout_s = 600
    return settings


def _events(result: Any, kind: str) -> list[dict[str, Any]]:
    return [e for e in read_trajectory(Path(result.trajectory or "")) if e["event"] == kind]


@pytest.mark.parametrize("case", list(CASES))
def test_each_ecosystem_is_fixed_and_judged_test_by_test(
    case: str,
    tmp_path: Path,
    scripted_model: Any,
    backend: DockerBackend,
    eco_settings: WorkerSettings,
    ecosystem_image: Any,
) -> None:
    files, ecosystems, path, failing, passing = CASES[case]
    image = ecosystem_image(ecosystems)
    repo = make_repo(tmp_path / "repo", dict(files))

    result = fix(repo, scripted_model(_fix_steps(path)), backend, eco_settings, issue=ISSUE)
    assert result.status == "resolved", result.reason
    assert result.tests_before is not None
    assert result.tests_before.failing == [failing]
    assert result.tests_after is not None and result.tests_after.exit_code == 0
    environment = _events(result, "environment")[0]
    assert environment["image"] == image
    assert environment["versions"][ecosystems] not in ("", "not installed")
    before = _events(result, "tests_before")[0]
    assert before["tests"] == {failing: "failed", passing: "passed"}
    assert "\x1b[" not in before["output_tail"]
    assert "-" + files[path].splitlines()[0 if case != "go" else 3] in result.diff or result.diff

    # The model claims success without changing anything: refused, from the snapshot.
    liar = scripted_model([step(call("submit", summary="Fixed."))] * 6)
    lied = fix(repo, liar, backend, eco_settings, issue=ISSUE)
    assert lied.status == "unresolved"
    assert _events(lied, "setup_reused"), "the second job set up again"
    assert not _events(lied, "setup")

    # A wrong fix: the failing test still fails, named in what the model is told.
    wrong = [
        step(call("str_replace", path=path, old_str="x + x + 1", new_str="x + x + 2")),
        *[step(call("submit", summary="Fixed it."))] * 5,
    ]
    server = scripted_model(wrong)
    refused = fix(repo, server, backend, eco_settings, issue=ISSUE)
    assert refused.status == "unresolved"
    replies = [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    assert any(failing in r for r in replies), replies
