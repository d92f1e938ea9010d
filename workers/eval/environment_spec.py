"""What a task's environment is: its Python, the dependencies shared by every task of its
repository and version, the per-task steps, the test command and how to read its log.

From the task's own fields when it names them, else from SWE-bench's own specs (the
official `swebench` package, 4.x: `MAP_REPO_VERSION_TO_SPECS`, its requirements paths,
its test directives and log parsers; `pip install 'qwenfix[eval]'`). Nothing of SWE-bench
is copied here: its tables are read where they live.

SWE-bench builds environments with conda; here they are pip on the task's Python (a
sandbox image per version). Conda package lists become pip requirements, which holds for
the Python repositories SWE-bench covers; where it does not, the environment's build
fails and the task is `env_error` with pip's own message.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from workers.engine import git as gitops
from workers.eval.tasks import EvalTask

Specs = Literal["swebench", "none"]
DEFAULT_TEST_CMD = "python -m pytest -q"
SWEBENCH_PACKAGES_BEFORE = "2024-08-01"
"""The package index SWE-bench's specs (4.x) were written against: their newest exact
pin (tox 4.16.0) is of 2024-07-03, and what they leave unpinned has moved on since
(docutils 0.22 dropped the `roman` module Sphinx 3 imports)."""
INDEX_BEFORE = "/opt/qwenfix/index_before.py"
"""Where the dated index's script sits in an environment that has one."""


class SpecUnavailable(Exception):
    """The task's environment cannot be known; `reason` says what to do about it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TaskEnvironment(BaseModel):
    python: str | None = None
    """The Python the task names; None: the default sandbox image's."""
    dependencies: list[str] = Field(default_factory=list)
    """Commands that install what every task of this repository and version shares, run
    once as root with the network, without the repository, and kept as a snapshot."""
    files: dict[str, str] = Field(default_factory=dict)
    """Files those commands read (a requirements list), written first: path -> text."""
    prepare: list[str] = Field(default_factory=list)
    """Per-task steps before the install, in the repository, as root with the network
    (system packages, edits to the build files); their edits become part of the base."""
    setup: str | None = None
    """The install, the task's own setup phase."""
    test_cmd: str = DEFAULT_TEST_CMD
    test_directives: list[str] = Field(default_factory=list)
    """What the test command is given: the test files the test patch touches (SWE-bench's
    directives), for the verdict."""
    test_env: list[str] = Field(default_factory=list)
    """Commands run before the tests in the same shell (`export LANG=...`)."""
    log_parser: str | None = None
    """A repository whose SWE-bench log parser reads the test output when there is no
    JUnit report."""
    network: bool = False
    """Whether the verdict's tests run with the network."""
    source: Literal["task", "swebench"] = "task"
    packages_before: str | None = None
    """A date: the installs see only what the package index held before it."""

    def dated(self, before: str | None) -> TaskEnvironment:
        """This environment with every install run through the index as it was before
        `before` (workers/eval/index_before.py, kept in the environment's snapshot)."""
        if before is None:
            return self

        def wrap(command: str) -> str:
            return f"python3 {INDEX_BEFORE} {shlex.quote(before)} -- bash -c {shlex.quote(command)}"

        return self.model_copy(
            update={
                "packages_before": before,
                "files": {**self.files, INDEX_BEFORE: _index_script()},
                "dependencies": [wrap(c) for c in self.dependencies],
                "prepare": [wrap(c) for c in self.prepare],
                "setup": wrap(self.setup) if self.setup else self.setup,
            }
        )

    def environment_key(self, repo: str, version: str | None, image: str) -> str:
        """The same for every task that can share the dependencies' snapshot."""
        material = json.dumps(
            [repo, version, self.python, image, self.dependencies, self.files], sort_keys=True
        )
        return hashlib.sha256(material.encode()).hexdigest()[:24]

    def test_command(self, directives: list[str] | None = None) -> str:
        """The test command with `directives` (default: this task's), after `test_env`."""
        wanted = self.test_directives if directives is None else directives
        command = " ".join([self.test_cmd, *(shlex.quote(d) for d in wanted)])
        return "\n".join([*self.test_env, command])


