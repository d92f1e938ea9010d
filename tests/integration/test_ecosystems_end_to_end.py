"""`run_fix` on a small repository of each ecosystem, with no .qwenfix.yml: detection picks
the image, setup and test command; the verdict reads the runner's per-test results; a
correct fix is resolved, a model that claims success without a change or writes a wrong
fix is refused. Real Docker and git, the scripted model over real HTTP; the Jest project
installs Jest from the npm registry during setup."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sandbox.docker_backend import DockerBackend
from tests.helpers import call, cli_env, fix, make_repo, step
from workers.engine.agent.trajectory import read_trajectory
from workers.settings import WorkerSettings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "languages"


def example(name: str) -> dict[str, str]:
    """examples/languages/NAME: one bug, one failing test, no .qwenfix.yml."""
    root = EXAMPLES / name
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


# (image, the file the bug is in, the failing test's id, the passing test's id)
CASES: dict[str, tuple[str, str, str, str]] = {
    "node-test": (
        "node",
        "calc.js",
        "test::double doubles",
        "test::double is a function",
    ),
    "jest": (
        "node",
        "calc.js",
        "calc.test.js::double doubles",
        "calc.test.js::double is a function",
    ),
    "go": (
        "go",
        "calc.go",
        "example.com/calc::TestDouble",
        "example.com/calc::TestDoubleIsInt",
    ),
    "rust": ("rust", "src/lib.rs", "tests::doubles", "tests::runs"),
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
    files = example(case)
    ecosystems, path, failing, passing = CASES[case]
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
    buggy = next(line for line in files[path].splitlines() if "x + x + 1" in line)
    assert f"-{buggy}\n+{buggy.replace('x + x + 1', 'x + x')}\n" in result.diff

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


def test_qwenfix_fix_on_a_go_repository_says_where_it_runs(
    tmp_path: Path, scripted_model: Any, settings: WorkerSettings, ecosystem_image: Any
) -> None:
    """The command a user types, with no .qwenfix.yml: the run's progress names the image,
    the toolchain and the version the repository asks for."""
    image = ecosystem_image("go")
    repo = make_repo(tmp_path / "repo", example("go"))
    server = scripted_model(_fix_steps("calc.go"))
    env = cli_env(
        QWENFIX_LLM_BASE_URL=server.base_url,
        QWENFIX_SANDBOX_IMAGE=settings.sandbox_image,
        QWENFIX_TRAJECTORY_DIR=str(tmp_path / "traj"),
        QWENFIX_SETUP_CACHE="false",
        HOME=str(tmp_path),
    )
    done = subprocess.run(
        ["qwenfix", "fix", str(repo), "--issue", ISSUE, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["status"] == "resolved"
    assert out["tests_before"]["failing"] == ["example.com/calc::TestDouble"]
    assert f"sandbox image {image} (detected (go))" in done.stderr
    assert "environment: Go: go version go1." in done.stderr
    assert "the repository asks for 1.22 (go.mod go)" in done.stderr
