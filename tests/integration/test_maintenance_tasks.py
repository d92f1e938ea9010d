"""Each maintenance task end to end on the fake GitHub (real HTTP, git over smart HTTP),
in Docker sandboxes, with the scripted model: what it opens, updates, or leaves alone."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.contract.db import Job, make_engine, migrate
from bot.contract.job import JobKind, Trigger
from bot.contract.store import JobStore
from bot.embedded import ThreadedServer
from sandbox.docker_backend import DockerBackend
from tests.fakes.github import FakeGitHub
from tests.helpers import BUGGY_REPO, FIX_STEPS, call, git, make_repo, step, wheel
from workers.engine.llm.client import OpenAICompatibleModel
from workers.github.app_auth import AppCredentials, GitHubApp
from workers.github.forge import STATUS_MARKER
from workers.jobs.context import JobContext
from workers.jobs.maintenance import PERMISSIONS, run_maintenance
from workers.settings import WorkerSettings

REPO = "octo-org/upkeep"
MAINTAIN_ALL = (
    "maintenance:\n"
    "  - task: fix-failing-tests\n    schedule: '0 4 * * *'\n"
    "  - task: update-dependencies\n    schedule: '0 5 * * 1'\n"
    "  - task: lint-fix\n    command: python tools/lint.py\n"
    "    fix: python tools/lint.py --fix\n"
    "  - task: custom\n    name: changelog\n"
    "    prompt: Add a CHANGELOG.md that says the project exists.\n"
    "  - task: repair-dependency-prs\n"
)
TESTS_CONFIG = "test: python -m pytest -q\n"


class Upkeep:
    """One repository on the fake GitHub, and a way to run maintenance jobs on it."""

    def __init__(
        self,
        tmp: Path,
        files: dict[str, str | bytes],
        settings: WorkerSettings,
        backend: DockerBackend,
        scripted: Callable[..., Any],
    ) -> None:
        self.tmp, self.settings, self.backend, self.scripted = tmp, settings, backend, scripted
        self.fake = FakeGitHub()
        self.source = make_repo(tmp / "source", files)
        self.fake.add_repo(
            REPO, installation_id=42, source=self.source, collaborators={"octocat": "admin"}
        )
        self.server = ThreadedServer(self.fake.asgi()).__enter__()
        self.fake.base_url = self.server.url
        self.app = GitHubApp(
            AppCredentials.load(
                app_id=self.fake.app_id,
                private_key=SecretStr(self.fake.private_key_pem),
                private_key_file=None,
                api_url=self.server.url,
            )
        )
        engine = make_engine(f"sqlite:///{tmp / 'jobs.db'}")
        migrate(engine)
        self.jobs = JobStore(engine)
        settings.bot_login = self.fake.bot_login
        settings.github_app_id = self.fake.app_id
        self.model: Any = None

    def close(self) -> None:
        self.server.__exit__()
        self.fake.close()

    def run(
        self,
        task: str,
        steps: list[dict[str, Any]] | None = None,
        *,
        event: str = "schedule",
        done_today: int = 0,
        number: int | None = None,
        sender: str = "",
    ) -> tuple[str, str]:
        job_view, _ = self.jobs.create(
            f"test:{uuid.uuid4().hex}",
            event,
            Trigger(
                kind=JobKind.MAINTENANCE,
                repo=REPO,
                number=number,
                sender=sender,
                installation_id=42,
                task=task,
            ),
        )
        job = self.jobs.record(job_view.id)
        assert isinstance(job, Job)
        self.model = self.scripted(steps or [])
        with OpenAICompatibleModel(
            base_url=self.model.base_url, model="qwen", max_retries=1, backoff_s=0.01
        ) as model:
            ctx = JobContext.open(
                job,
                app=self.app,
                model=model,
                backend=self.backend,
                settings=self.settings,
                jobs=self.jobs,
                permissions=PERMISSIONS,
            )
            return run_maintenance(ctx, done_today=done_today)

    def git(self, *args: str) -> str:
        bare = self.fake.repos[REPO].bare
        return subprocess.run(
            ["git", "-C", str(bare), *args], capture_output=True, text=True, check=True
        ).stdout

    def push_to_main(self, path: str, content: str, message: str) -> None:
        work = self.tmp / f"work-{uuid.uuid4().hex[:6]}"
        git(self.tmp, "clone", "-q", str(self.fake.repos[REPO].bare), str(work))
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(content)
        git(work, "add", "-A")
        git(work, "commit", "-qm", message)
        git(work, "push", "-q", "origin", "HEAD:main")

    def pulls(self) -> list[dict[str, Any]]:
        return self.fake.open_pulls(REPO)

    def bot_comments(self) -> list[dict[str, Any]]:
        return [c for c in self.fake.comments.values() if c["author"] == self.fake.bot_login]


@pytest.fixture
def upkeep(
    tmp_path: Path,
    settings: WorkerSettings,
    backend: DockerBackend,
    scripted_model: Callable[..., Any],
) -> Iterator[Callable[..., Upkeep]]:
    made: list[Upkeep] = []
    settings.cache_dir = tmp_path / "cache"

    def build(files: dict[str, str | bytes]) -> Upkeep:
        made.append(Upkeep(tmp_path, files, settings, backend, scripted_model))
        return made[0]

    yield build
    for u in made:
        u.close()


def with_config(files: dict[str, str | bytes], extra: str = MAINTAIN_ALL) -> dict[str, str | bytes]:
    return {**files, ".qwenfix.yml": TESTS_CONFIG + extra}


def test_failing_tests_get_one_pull_request_kept_current(upkeep: Callable[..., Upkeep]) -> None:
    u = upkeep(with_config(BUGGY_REPO))
    status, reason = u.run("fix-failing-tests", FIX_STEPS)
    assert status == "resolved", reason
    [pull] = u.pulls()
    assert pull["head"] == "qwenfix/maintenance/fix-failing-tests"
    assert pull["title"] == "Fix the failing tests on main"
    base = u.git("rev-parse", "main").strip()
    assert f"<!-- qwenfix:maintenance task=fix-failing-tests base={base} -->" in pull["body"]
    assert "schedule `0 4 * * *` UTC" in pull["body"]
    assert "2 failed → passed: 2 passed" in pull["body"]  # the evidence, as for fixes
    assert "return x * 2" in u.git("show", f"{pull['head']}:mathlib.py")
    prompt = u.model.requests[0]["messages"][1]["content"]
    assert "the test suite fails on the default branch `main`" in prompt
    assert u.bot_comments() == []  # a scheduled run says nothing outside its pull request

    # Nothing changed on main: the open pull request is current; no model, no sandbox.
    status, reason = u.run("fix-failing-tests", FIX_STEPS)
    assert status == "skipped" and "is up to date with main" in reason
    assert u.model.requests == []

    # main moved on (still failing): the same pull request is updated, not a second one.
    u.push_to_main("README.md", "Doubles numbers.\n", "Add a README")
    status, reason = u.run("fix-failing-tests", FIX_STEPS)
    assert status == "resolved" and reason.startswith("updated ")
    [again] = u.pulls()
    assert again["number"] == pull["number"]
    new_base = u.git("rev-parse", "main").strip()
    assert f"base={new_base}" in again["body"]
    assert u.git("rev-parse", f"{pull['head']}~1").strip() == new_base

    # Someone fixed main themselves: the pull request is no longer needed and is closed.
    u.push_to_main("mathlib.py", "def double(x):\n    return 2 * x\n", "Fix double")
    status, reason = u.run("fix-failing-tests", FIX_STEPS)
    assert status == "nothing-to-do" and "closed" in reason
    assert u.pulls() == []
    [note] = u.bot_comments()
    assert note["number"] == pull["number"] and "no longer" not in note["body"]
    assert "qwenfix closed this: nothing to do: the test suite passes" in note["body"]


def test_a_green_repository_is_left_alone(upkeep: Callable[..., Upkeep]) -> None:
    files = with_config({**BUGGY_REPO, "mathlib.py": "def double(x):\n    return x * 2\n"})
    u = upkeep(files)
    status, reason = u.run("fix-failing-tests", FIX_STEPS)
    assert (status, reason) == (
        "nothing-to-do",
        "nothing to do: the test suite passes (passed: 2 passed)",
    )
    assert u.model.requests == [] and u.pulls() == [] and u.bot_comments() == []
    assert u.git("for-each-ref", "refs/heads/qwenfix/") == ""


def test_the_daily_cap_holds_scheduled_runs_back(upkeep: Callable[..., Upkeep]) -> None:
    u = upkeep(with_config(BUGGY_REPO))
    cap = u.settings.maintenance_max_prs_per_day
    status, reason = u.run("fix-failing-tests", FIX_STEPS, done_today=cap)
    assert status == "skipped" and f"daily cap of {cap}" in reason
    assert u.pulls() == [] and u.model.requests == []


TINYLIB_10 = "def shout(text):\n    return text.upper() + '!'\n"
TINYLIB_11 = "def yell(text):\n    return text.upper() + '!'\n"  # renamed: breaks callers
DEPENDENT_APP: dict[str, str | bytes] = {
    "requirements.txt": "--no-index\n--find-links wheels\ntinylib==1.0.0  # the greeter\n",
    "wheels/tinylib-1.0.0-py3-none-any.whl": wheel("tinylib", "1.0.0", TINYLIB_10),
    "wheels/tinylib-1.1.0-py3-none-any.whl": wheel("tinylib", "1.1.0", TINYLIB_11),
    "wheels/tinylib-2.0.0-py3-none-any.whl": wheel("tinylib", "2.0.0", "BROKEN = True\n"),
    "app.py": "import tinylib\n\n\ndef greet(name):\n    return tinylib.shout(f'hello {name}')\n",
    "tests/test_app.py": "from app import greet\n\n\ndef test_greet():\n"
    "    assert greet('bob') == 'HELLO BOB!'\n",
    "conftest.py": "",
}
REPAIR_STEPS = [
    step(call("str_replace", path="app.py", old_str="tinylib.shout(", new_str="tinylib.yell(")),
    step(call("run_tests")),
    step(
        call("submit", summary="tinylib 1.1 renamed shout() to yell().", title="Use tinylib.yell")
    ),
]


def test_dependencies_are_upgraded_within_their_major_and_the_breakage_repaired(
    upkeep: Callable[..., Upkeep],
) -> None:
    u = upkeep(
        with_config(DEPENDENT_APP, "setup: pip install -r requirements.txt\n" + MAINTAIN_ALL)
    )
    status, reason = u.run("update-dependencies", REPAIR_STEPS)
    assert status == "resolved", reason
    [pull] = u.pulls()
    assert pull["title"] == "Update 1 dependency"
    assert "| `tinylib` | 1.0.0 | 1.1.0 | `requirements.txt` |" in pull["body"]
    head = pull["head"]
    assert "tinylib==1.1.0  # the greeter" in u.git("show", f"{head}:requirements.txt")
    assert "tinylib.yell(" in u.git("show", f"{head}:app.py")
    # The model was told what changed, and the tests' failure with it.
    prompt = u.model.requests[0]["messages"][1]["content"]
    assert "tinylib 1.0.0 -> 1.1.0 (requirements.txt)" in prompt
    assert "AttributeError" in prompt


def test_upgrades_that_pass_need_no_model_and_nothing_new_means_nothing(
    upkeep: Callable[..., Upkeep],
) -> None:
    compatible = {
        **DEPENDENT_APP,
        "wheels/tinylib-1.1.0-py3-none-any.whl": wheel("tinylib", "1.1.0", TINYLIB_10 + TINYLIB_11),
    }
    u = upkeep(with_config(compatible, "setup: pip install -r requirements.txt\n" + MAINTAIN_ALL))
    status, reason = u.run("update-dependencies")
    assert status == "resolved", reason
    assert u.model.requests == []
    [pull] = u.pulls()
    assert "No code change was needed" in pull["body"]

    u.push_to_main(
        "requirements.txt", "--no-index\n--find-links wheels\ntinylib==1.1.0\n", "Take the upgrade"
    )
    status, reason = u.run("update-dependencies")
    assert status == "nothing-to-do" and "nothing to upgrade" in reason


LINTER = """import pathlib
import sys

