"""Run an evaluation: for each task, the agent on the problem statement (the tests that
judge it hidden), then, in a fresh sandbox, the agent's diff and the task's test patch,
and the FAIL_TO_PASS and PASS_TO_PASS tests. Resolved means all of them pass.

Environment failures (the repository cannot be fetched or set up, its tests do not run)
are kept apart from agent failures. Each finished task is one line of the results file,
written as it ends, so an interrupted evaluation resumes where it stopped.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from sandbox import SandboxBackend, SandboxError, SandboxUnavailable
from sandbox.protocol import ca_environment
from workers.engine import git as gitops
from workers.engine.agent.trajectory import Trajectory
from workers.engine.change import ChangeUnreadable, materialise
from workers.engine.fix import FixRequest, FixResult, run_fix
from workers.engine.llm.types import Model
from workers.engine.prepared import fresh_sandbox, working_sandbox
from workers.engine.repo_config import RepoConfig
from workers.engine.test_controls import base_overlay, test_controls
from workers.engine.verdict import lay
from workers.engine.verify import run_tests
from workers.engine.workspace import WorkspaceFailed
from workers.eval.environment_spec import (
    Specs,
    SpecUnavailable,
    TaskEnvironment,
    parse_log,
    resolve,
)
from workers.eval.environments import EnvironmentFailed, Environments
from workers.eval.tasks import EvalTask, junit_id
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

Status = Literal["resolved", "unresolved", "env_error", "agent_error", "harness_error"]
"""harness_error: qwenfix itself failed on the task (a bug to report); recorded, and tried
again when the run is resumed."""
ModelFor = Callable[[EvalTask, Path], AbstractContextManager[Model]]
"""The model for one task (the oracle's script depends on the task and its checkout)."""


class TaskResult(BaseModel):
    instance_id: str
    status: Status
    reason: str
    turns: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    wall_s: float = 0.0
    diff: str = ""
    tests: dict[str, str] = Field(default_factory=dict)
    """FAIL_TO_PASS and PASS_TO_PASS test -> outcome after the change."""
    python: str | None = None
    """The Python the task ran on (None: the default sandbox image's)."""
    tests_network: bool = False
    """Whether the verdict's tests had the network."""
    environment: str | None = None
    """The key of the shared dependencies' snapshot, when the task had one."""
    packages_before: str | None = None
    """The date the installs saw the package index as of, when they were dated."""


class EvalOptions(BaseModel):
    """How every task of one evaluation is prepared and what is kept of it."""

    mirrors: Path | None = None
    """Local clones (owner__name.git) used instead of fetching each repository."""
    specs: Specs = "swebench"
    logs: Path | None = None
    """Keep each task's test output in logs/INSTANCE_ID/."""
    packages_before: str = "auto"
    """Installs see the package index as of this date (`auto`: SWE-bench's specs)."""


def checkout(task: EvalTask, work: Path, mirrors: Path | None) -> Path:
    """The task's repository at `base_commit`, in `work`."""
    source = task.repo_path
    if source is None and mirrors is not None:
        for name in (task.repo.replace("/", "__"), task.repo.split("/")[-1]):
            if (mirrors / name).exists():
                source = str((mirrors / name).resolve())  # git runs in another directory
                break
    if source is None:
        source = f"https://github.com/{task.repo}.git"
    target = work / "repo"
    if Path(source).is_dir() and not _is_git(Path(source)):
        # A plain directory (the project's own task set): its files are the base commit.
        subprocess.run(["cp", "-r", source, str(target)], check=True, timeout=GIT_TIMEOUT_S)
        for args in (
            ["init", "-q", "-b", "main"],
            ["add", "-A"],
            ["-c", "user.name=eval", "-c", "user.email=eval@localhost", "commit", "-qm", "base"],
        ):
            _git(target, *args)
        return target
    _git(work, "clone", "-q", "--no-checkout", source, str(target))
    _git(target, "checkout", "-q", "--detach", task.base_commit)
    return target


def _is_git(path: Path) -> bool:
    """A working tree's repository or a bare one (a `git clone --mirror`)."""
    done = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--git-dir"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode == 0 and Path(path, done.stdout.strip()).resolve() in (
        (path / ".git").resolve(),
        path.resolve(),
    )


GIT_TIMEOUT_S = 1800
"""A clone of a large repository over a slow link, at most; a hung one ends the task."""