def resolve(
    task: EvalTask, checkout: Path, specs: Specs, packages_before: str = "auto"
) -> TaskEnvironment:
    """The task's environment: its own fields, completed from SWE-bench's specs when
    `specs` is "swebench" and the task's repository and version are in them, its installs
    dated by `packages_before` (a date, "none", or "auto": SWE-bench's date for an
    environment from its specs, none for a task's own)."""
    env = _resolve(task, checkout, specs)
    if packages_before == "auto":
        return env.dated(SWEBENCH_PACKAGES_BEFORE if env.source == "swebench" else None)
    return env.dated(None if packages_before == "none" else packages_before)


def _index_script() -> str:
    return (Path(__file__).parent / "index_before.py").read_text(encoding="utf-8")


def _resolve(task: EvalTask, checkout: Path, specs: Specs) -> TaskEnvironment:
    own = TaskEnvironment(
        python=task.python,
        setup=task.setup,
        test_cmd=task.test_cmd or DEFAULT_TEST_CMD,
        log_parser=task.log_parser,
        network=bool(task.network),
        test_directives=pytest_files(task) if "pytest" in (task.test_cmd or "pytest") else [],
    )
    if specs == "none" or not _in_swebench(task):
        return own
    spec = _swebench_spec(task)
    files = _requirement_files(task, checkout, spec)
    return TaskEnvironment(
        python=task.python or spec.get("python"),
        dependencies=_dependency_commands(spec, has_requirements=bool(files)),
        files=files,
        prepare=[*_repo_install(task.repo), *spec.get("pre_install", [])],
        setup=task.setup if task.setup is not None else spec.get("install"),
        test_cmd=task.test_cmd or spec.get("test_cmd") or DEFAULT_TEST_CMD,
        test_directives=_swebench_directives(task),
        test_env=list(spec.get("eval_commands", [])),
        log_parser=task.log_parser or task.repo,
        # SWE-bench's harness runs every repository's tests in a container with the
        # network on; a task may still say otherwise.
        network=task.network if task.network is not None else True,
        source="swebench",
    )


def pytest_files(task: EvalTask) -> list[str]:
    """The files of the FAIL_TO_PASS and PASS_TO_PASS node ids (pytest's own tasks)."""
    return sorted({w.split("::")[0] for w in [*task.FAIL_TO_PASS, *task.PASS_TO_PASS]})


def swebench_installed() -> bool:
    try:
        import swebench.harness.constants  # noqa: F401
    except ImportError:
        return False
    return True


def _in_swebench(task: EvalTask) -> bool:
    if not swebench_installed() or task.version is None:
        return False
    from swebench.harness.constants import MAP_REPO_VERSION_TO_SPECS

    return task.version in MAP_REPO_VERSION_TO_SPECS.get(task.repo, {})


def _swebench_spec(task: EvalTask) -> dict[str, Any]:
    from swebench.harness.constants import MAP_REPO_VERSION_TO_SPECS

    return dict(MAP_REPO_VERSION_TO_SPECS[task.repo][task.version or ""])


def _repo_install(repo: str) -> list[str]:
    from swebench.harness.constants import MAP_REPO_TO_INSTALL

    found = MAP_REPO_TO_INSTALL.get(repo)
    return [found] if found else []


REQUIREMENTS = "/tmp/qwenfix-env/requirements.txt"


def _dependency_commands(spec: dict[str, Any], *, has_requirements: bool) -> list[str]:
    pip = "python -m pip install --no-cache-dir"
    commands = []
    packages = spec.get("packages", "")
    if has_requirements:
        commands.append(f"{pip} -r {REQUIREMENTS}")
    elif packages:
        commands.append(
            f"{pip} {' '.join(shlex.quote(p) for p in _conda_to_pip(packages.split()))}"
        )
    if spec.get("pip_packages"):
        commands.append(f"{pip} {' '.join(shlex.quote(p) for p in spec['pip_packages'])}")
    return commands


_CONDA_SPEC = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)(==|=|>=|<=|>|<|~=|!=)?(.*)$")


def _conda_to_pip(specs: list[str]) -> list[str]:
    """conda's `name=1.2` is pip's `name==1.2`; the rest reads the same."""
    out = []
    for spec in specs:
        found = _CONDA_SPEC.match(spec)
        if found is None:
            out.append(spec)
            continue
        name, op, version = found.groups()
        if name.lower() in ("python", "pip"):
            continue
        out.append(f"{name}=={version}" if op == "=" else spec)
    return out


def _requirement_files(task: EvalTask, checkout: Path, spec: dict[str, Any]) -> dict[str, str]:
    packages = spec.get("packages")
    if packages == "requirements.txt":
        return {REQUIREMENTS: _requirements(task, checkout)}
    if packages == "environment.yml":
        return {REQUIREMENTS: _environment_yml(task, checkout)}
    return {}


