"""`qwenfix eval`: SWE-bench's task format, the honesty checks on the project's own task
set (oracle resolves every buildable task, noop none; environment failures apart), agent
failures, mirrors of real git repositories, and resuming."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sandbox.docker_backend import DockerBackend
from tests.fakes.model_server import ScriptedModelServer
from tests.helpers import git, make_repo, qwenfix_eval
from workers.engine.llm.client import OpenAICompatibleModel
from workers.eval.models import noop_script, oracle_script
from workers.eval.runner import EvalOptions, TaskResult, run_eval, summary
from workers.eval.tasks import EvalTask, TaskSetError, junit_id, load_tasks
from workers.settings import WorkerSettings

TASKS = Path(__file__).parents[1] / "eval_tasks" / "tasks.jsonl"
GROWN = ("scm-version", "python39-first-word", "unittest-title", "network-index")


def scripted(script_for: Any) -> Any:
    @contextmanager
    def model_for(task: EvalTask, checkout: Path) -> Iterator[Any]:
        with (
            ScriptedModelServer(script_for(task, checkout)) as server,
            OpenAICompatibleModel(
                base_url=server.base_url, model="scripted", max_retries=0, backoff_s=0.01
            ) as model,
        ):
            yield model

    return model_for


def test_swe_bench_lines_are_read_as_swe_bench_writes_them(tmp_path: Path) -> None:
    tasks = load_tasks(TASKS)
    assert [t.instance_id for t in tasks] == [
        "calc-divide",
        "text-slugify",
        "stack-peek",
        "broken-environment",
        "scm-version",
        "python39-first-word",
        "unittest-title",
        "network-index",
    ]
    assert tasks[0].FAIL_TO_PASS == ["tests/test_divide.py::test_divide_gives_a_float"]
    assert Path(tasks[0].repo_path or "").is_dir()  # resolved against the file
    assert junit_id("tests/test_x.py::TestA::test_b[1]") == "tests.test_x.TestA::test_b[1]"
    assert junit_id("tests/test_x.py::test_c") == "tests.test_x::test_c"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(TASKS.read_text().splitlines()[0] + "\n" + "{not json\n")
    with pytest.raises(TaskSetError, match=r"bad\.jsonl:2: not a task"):
        load_tasks(bad)
    twice = tmp_path / "twice.jsonl"
    twice.write_text(TASKS.read_text().splitlines()[0] + "\n" + TASKS.read_text().splitlines()[0])
    with pytest.raises(TaskSetError, match="instance_id calc-divide twice"):
        load_tasks(twice)


@pytest.fixture
def eval_settings(settings: WorkerSettings, tmp_path: Path) -> WorkerSettings:
    settings.cache_dir = tmp_path / "cache"
    settings.max_turns = 8
    return settings


def test_the_oracle_resolves_every_buildable_task(
    tmp_path: Path, docker_client: Any, eval_settings: WorkerSettings
) -> None:
    """Through the command line, two tasks at a time."""
    out = tmp_path / "oracle.jsonl"
    done = qwenfix_eval(tmp_path, TASKS, "--model", "oracle", "--out", str(out), "--workers", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout[done.stdout.index("{") :])
    assert (figures["resolved"], figures["env_error"], figures["resolved_of_buildable_pct"]) == (
        7,
        1,
        100.0,
    )
    results = {
        r.instance_id: r
        for r in (TaskResult.model_validate_json(line) for line in out.read_text().splitlines())
    }
    assert results["broken-environment"].status == "env_error"
    assert "setup command" in results["broken-environment"].reason
    calc = results["calc-divide"]
    assert calc.tests == {
        "tests/test_divide.py::test_divide_gives_a_float": "passed",
        "tests/test_calc.py::test_add": "passed",
    }
    assert "-    return a // b" in calc.diff and calc.turns == 2 and calc.prompt_tokens > 0
    # The tasks of the grown set, each resolved through what it needs:
    # setuptools_scm's version from the sandbox's history (its conftest refuses 0.1.dev1),
    assert results["scm-version"].tests["tests/test_version.py::test_a_release_of_2_3"] == (
        "passed"
    )
    # the Python it names (its own test checks 3.9), on that Python's image,
    assert results["python39-first-word"].python == "3.9"
    # unittest's log read by SWE-bench's Django parser (no JUnit report),
    assert results["unittest-title"].tests == {
        "test_title (tests.test_words.T.test_title)": "passed",
        "test_shout (tests.test_words.T.test_shout)": "passed",
    }
    # and the network for the verdict's tests, recorded.
    assert results["network-index"].tests_network and not calc.tests_network


def test_noop_resolves_nothing_and_a_rerun_resumes(
    tmp_path: Path, docker_client: Any, eval_settings: WorkerSettings
) -> None:
    tasks = load_tasks(TASKS)[:2]
    out = tmp_path / "noop.jsonl"
    seen: list[str] = []
    results = run_eval(
        tasks[:1],
        out,
        model_for=scripted(lambda t, c: noop_script()),
        backend=DockerBackend(),
        settings=eval_settings,
        progress=lambda r: seen.append(r.instance_id),
    )
    assert [r.status for r in results] == ["unresolved"]
    assert "test_divide_gives_a_float" in results[0].reason
    # Interrupted after the first task: the second run does only what is left.
    results = run_eval(
        tasks,
        out,
        model_for=scripted(lambda t, c: noop_script()),
        backend=DockerBackend(),
        settings=eval_settings,
        progress=lambda r: seen.append(r.instance_id),
    )
    assert seen == ["calc-divide", "text-slugify"]
    assert summary(results)["resolved"] == 0 and summary(results)["unresolved"] == 2
    assert len(out.read_text().splitlines()) == 2
    # Nor on the tasks that need more than a plain checkout.
    grown = [t for t in load_tasks(TASKS) if t.instance_id in GROWN]
    results = run_eval(
        grown,
        tmp_path / "noop-grown.jsonl",
        model_for=scripted(lambda t, c: noop_script()),
        backend=DockerBackend(),
        settings=eval_settings,
    )
    assert {r.instance_id: r.status for r in results} == dict.fromkeys(GROWN, "unresolved")
    for result in results:  # each for its FAIL_TO_PASS test alone: the environment held
        assert result.reason.startswith("1 of 2 tests do not pass"), result.reason


def test_tests_that_fail_without_any_change_say_the_environment_is_not_the_task_s(
    tmp_path: Path, docker_client: Any, eval_settings: WorkerSettings
) -> None:
    """Without the network it needs, a PASS_TO_PASS test fails with the gold patch and
    without it: that is the environment, not the change, and the logs show both runs."""
    [task] = [t for t in load_tasks(TASKS) if t.instance_id == "network-index"]
    logs = tmp_path / "logs"
    [result] = run_eval(
        [task.model_copy(update={"network": False})],
        tmp_path / "r.jsonl",
        model_for=scripted(lambda t, c: oracle_script(c, t.patch)),
        backend=DockerBackend(),
        settings=eval_settings,
        options=EvalOptions(logs=logs),
    )
    assert result.status == "env_error" and not result.tests_network
    assert "does not reproduce the task: 1 of 1 PASS_TO_PASS tests fail without any change" in (
        result.reason
    )
    assert "tests/test_reachable.py::test_the_index_answers" in result.reason
    after = (logs / "network-index" / "tests.log").read_text()
    before = (logs / "network-index" / "tests-before.log").read_text()
    # Without the change, the FAIL_TO_PASS test fails as well.
    assert "1 failed, 1 passed" in after and "2 failed" in before


def test_a_change_that_breaks_a_passing_test_is_unresolved(
    tmp_path: Path, docker_client: Any, eval_settings: WorkerSettings
) -> None:
    """The same check finds the PASS_TO_PASS test passing without the change: the
    change broke it, and the verdict stands."""
    [task] = load_tasks(TASKS)[:1]
    breaks_add = (
        "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -1,4 +1,4 @@\n"
        " def add(a, b):\n-    return a + b\n+    return a - b\n \n \n"
    )
    [result] = run_eval(
        [task],
        tmp_path / "r.jsonl",
        model_for=scripted(lambda t, c: oracle_script(c, breaks_add)),
        backend=DockerBackend(),
        settings=eval_settings,
        options=EvalOptions(logs=tmp_path / "logs"),
    )
    assert result.status == "unresolved"
    assert result.tests["tests/test_calc.py::test_add"] == "failed"
    assert (tmp_path / "logs" / task.instance_id / "tests-before.log").exists()


def test_a_python_without_an_image_is_an_environment_failure_before_any_work(
    tmp_path: Path, docker_client: Any, eval_settings: WorkerSettings
) -> None:
    [task] = [t for t in load_tasks(TASKS) if t.instance_id == "python39-first-word"]
    asked: list[str] = []

    def model_for(t: EvalTask, c: Path) -> Any:
        asked.append(t.instance_id)
        return scripted(lambda t, c: noop_script())(t, c)

    [result] = run_eval(
        [task.model_copy(update={"python": "3.4"})],
        tmp_path / "r.jsonl",
        model_for=model_for,
        backend=DockerBackend(),
        settings=eval_settings,
    )
    assert result.status == "env_error" and not asked
    assert result.reason.startswith("Python 3.4 is not available: no sandbox image")
    assert "build-sandbox-image.sh --python 3.4" in result.reason


def test_a_failing_model_is_an_agent_error_not_an_environment_one(
    tmp_path: Path, docker_client: Any, eval_settings: WorkerSettings
) -> None:
    [task] = load_tasks(TASKS)[:1]
    failing = {"steps": [{"status": 500, "body": "GPU on fire"}] * 5}
    [result] = run_eval(
        [task],
        tmp_path / "r.jsonl",
        model_for=scripted(lambda t, c: failing),
        backend=DockerBackend(),
        settings=eval_settings,
    )
    assert result.status == "agent_error" and "500" in result.reason


def test_a_mirror_of_a_real_repository_at_its_base_commit(
    tmp_path: Path, docker_client: Any, eval_settings: WorkerSettings
) -> None:
    """As for SWE-bench: `repo` is owner/name, found under --repos, checked out at a
    base commit that is not the newest."""
    mirror = make_repo(
        tmp_path / "mirrors" / "octo__calc",
        {
            "calc.py": "def double(x):\n    return x + x + 1\n",
            "conftest.py": "",
            "tests/test_calc.py": "from calc import double\n\n\ndef test_zero():\n"
            "    assert double(0) in (0, 1)\n",
        },
    )
    base = git(mirror, "rev-parse", "HEAD").strip()
    (mirror / "calc.py").write_text("def double(x):\n    raise SystemExit('later work')\n")
    git(mirror, "commit", "-qam", "later work on main")
    gold = (
        "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n"
        " def double(x):\n-    return x + x + 1\n+    return x * 2\n"
    )
    tests = (
        "diff --git a/tests/test_two.py b/tests/test_two.py\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/tests/test_two.py\n@@ -0,0 +1,5 @@\n"
        "+from calc import double\n+\n+\n+def test_two():\n+    assert double(2) == 4\n"
    )
    line = json.dumps(
        {
            "instance_id": "octo__calc-1",
            "repo": "octo/calc",
            "base_commit": base,
            "problem_statement": "double(2) is 5",
            "patch": gold,
            "test_patch": tests,
            "FAIL_TO_PASS": json.dumps(["tests/test_two.py::test_two"]),
            "PASS_TO_PASS": json.dumps(["tests/test_calc.py::test_zero"]),
        }
    )
    (tmp_path / "external.jsonl").write_text(line + "\n")
    [task] = load_tasks(tmp_path / "external.jsonl")
    [result] = run_eval(
        [task],
        tmp_path / "r.jsonl",
        model_for=scripted(lambda t, c: oracle_script(c, t.patch)),
        backend=DockerBackend(),
        settings=eval_settings,
        options=EvalOptions(mirrors=tmp_path / "mirrors"),
    )
    assert (result.status, result.reason) == ("resolved", "all 2 tests pass")
    missing = task.model_copy(update={"instance_id": "gone", "repo_path": str(tmp_path / "absent")})
    [gone] = run_eval(
        [missing],
        tmp_path / "r2.jsonl",
        model_for=scripted(lambda t, c: noop_script()),
        backend=DockerBackend(),
        settings=eval_settings,
    )
    assert gone.status == "env_error" and "cannot get the repository" in gone.reason


def test_qwenfix_s_own_failure_on_a_task_loses_no_other_and_is_retried(
    tmp_path: Path, docker_client: Any, eval_settings: WorkerSettings
) -> None:
    tasks = load_tasks(TASKS)[:2]
    out = tmp_path / "r.jsonl"

    def broken_for(task: EvalTask, checkout: Path) -> Any:
        if task.instance_id == "calc-divide":
            raise RuntimeError("a bug in the harness")
        return scripted(lambda t, c: noop_script())(task, checkout)

    results = run_eval(
        tasks, out, model_for=broken_for, backend=DockerBackend(), settings=eval_settings
    )
    assert [(r.instance_id, r.status) for r in results] == [
        ("calc-divide", "harness_error"),
        ("text-slugify", "unresolved"),
    ]
    assert results[0].reason == "qwenfix failed: RuntimeError: a bug in the harness"
    assert summary(results)["harness_error"] == 1
    # Resumed, the task qwenfix failed on is tried again; the other is done.
    again = run_eval(
        tasks,
        out,
        model_for=scripted(lambda t, c: noop_script()),
        backend=DockerBackend(),
        settings=eval_settings,
    )
    assert [r.status for r in again] == ["unresolved", "unresolved"]
