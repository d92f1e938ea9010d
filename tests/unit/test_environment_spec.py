"""A task's environment from SWE-bench's own specs (the `swebench` package's tables,
requirements read at the environment commit of the local repository, its directives and
parsers), and from the task's own fields when it names them or SWE-bench does not know it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import git, make_repo
from workers.eval.environment_spec import (
    INDEX_BEFORE,
    REQUIREMENTS,
    SWEBENCH_PACKAGES_BEFORE,
    parse_log,
    resolve,
)
from workers.eval.tasks import EvalTask

TEST_PATCH = (
    "diff --git a/tests/test_cli.py b/tests/test_cli.py\n--- a/tests/test_cli.py\n"
    "+++ b/tests/test_cli.py\n@@ -1 +1,2 @@\n x = 1\n+y = 2\n"
    "diff --git a/CHANGES.md b/CHANGES.md\n--- a/CHANGES.md\n+++ b/CHANGES.md\n"
    "@@ -1 +1,2 @@\n a\n+b\n"
)


def flask_task(repo: Path, **fields: object) -> EvalTask:
    env_commit = git(repo, "rev-parse", "HEAD~1").strip()
    return EvalTask.model_validate(
        {
            "instance_id": "pallets__flask-1",
            "repo": "pallets/flask",
            "base_commit": "HEAD",
            "problem_statement": "p",
            "version": "2.3",
            "environment_setup_commit": env_commit,
            "test_patch": TEST_PATCH,
            "FAIL_TO_PASS": ["tests/test_cli.py::test_y"],
            **fields,
        }
    )


def stand_in(tmp_path: Path) -> Path:
    """A repository shaped as Flask's where SWE-bench reads it: requirements/dev.txt
    including tests.txt, at the environment commit (and changed after it)."""
    repo = make_repo(
        tmp_path / "flask",
        {
            "requirements/dev.txt": "-r tests.txt\n-e .\n# a comment\npre-commit\n",
            "requirements/tests.txt": "pytest\nasgiref\n",
            "tests/test_cli.py": "x = 1\n",
            "CHANGES.md": "a\n",
        },
    )
    (repo / "requirements" / "dev.txt").write_text("tox\n")
    git(repo, "commit", "-qam", "later")
    return repo


def test_a_known_repository_and_version_takes_swebench_specs(tmp_path: Path) -> None:
    repo = stand_in(tmp_path)
    env = resolve(flask_task(repo), repo, "swebench", packages_before="none")
    assert (env.source, env.python, env.setup) == ("swebench", "3.11", "python -m pip install -e .")
    # At the environment commit, `-r` followed, editable and comment lines left out:
    assert env.files[REQUIREMENTS].split() == ["pytest", "asgiref", "pre-commit"]
    assert env.dependencies[0].endswith(f"-r {REQUIREMENTS}")
    assert "Werkzeug==2.3.7" in env.dependencies[1].split()  # the spec's pinned pip packages
    # The verdict runs SWE-bench's command on the test files the test patch touches,
    assert env.test_command() == "pytest -rA tests/test_cli.py"
    # reads the log with Flask's parser, and has the network as SWE-bench's harness does.
    assert (env.log_parser, env.network) == ("pallets/flask", True)


def test_a_task_s_own_fields_win_and_none_means_none(tmp_path: Path) -> None:
    repo = stand_in(tmp_path)
    own = flask_task(repo, python="3.13", setup="make dev", network=False)
    env = resolve(own, repo, "swebench", packages_before="none")
    assert (env.python, env.setup, env.network) == ("3.13", "make dev", False)
    plain = resolve(flask_task(repo), repo, "none")
    assert (plain.source, plain.python, plain.dependencies) == ("task", None, [])
    assert plain.test_command() == "python -m pytest -q tests/test_cli.py"
    unknown = resolve(flask_task(repo, version="0.0.1"), repo, "swebench")
    assert unknown.source == "task"


def test_installs_from_swebench_specs_see_the_index_of_swebench_s_date(tmp_path: Path) -> None:
    repo = stand_in(tmp_path)
    env = resolve(flask_task(repo), repo, "swebench")
    assert env.packages_before == SWEBENCH_PACKAGES_BEFORE
    wrap = f"python3 {INDEX_BEFORE} {SWEBENCH_PACKAGES_BEFORE} -- bash -c "
    assert env.setup == wrap + "'python -m pip install -e .'"
    assert all(c.startswith(wrap) for c in [*env.dependencies, *env.prepare])
    # The script travels in the environment's files, so its snapshot has it (and a
    # different date or script is a different environment).
    assert "def dated(" in env.files[INDEX_BEFORE]
    undated = resolve(flask_task(repo), repo, "swebench", packages_before="none")
    image = "sha256:1"
    assert env.environment_key("r", "1", image) != undated.environment_key("r", "1", image)
    # A task's own environment is dated only when asked.
    own = resolve(flask_task(repo), repo, "none")
    assert (own.packages_before, own.files) == (None, {})
    asked = resolve(flask_task(repo, setup="pip install -e ."), repo, "none", "2020-06-01")
    assert asked.setup == f"python3 {INDEX_BEFORE} 2020-06-01 -- bash -c 'pip install -e .'"


def test_sympy_s_log_is_read_by_sympy_s_parser() -> None:
    task = EvalTask(
        instance_id="sympy__sympy-1",
        repo="sympy/sympy",
        base_commit="x",
        problem_statement="p",
        version="1.7",
    )
    log = (
        "============================= test process starts ==============================\n"
        "sympy/core/tests/test_basic.py[2] \n"
        "test_immutable ok\n"
        "test_atoms F\n"
        "________________________________ slowest tests _________________________________\n"
    )
    assert parse_log("sympy/sympy", log, task) == {
        "test_immutable": "passed",
        "test_atoms": "failed",
    }
    assert parse_log("nobody/unknown", log, task) is None