def _git(cwd: Path, *args: str) -> str:
    try:
        proc = subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except subprocess.TimeoutExpired as exc:
        raise EnvironmentFailed(f"git {args[0]} did not finish in {GIT_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        raise EnvironmentFailed(f"git {args[0]} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout


PASSING = frozenset({"passed", "xfailed"})
"""What counts as passing for FAIL_TO_PASS and PASS_TO_PASS: SWE-bench's own rule (its
`test_passed`), so that both harnesses score a run alike."""
TEST_LOG = "/tmp/qwenfix/eval-tests.log"


@dataclass(frozen=True)
class TaskJudge:
    """The same judge as a fix's verdict, for one task in its environment."""

    task: EvalTask
    env: TaskEnvironment
    repo: Path
    backend: SandboxBackend
    settings: WorkerSettings

    def judge(self, diff: str, work: Path) -> tuple[bool, dict[str, str], str]:
        """(resolved, outcomes, why): a fresh sandbox from the setup snapshot, exactly the
        change, the base commit's tests and test configuration put back over it, then the
        task's test patch and its FAIL_TO_PASS and PASS_TO_PASS tests, read from JUnit
        where the runner writes it, else from the test log with SWE-bench's parser for the
        repository.

        PASS_TO_PASS tests pass before the fix by the benchmark's construction. When some fail
        after the change, they are run once more without it: failing there too, they say the
        environment is not the task's (dependencies that moved on, a host the tests need),
        which is `EnvironmentFailed`, not a verdict on the change."""
        task = self.task
        wanted = [*task.FAIL_TO_PASS, *task.PASS_TO_PASS]
        outcomes, why = self.tests(diff, work / "tests.log")
        if outcomes is None:
            return False, {}, why
        failing = [w for w, o in outcomes.items() if o not in PASSING]
        broken = [w for w in task.PASS_TO_PASS if w in failing]
        if broken and diff.strip():
            before, _ = self.tests("", work / "tests-before.log")
            already = [w for w in broken if before is not None and before[w] not in PASSING]
            if already:
                raise EnvironmentFailed(
                    f"the environment does not reproduce the task: {len(already)} of "
                    f"{len(task.PASS_TO_PASS)} PASS_TO_PASS tests fail without any change "
                    f"({', '.join(already[:3])}); dependencies newer than the task's "
                    "(--packages-before) or a service the tests need; the test log "
                    "(--logs) says which"
                )
        return (
            not failing,
            outcomes,
            (
                f"{len(failing)} of {len(wanted)} tests do not pass: {', '.join(failing[:5])}"
                if failing
                else f"all {len(wanted)} tests pass"
            ),
        )

    def tests(self, diff: str, keep_log: Path) -> tuple[dict[str, str] | None, str]:
        """The FAIL_TO_PASS and PASS_TO_PASS outcomes with `diff` laid over the base in a
        fresh sandbox, or None and why the change could not be laid. The test output is kept
        in `keep_log`."""
        task, env, repo, settings = self.task, self.env, self.repo, self.settings
        backend = self.backend
        config = RepoConfig(test=env.test_cmd, setup=env.setup)
        base = gitops.resolve(repo, "HEAD")
        try:
            change = materialise(repo, base, diff)
        except ChangeUnreadable as exc:
            return None, exc.reason
        controls = test_controls(
            change.files, lambda p: gitops.read_blob(repo, base, p), change.new
        )
        overlay = base_overlay(controls, lambda p: gitops.read_blob(repo, base, p), change.new)
        label = f"eval-{uuid.uuid4().hex[:8]}"
        with Trajectory(keep_log.with_suffix(".jsonl")) as trajectory:
            try:
                with (
                    working_sandbox(
                        backend,
                        repo,
                        base,
                        config=config,
                        settings=settings,
                        trajectory=trajectory,
                        run_label=label,
                    ) as (_, prepared),
                    fresh_sandbox(
                        backend,
                        prepared,
                        repo,
                        config=config,
                        settings=settings,
                        run_label=label,
                        network=env.network,
                    ) as sb,
                ):
                    lay(sb, change, overlay)
                    if task.test_patch.strip():
                        sb.write_file("/tmp/qwenfix-eval.patch", task.test_patch.encode())
                        applied = sb.run(
                            "git apply --whitespace=nowarn /tmp/qwenfix-eval.patch", timeout=120
                        )
                        if not applied.ok:
                            return None, (
                                "the test patch does not apply over the change: "
                                f"{applied.output[-300:]}"
                            )
                    exports = "".join(
                        f"export {name}={value}\n"
                        for name, value in ca_environment(sb.spec).items()
                    )
                    command = f"{{\n{exports}{env.test_command()}\n}} > {TEST_LOG} 2>&1"
                    ran = run_tests(sb, command, timeout=settings.test_timeout_s, label="eval")
                    try:
                        log = sb.read_file(TEST_LOG).decode(errors="replace")
                    except (FileNotFoundError, SandboxError):
                        log = ""
            except WorkspaceFailed as exc:
                raise EnvironmentFailed(exc.reason) from exc
        keep_log.write_text(log)
        found = _outcomes(task, env, ran.tests, log)
        if found is None:
            raise EnvironmentFailed(
                f"the tests gave no per-test results ({ran.summary()}): {log[-300:]}"
            )
        wanted = [*task.FAIL_TO_PASS, *task.PASS_TO_PASS]
        return {w: found.get(junit_id(w), found.get(w, "missing")) for w in wanted}, ""


def _outcomes(
    task: EvalTask, env: TaskEnvironment, junit: dict[str, str] | None, log: str
) -> dict[str, str] | None:
    """JUnit's outcomes, completed from the log by SWE-bench's parser: SWE-bench's own
    test names come from that parser (it cuts a parametrised id at its first space, say),
    so a name JUnit spells otherwise is still found."""
    parsed = parse_log(env.log_parser, log, task) if env.log_parser else None
    if not junit and not parsed:
        return None
    return {**(parsed or {}), **(junit or {})}


def evaluate(
    task: EvalTask,
    *,
    model_for: ModelFor,
    backend: SandboxBackend,
    settings: WorkerSettings,
    options: EvalOptions,
    environments: Environments | None = None,
) -> TaskResult:
    """One task's result; with `logs`, its test output is kept in logs/INSTANCE_ID/
    (`tests.log`, and `tests-before.log` when the tests also ran without the change)."""
    started = time.monotonic()
    environments = environments or Environments(backend, settings)
    with tempfile.TemporaryDirectory(prefix="qwenfix-eval-") as tmp:
        work = Path(tmp)
        try:
            result = _evaluate(task, work, model_for, backend, settings, options, environments)
        finally:
            if options.logs is not None:
                _keep_logs(work, options.logs / task.instance_id)
    result.wall_s = round(time.monotonic() - started, 2)
    return result


def _evaluate(
    task: EvalTask,
    work: Path,
    model_for: ModelFor,
    backend: SandboxBackend,
    settings: WorkerSettings,
    options: EvalOptions,
    environments: Environments,
) -> TaskResult:
    def env_error(reason: str) -> TaskResult:
        return TaskResult(instance_id=task.instance_id, status="env_error", reason=reason)

    try:
        repo = checkout(task, work, options.mirrors)
    except (EnvironmentFailed, subprocess.CalledProcessError) as exc:
        return env_error(f"cannot get the repository: {exc}")
    try:
        env = resolve(task, repo, options.specs, options.packages_before)
        box = environments.for_task(task, env, repo, run_label=f"eval-{uuid.uuid4().hex[:8]}")
    except SpecUnavailable as exc:
        return env_error(exc.reason)
    except (EnvironmentFailed, SandboxError, gitops.GitError) as exc:
        return env_error(str(exc))
    try:
        task_settings = box.settings(settings)
        try:
            with model_for(task, repo) as model:
                fixed = run_fix(
                    FixRequest(
                        repo=repo,
                        issue=task.problem_statement,
                        test_command=env.test_command(_present(repo, env)),
                        setup_command=env.setup or "",
                    ),
                    model=model,
                    backend=backend,
                    settings=task_settings,
                )
        except subprocess.CalledProcessError as exc:  # the oracle's patch itself is broken
            return env_error(f"the gold patch does not apply: {exc}")
        except gitops.GitError as exc:  # an incomplete mirror: objects the tree needs
            return env_error(f"the repository cannot be read: {exc}")
        result = _from_fix(task, fixed)
        result.python, result.tests_network = env.python, env.network
        result.environment = box.environment_key
        result.packages_before = env.packages_before
        if fixed.status != "error":
            try:
                judge = TaskJudge(task, env, repo, backend, task_settings)
                resolved, outcomes, why = judge.judge(fixed.diff, work)
                result.status, result.reason = ("resolved" if resolved else "unresolved"), why
                result.tests = outcomes
            except (EnvironmentFailed, SandboxError, SandboxUnavailable) as exc:
                result.status, result.reason = "env_error", f"judging failed: {exc}"
        return result
    finally:
        environments.release(box)


def _keep_logs(work: Path, into: Path) -> None:
    kept = sorted(work.glob("tests*.log"))
    if kept:
        into.mkdir(parents=True, exist_ok=True)
        for found in kept:
            shutil.copyfile(found, into / found.name)


def _present(repo: Path, env: TaskEnvironment) -> list[str]:
    """The verdict's directives the agent can run too: those that exist before the test
    patch (a file it adds does not) or name no file at all (a module label)."""
    return [d for d in env.test_directives if "/" not in d or (repo / d).exists()]


def _from_fix(task: EvalTask, fixed: FixResult) -> TaskResult:
    status: Status = "unresolved"
    if fixed.status == "error":
        status = "env_error" if fixed.failed_in == "environment" else "agent_error"
    return TaskResult(
        instance_id=task.instance_id,
        status=status,
        reason=fixed.reason,
        turns=fixed.turns,
        prompt_tokens=fixed.usage.prompt_tokens,
        completion_tokens=fixed.usage.completion_tokens,
        cached_tokens=fixed.usage.cached_tokens,
        diff=fixed.diff,
    )


def finished(results: Path) -> dict[str, TaskResult]:
    """The tasks a results file holds as done: what a resumed run skips. A line qwenfix
    failed on (`harness_error`), or one cut short when a run was killed, is done again."""
    done: dict[str, TaskResult] = {}
    if not results.exists():
        return done
    for number, line in enumerate(results.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            earlier = TaskResult.model_validate_json(line)
        except ValueError:
            log.warning("%s:%d is not a result; its task runs again", results, number)
            continue
        if earlier.status != "harness_error":
            done[earlier.instance_id] = earlier
    return done


def run_eval(
    tasks: list[EvalTask],
    results: Path,
    *,
    model_for: ModelFor,
    backend: SandboxBackend,
    settings: WorkerSettings,
    options: EvalOptions | None = None,
    workers: int = 1,
    progress: Callable[[TaskResult], None] = lambda r: None,
) -> list[TaskResult]:
    """Every task not already in `results` (resuming), `workers` at a time."""
    done = finished(results)
    todo = [t for t in tasks if t.instance_id not in done]
    lock = threading.Lock()
    results.parent.mkdir(parents=True, exist_ok=True)

    environments = Environments(backend, settings)
    chosen = options or EvalOptions()

    def one(task: EvalTask) -> TaskResult:
        try:
            result = evaluate(
                task,
                model_for=model_for,
                backend=backend,
                settings=settings,
                options=chosen,
                environments=environments,
            )
        except Exception as exc:  # one task's bug must not lose the others' hours
            log.exception("evaluating %s failed", task.instance_id)
            result = TaskResult(
                instance_id=task.instance_id,
                status="harness_error",
                reason=f"qwenfix failed: {type(exc).__name__}: {exc}",
            )
        with lock, results.open("a") as out:
            out.write(result.model_dump_json() + "\n")
        progress(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        ran = list(pool.map(one, todo))
    by_id = {**done, **{r.instance_id: r for r in ran}}
    return [by_id[t.instance_id] for t in tasks if t.instance_id in by_id]


def summary(results: list[TaskResult]) -> dict[str, float | int]:
    counts = {
        s: sum(r.status == s for r in results)
        for s in ("resolved", "unresolved", "env_error", "agent_error", "harness_error")
    }
    buildable = len(results) - counts["env_error"] - counts["harness_error"]
    return {
        "tasks": len(results),
        **counts,
        "resolved_pct": round(100 * counts["resolved"] / len(results), 1) if results else 0,
        "resolved_of_buildable_pct": round(100 * counts["resolved"] / buildable, 1)
        if buildable
        else 0.0,
        "prompt_tokens": sum(r.prompt_tokens for r in results),
        "completion_tokens": sum(r.completion_tokens for r in results),
        "cached_tokens": sum(r.cached_tokens for r in results),
    }