def _env_commit(task: EvalTask) -> str:
    return task.environment_setup_commit or task.base_commit


def _requirements(task: EvalTask, checkout: Path) -> str:
    """SWE-bench's requirements for the task's environment commit, read from the local
    repository where SWE-bench reads GitHub: the same paths, `-r` followed, the same lines
    left out, the same replacements (its `clean_requirements`)."""
    from swebench.harness.constants import MAP_REPO_TO_REQS_PATHS
    from swebench.harness.test_spec.python import clean_requirements

    commit = _env_commit(task)
    path, text = _first_file(checkout, commit, MAP_REPO_TO_REQS_PATHS.get(task.repo, []), task)
    directory = str(Path(path).parent)

    def keep(line: str) -> bool:
        return not any(line.strip().startswith(x) for x in ("-e .", "#", ".[test"))

    lines: list[str] = []
    for line in text.split("\n"):
        if line.strip().startswith("-r"):
            included = _read(checkout, commit, str(Path(directory) / line.strip()[2:].strip()))
            lines.extend(x for x in (included or "").split("\n") if keep(x))
        elif keep(line):
            lines.append(line)
    return str(clean_requirements("\n".join(lines)))


def _environment_yml(task: EvalTask, checkout: Path) -> str:
    """conda's environment.yml as pip requirements: its conda dependencies by name (with
    `=` made `==`) and its `pip:` list."""
    import yaml
    from swebench.harness.constants import MAP_REPO_TO_ENV_YML_PATHS

    _, text = _first_file(
        checkout, _env_commit(task), MAP_REPO_TO_ENV_YML_PATHS.get(task.repo, []), task
    )
    data = yaml.safe_load(text) or {}
    conda: list[str] = []
    pip: list[str] = []
    for dependency in data.get("dependencies") or []:
        if isinstance(dependency, dict):
            pip.extend(str(d) for d in dependency.get("pip") or [])
        else:
            conda.append(str(dependency).replace(" ", ""))
    return "\n".join([*_conda_to_pip(conda), *pip]) + "\n"


def _first_file(checkout: Path, commit: str, paths: list[str], task: EvalTask) -> tuple[str, str]:
    """The first of `paths` in `commit`, where SWE-bench looks for it, and its text."""
    for path in paths:
        text = _read(checkout, commit, path)
        if text is not None:
            return path, text
    raise SpecUnavailable(
        f"SWE-bench reads {task.repo}'s dependencies from {', '.join(paths) or 'no known path'}; "
        f"none is in commit {commit[:12]}"
    )


def _read(checkout: Path, commit: str, path: str) -> str | None:
    blob = gitops.read_blob(checkout, commit, path)
    return blob.decode(errors="replace") if blob is not None else None


def _swebench_directives(task: EvalTask) -> list[str]:
    from swebench.harness.test_spec.python import get_test_directives

    return list(get_test_directives({"repo": task.repo, "test_patch": task.test_patch}))


SWEBENCH_OUTCOMES = {
    "PASSED": "passed",
    "FAILED": "failed",
    "ERROR": "error",
    "SKIPPED": "skipped",
    "XFAIL": "xfailed",
}


def parse_log(parser_repo: str, log: str, task: EvalTask) -> dict[str, str] | None:
    """test -> outcome from a test log, by SWE-bench's parser for `parser_repo`; None when
    SWE-bench is not installed or has no parser for it."""
    if not swebench_installed():
        return None
    from swebench.harness.log_parsers import MAP_REPO_TO_PARSER
    from swebench.harness.test_spec.test_spec import TestSpec

    parser = MAP_REPO_TO_PARSER.get(parser_repo)
    if parser is None:
        return None
    spec = TestSpec(
        instance_id=task.instance_id,
        repo=task.repo,
        version=task.version or "",
        repo_script_list=[],
        eval_script_list=[],
        env_script_list=[],
        arch="x86_64",
        FAIL_TO_PASS=task.FAIL_TO_PASS,
        PASS_TO_PASS=task.PASS_TO_PASS,
        language="py",
        docker_specs={},
        namespace=None,
    )
    found = parser(log, spec)
    return {
        str(test): SWEBENCH_OUTCOMES.get(str(status), "failed") for test, status in found.items()
    }