fix = "--fix" in sys.argv
problems = []
for path in sorted(pathlib.Path(".").rglob("*.py")):
    if "tools" in path.parts:
        continue
    lines = path.read_text().splitlines()
    if fix:
        lines = [line.rstrip() for line in lines]
        path.write_text("\\n".join(lines) + "\\n")
    for number, line in enumerate(lines, 1):
        if line != line.rstrip():
            problems.append(f"{path}:{number}: W291 trailing whitespace")
        if "print(" in line:
            problems.append(f"{path}:{number}: T201 print() left in the code")
print("\\n".join(problems))
sys.exit(1 if problems and not fix else 0)
"""


def test_lint_findings_are_fixed_by_the_fixer_then_the_model(upkeep: Callable[..., Upkeep]) -> None:
    files = with_config(
        {
            **BUGGY_REPO,
            "tools/lint.py": LINTER,
            "mathlib.py": "def double(x):   \n    print('debug', x)\n    return x * 2\n",
        }
    )
    u = upkeep(files)
    steps = [
        step(call("str_replace", path="mathlib.py", old_str="    print('debug', x)\n", new_str="")),
        step(call("bash", command="python tools/lint.py")),
        step(call("submit", summary="Removed a debugging print.", title="Lint")),
    ]
    status, reason = u.run("lint-fix", steps)
    assert status == "resolved", reason
    [pull] = u.pulls()
    assert pull["title"] == "Fix what the linter reports"
    assert u.git("show", f"{pull['head']}:mathlib.py") == "def double(x):\n    return x * 2\n"
    prompt = u.model.requests[0]["messages"][1]["content"]
    assert "mathlib.py:2: T201 print() left in the code" in prompt
    assert "mathlib.py:1: W291" not in prompt  # the fixer did that part


def test_a_custom_task_runs_its_prompt(upkeep: Callable[..., Upkeep]) -> None:
    # Defined in .github/qwenfix.yml, the other place the config may live.
    files = with_config({**BUGGY_REPO, "mathlib.py": "def double(x):\n    return x * 2\n"})
    files[".github/qwenfix.yml"] = files.pop(".qwenfix.yml")
    u = upkeep(files)
    steps = [
        step(call("write_file", path="CHANGELOG.md", content="# Changelog\n\n- Born.\n")),
        step(call("submit", summary="Added a changelog.", title="Add a changelog")),
    ]
    status, reason = u.run("changelog", steps)
    assert status == "resolved", reason
    [pull] = u.pulls()
    assert pull["head"] == "qwenfix/maintenance/changelog"
    assert pull["title"] == "Add a CHANGELOG.md that says the project exists."
    assert "# Changelog" in u.git("show", f"{pull['head']}:CHANGELOG.md")


def test_failing_dependency_bot_pull_requests_get_a_repairing_commit(
    upkeep: Callable[..., Upkeep],
) -> None:
    u = upkeep(
        with_config(DEPENDENT_APP, "setup: pip install -r requirements.txt\n" + MAINTAIN_ALL)
    )
    # Dependabot's branch: the pin moved, nothing else.
    work = u.tmp / "dependabot"
    git(u.tmp, "clone", "-q", str(u.fake.repos[REPO].bare), str(work))
    git(work, "checkout", "-qb", "dependabot/pip/tinylib-1.1.0")
    (work / "requirements.txt").write_text("--no-index\n--find-links wheels\ntinylib==1.1.0\n")
    subprocess.run(
        [
            "git",
            "-C",
            str(work),
            "-c",
            "user.name=dependabot[bot]",
            "-c",
            "user.email=49699333+dependabot[bot]@users.noreply.github.com",
            "commit",
            "-qam",
            "Bump tinylib from 1.0.0 to 1.1.0",
        ],
        check=True,
    )
    git(work, "push", "-q", "origin", "dependabot/pip/tinylib-1.1.0")
    bump = u.git("rev-parse", "dependabot/pip/tinylib-1.1.0").strip()
    number = u.fake.add_pull(
        REPO,
        head="dependabot/pip/tinylib-1.1.0",
        base="main",
        title="Bump tinylib from 1.0.0 to 1.1.0",
        author="dependabot[bot]",
    )
    u.fake.add_check_run(
        REPO,
        head_sha=bump,
        name="CI / tests",
        conclusion="failure",
        output={
            "title": "1 failed",
            "summary": "AttributeError: module 'tinylib' has no attribute 'shout'",
        },
    )
    # A person's pull request with failing checks is not ours to touch.
    git(work, "checkout", "-qb", "feature", "main")
    (work / "app.py").write_text("broken(\n")
    git(work, "commit", "-qam", "WIP")
    git(work, "push", "-q", "origin", "feature")
    u.fake.add_pull(REPO, head="feature", base="main", title="WIP", author="octocat")
    u.fake.add_check_run(
        REPO,
        head_sha=u.git("rev-parse", "feature").strip(),
        name="CI",
        conclusion="failure",
        output={"title": "broken"},
    )

    status, reason = u.run("repair-dependency-prs", REPAIR_STEPS)
    assert status == "resolved" and reason.startswith("pushed ") and f"#{number}" in reason
    log = u.git("log", "--format=%an|%s", "-2", "dependabot/pip/tinylib-1.1.0").splitlines()
    assert log[0].startswith(u.fake.bot_login + "|")
    assert log[1] == "dependabot[bot]|Bump tinylib from 1.0.0 to 1.1.0"  # fast-forward
    assert "tinylib.yell(" in u.git("show", "dependabot/pip/tinylib-1.1.0:app.py")
    assert "AttributeError" in u.model.requests[0]["messages"][1]["content"]
    [status_comment] = u.bot_comments()
    assert status_comment["number"] == number and STATUS_MARKER in status_comment["body"]
    assert "✅ qwenfix pushed" in status_comment["body"]
    assert u.git("log", "-1", "--format=%s", "feature").strip() == "WIP"  # untouched
    assert len(u.pulls()) == 2  # no pull request of its own

    # Each head commit is tried once: even when the checks of qwenfix's own commit fail,
    # the next run leaves it to a person (the status comment says what was done).
    u.fake.add_check_run(
        REPO,
        head_sha=u.git("rev-parse", "dependabot/pip/tinylib-1.1.0").strip(),
        name="CI / tests",
        conclusion="failure",
        output={"title": "flaky"},
    )
    status, reason = u.run("repair-dependency-prs", REPAIR_STEPS)
    assert status == "nothing-to-do" and u.model.requests == []


def test_asked_in_a_comment_the_answer_goes_there(upkeep: Callable[..., Upkeep]) -> None:
    u = upkeep(with_config({**BUGGY_REPO, "mathlib.py": "def double(x):\n    return x * 2\n"}))
    u.fake.add_issue(REPO, 3, "Housekeeping")
    status, _ = u.run("fix-failing-tests", event="issue_comment", number=3, sender="octocat")
    assert status == "nothing-to-do"
    [comment] = u.bot_comments()
    assert comment["number"] == 3 and "nothing to do: the test suite passes" in comment["body"]

    status, reason = u.run("tidy-up", event="issue_comment", number=3, sender="octocat")
    assert status == "error" and "there is no maintenance task 'tidy-up'" in reason
    assert "changelog" in reason and "lint-fix" in reason
    [comment] = u.bot_comments()  # the same status comment, now with the error
    assert "there is no maintenance task 'tidy-up'" in comment["body"]


def test_a_broken_config_is_an_error_that_says_what_to_change(
    upkeep: Callable[..., Upkeep],
) -> None:
    u = upkeep(with_config(BUGGY_REPO, "maintenance:\n  - task: custom\n"))
    status, reason = u.run("fix-failing-tests", FIX_STEPS)
    assert status == "error" and "a custom task needs a prompt" in reason
    assert u.pulls() == []


@pytest.fixture
def npm_registry() -> Iterator[Any]:
    from tests.npm_registry import NpmRegistry

    registry = NpmRegistry()
    yield registry
    registry.close()


def test_npm_dependencies_are_updated_within_their_ranges(
    tmp_path: Path, settings: WorkerSettings, scripted_model: Callable[..., Any], npm_registry: Any
) -> None:
    """package.json through npm itself; the bubblewrap sandbox, whose programs are the
    host's: this machine has Node.js and npm, the Docker image does not."""
    import shutil

    from sandbox.local_backend import LocalBackend

    if shutil.which("npm") is None:
        pytest.skip("npm is not installed on this machine")
    npm_registry.publish("shouty", "1.0.0", "exports.shout = (s) => s.toUpperCase() + '!';\n")
    package = {
        "name": "greeter",
        "version": "1.0.0",
        "private": True,
        "scripts": {"test": "node test.js"},
        "dependencies": {"shouty": "^1.0.0"},
    }
    files: dict[str, str | bytes] = {
        "package.json": json.dumps(package, indent=2) + "\n",
        ".npmrc": f"registry={npm_registry.url}\n",
        ".gitignore": "node_modules/\n",
        "index.js": "const shouty = require('shouty');\n"
        "module.exports = (name) => shouty.shout('hello ' + name);\n",
        "test.js": "const assert = require('assert');\n"
        "assert.strictEqual(require('./index')('bob'), 'HELLO BOB!');\n"
        "console.log('1 passed');\n",
        ".qwenfix.yml": "test: node test.js\nsetup: npm ci --ignore-scripts --no-audit\n"
        "maintenance:\n  - task: update-dependencies\n",
    }
    lockdir = make_repo(tmp_path / "lock", files)
    subprocess.run(
        ["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit"],
        cwd=lockdir,
        check=True,
        capture_output=True,
        env={**os.environ, "npm_config_cache": str(tmp_path / "npm-cache")},
    )
    files["package-lock.json"] = (lockdir / "package-lock.json").read_text()
    npm_registry.publish("shouty", "1.1.0", "exports.yell = (s) => s.toUpperCase() + '!';\n")
    npm_registry.publish("shouty", "2.0.0", "exports.broken = true;\n")

    settings.sandbox_backend = "local"
    settings.cache_dir = tmp_path / "cache"
    steps = [
        step(call("str_replace", path="index.js", old_str="shouty.shout(", new_str="shouty.yell(")),
        step(call("run_tests")),
        step(
            call("submit", summary="shouty 1.1 renamed shout() to yell().", title="Use shouty.yell")
        ),
    ]
    u = Upkeep(
        tmp_path / "u",
        files,
        settings,
        LocalBackend(),  # type: ignore[arg-type]
        scripted_model,
    )
    try:
        status, reason = u.run("update-dependencies", steps)
        assert status == "resolved", reason
        [pull] = u.pulls()
        assert "| `shouty` | 1.0.0 | 1.1.0 | `package.json` |" in pull["body"]
        head = pull["head"]
        assert json.loads(u.git("show", f"{head}:package.json"))["dependencies"] == {
            "shouty": "^1.1.0"
        }
        lock = json.loads(u.git("show", f"{head}:package-lock.json"))
        assert lock["packages"]["node_modules/shouty"]["version"] == "1.1.0"
        assert "shouty.yell(" in u.git("show", f"{head}:index.js")
        assert "node_modules" not in u.git("ls-tree", "-r", "--name-only", head)
    finally:
        u.close()
