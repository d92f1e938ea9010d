"""The `qwenfix` command line. Concrete classes are built here, at the entry point."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from workers.cli.config_check import config_app
from workers.settings import WorkerSettings

if TYPE_CHECKING:  # the commands import what they need, so `qwenfix pack` starts fast
    from bot.contract.store import JobStore
    from workers.engine.fix import FixResult

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="qwenfix: fixes repositories with Qwen3-Coder, verified by their tests.",
)


def _logging(verbose: bool) -> None:
    from bot.contract.logs import configure_logging

    configure_logging(WorkerSettings().log_format, logging.DEBUG if verbose else logging.INFO)


def print_result(result: FixResult, as_json: bool) -> None:
    if as_json:
        out = result.model_dump(
            include={
                "status",
                "reason",
                "branch",
                "commit",
                "diff",
                "turns",
                "trajectory",
                "title",
                "summary",
                "red_baseline",
                "pr_description_path",
                "duration_s",
                "test_changes",
            }
        )
        out["usage"] = result.usage.model_dump()
        for key in ("tests_before", "tests_after", "tests_as_diff"):
            tests = getattr(result, key)
            out[key] = (
                None
                if tests is None
                else {
                    "exit_code": tests.exit_code,
                    "summary": tests.summary,
                    "output_tail": tests.output_tail,
                    "failing": tests.failing,
                }
            )
        typer.echo(json.dumps(out, indent=2))
        return
    colour = {
        "resolved": "green",
        "unresolved": "yellow",
        "unverified": "yellow",
        "context_full": "yellow",
        "error": "red",
        "nothing-to-do": "green",
    }[result.status]
    typer.secho(f"\n{result.status.upper()}: {result.reason}", fg=colour, bold=True)
    if result.tests_before:
        after = result.tests_after.summary if result.tests_after else "not run"
        typer.echo(f"tests: {result.tests_before.summary} -> {after}")
    if result.tests_as_diff:
        typer.echo(f"tests with the change's own test edits: {result.tests_as_diff.summary}")
    for change in result.test_changes:
        typer.echo(f"test change: {change}")
    if result.turns:
        u = result.usage
        typer.echo(
            f"turns: {result.turns}; tokens: {u.prompt_tokens} prompt / "
            f"{u.completion_tokens} completion / {u.cached_tokens} cached"
        )
    if result.branch:
        typer.echo(f"branch: {result.branch} ({result.commit})")
        typer.echo(f"pull-request description: {result.pr_description_path}")
    if result.trajectory:
        typer.echo(f"trajectory: {result.trajectory}")


@app.command()
def fix(
    path: Annotated[Path, typer.Argument(help="A local git repository.")],
    issue: Annotated[str | None, typer.Option(help="The issue text.")] = None,
    issue_file: Annotated[
        Path | None, typer.Option(help="Read the issue text from a file.")
    ] = None,
    issue_number: Annotated[int | None, typer.Option(help="Adds a `Fixes #N` line.")] = None,
    title: Annotated[str | None, typer.Option(help="Issue title (used for the branch).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Fix an issue in a local repository: a branch qwenfix/<slug> when the tests pass."""
    _logging(verbose)
    if (issue is None) == (issue_file is None):
        raise typer.BadParameter("give exactly one of --issue and --issue-file")
    text = issue if issue is not None else _read_issue(issue_file)
    if not text.strip():
        raise typer.BadParameter("the issue text is empty")
    from workers.cli.local_fix import execute_fix
    from workers.engine.fix import FixRequest

    result = execute_fix(
        FixRequest(repo=path, issue=text, issue_number=issue_number, title=title), WorkerSettings()
    )
    print_result(result, as_json)
    raise typer.Exit(0 if result.status == "resolved" else 1)


def _read_issue(path: Path | None) -> str:  # also reads --task-file
    if path is None:
        raise typer.BadParameter("--issue-file is required")
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read the issue file {path}: {exc.strerror}") from exc


@app.command()
def demo(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    keep: Annotated[Path | None, typer.Option(help="Create the demo repository here.")] = None,
    local: Annotated[
        bool, typer.Option(help="Without GitHub: `qwenfix fix` on a local copy of the example.")
    ] = False,
) -> None:
    """Fix the bundled example repository end to end: a comment on a fake GitHub becomes a
    pull request (scripted model unless QWENFIX_LLM_BASE_URL points at a real server).
    With --local, the same fix on a local repository, without GitHub."""
    _logging(False)
    try:
        from workers.cli.demo import run_demo
        from workers.cli.github_demo import run_github_demo
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("tests"):
            raise
        # The fake GitHub and the scripted model are test fixtures, kept out of the
        # installed package and the image.
        typer.secho(
            "error: the demo runs from a source checkout (its fake GitHub and "
            "scripted model live in tests/fakes/): git clone the project and run "
            "`make demo`",
            fg="red",
            err=True,
        )
        raise typer.Exit(2) from exc
    if local:
        result = run_demo(keep=keep, echo=typer.echo)
        print_result(result, as_json)
        raise typer.Exit(0 if result.status == "resolved" else 1)
    raise typer.Exit(run_github_demo(typer.echo))


@app.command()
def pack(
    path: Annotated[Path, typer.Argument(help="A local git repository (its working tree).")],
    task: Annotated[str | None, typer.Option(help="What the model will work on.")] = None,
    task_file: Annotated[Path | None, typer.Option(help="Read the task from a file.")] = None,
    budget: Annotated[
        int | None,
        typer.Option(help="Token budget; default: the model's context minus the reserve."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the packed text here.")
    ] = None,
) -> None:
    """Pack a repository into the model's context, exactly within a token budget."""
    from workers.engine.context.pack import BudgetTooSmall, Packer
    from workers.engine.context.sources import WorkingTreeFiles
    from workers.engine.context.tokens import CountCache, TokenCounter
    from workers.engine.git import GitError, is_repository
    from workers.engine.repo_config import CONFIG_FILES, RepoConfigError, load_repo_config

    if task is not None and task_file is not None:
        raise typer.BadParameter("give at most one of --task and --task-file")
    text = task if task is not None else (_read_issue(task_file) if task_file else "")
    if not is_repository(path):
        raise typer.BadParameter(f"{path} is not a git repository")
    settings = WorkerSettings()
    limit = budget if budget is not None else settings.pack_budget()
    started = time.perf_counter()
    try:
        source = WorkingTreeFiles(path)
        present = [p for p in CONFIG_FILES if (path / p).is_file()]
        rules = load_repo_config(present, lambda p: (path / p).read_bytes()).context
        cache = CountCache(settings.cache_dir / "pack.sqlite3")
        try:
            result = Packer(source, rules=rules, cache=cache, counter=TokenCounter()).pack(
                task=text, budget=limit
            )
        finally:
            cache.close()
    except (BudgetTooSmall, RepoConfigError, GitError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    result.report.elapsed_s = round(time.perf_counter() - started, 3)  # listing included
    if output is not None:
        output.write_text(result.text, encoding="utf-8")
    if as_json:
        typer.echo(result.report.model_dump_json(indent=2))
    elif output is None:
        typer.echo(result.text, nl=False)
    counts = result.report.counts()
    typer.secho(
        f"{result.report.tokens} of {limit} tokens in {result.report.elapsed_s:.2f}s: "
        f"{counts['full']} files in full, {counts['outline']} as outlines, "
        f"{counts['omitted']} by name only or left out",
        err=True,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(help="Processes (each with its own event loop).")] = 1,
) -> None:
    """Run the GitHub webhook receiver (POST /webhook, /api/jobs, /healthz, /readyz,
    /metrics)."""
    from bot.contract.logs import configure_logging
    from bot.serve import serve as run_server
    from bot.settings import SettingsError, load_bot_settings

    try:
        settings = load_bot_settings()
    except SettingsError as exc:
        typer.secho(f"error: cannot start: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    configure_logging(settings.log_format)
    run_server(settings, host, port, workers)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(
    ctx: typer.Context,
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume.")] = "quick,agent",
    concurrency: Annotated[int, typer.Option(help="Jobs at once in this worker.")] = 1,
    pool: Annotated[
        str, typer.Option(help="prefork (enforces the time limits), or solo or threads.")
    ] = "prefork",
) -> None:
    """Run a Celery worker for qwenfix jobs (extra arguments go to `celery worker`).
    Prefork by default: a job past its hard time limit is killed with its process, which
    no thread can be."""
    import os
    import tempfile

    from workers.cli.worker_pool import check_pool

    try:
        warning = check_pool(pool)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if warning:
        typer.secho(f"warning: {warning}", fg="yellow", err=True)
    # With JSON logs, no banner either: every line a log collector sees is one record.
    quiet = ["--quiet"] if WorkerSettings().log_format == "json" else []
    with tempfile.TemporaryDirectory(prefix="qwenfix-metrics-") as metrics_dir:
        # Before anything imports prometheus_client, so that the pool's processes keep
        # their counters where the main process sums them (workers/runtime/metrics.py).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        from workers.runtime.celery_app import app as celery

        celery.worker_main(
            [
                *quiet,
                "worker",
                "--loglevel=INFO",
                f"--queues={queues}",
                f"--pool={pool}",
                f"--concurrency={concurrency}",
                *ctx.args,
            ]
        )


@app.command()
def beat(
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run Celery beat: sends the maintenance tick (QWENFIX_MAINTENANCE_TICK_S). Several
    may run; one leads (a Redis lease), the others stand by."""
    from workers.runtime.beat import LeaderScheduler
    from workers.runtime.celery_app import app as celery

    _logging(False)
    settings = WorkerSettings()
    celery.Beat(
        scheduler=LeaderScheduler,
        loglevel=loglevel,
        max_interval=min(settings.beat_lease_s / 3, settings.maintenance_tick_s),
    ).run()


@app.command("migrate")
def migrate_schema(
    check: Annotated[
        bool, typer.Option("--check", help="Only say whether the schema is at the newest.")
    ] = False,
    wait: Annotated[
        float, typer.Option(help="With --check: wait up to this many seconds for it.")
    ] = 0.0,
) -> None:
    """Bring the database (QWENFIX_DATABASE_URL) to the newest schema. Deployments run it
    once before the receiver and the workers start; exit 1 from --check means not yet."""
    from workers.cli.migrate import MigrateError, upgrade, wait_for_head

    url = WorkerSettings().database_url
    try:
        found = wait_for_head(url, wait) if check else upgrade(url)
    except MigrateError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    if found.at_head:
        typer.echo(f"schema {found.head}")
        return
    typer.echo(f"the schema is at {found.current or 'nothing'}, the code needs {found.head}")
    raise typer.Exit(1)


@app.command()
def health(
    role: Annotated[
        str | None,
        typer.Argument(help="serve, worker or beat; default: what PID 1 runs."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="serve: the receiver's port.")] = None,
    queues: Annotated[
        str | None, typer.Option(help="worker: queues it must consume (comma-separated).")
    ] = None,
) -> None:
    """A container's probe: exit 0 when its receiver answers, its worker's heartbeat is
    live, or its beat ticks; 1 (and why) when not."""
    import dataclasses

    from workers.cli.health import ROLES, Role, main_process_role, probe

    if role is not None and role not in ROLES:
        raise typer.BadParameter(f"the role is one of {', '.join(ROLES)}")
    found = main_process_role() if role is None else Role(role)
    if port is not None:
        found = dataclasses.replace(found, port=port)
    if queues is not None:
        found = dataclasses.replace(found, queues=tuple(q for q in queues.split(",") if q))
    verdict = probe(found, WorkerSettings())
    typer.echo(f"{'ok' if verdict.ok else 'unhealthy'}: {verdict.detail}")
    raise typer.Exit(0 if verdict.ok else 1)


@app.command()
def maintain(
    repo: Annotated[str, typer.Argument(help="OWNER/REPO, an installed repository.")],
    task: Annotated[
        str,
        typer.Argument(
            help="A task kind (fix-failing-tests, "
            "update-dependencies, lint-fix, "
            "repair-dependency-prs) or a task's name in "
            "the repository's .qwenfix.yml."
        ),
    ],
    instructions: Annotated[str, typer.Option(help="Extra words for the model.")] = "",
    queue: Annotated[
        bool, typer.Option(help="Hand the job to the workers instead of running it here.")
    ] = False,
) -> None:
    """Run a maintenance task on a repository now, as its schedule would (not counted
    against the daily cap). The run is a job in the jobs API like any other."""
    import uuid

    from bot.contract.db import migrate
    from bot.contract.job import JobKind, JobStatus, Trigger
    from workers.runtime.deps import Deps
    from workers.runtime.tasks import TargetBusy, execute

    _logging(False)
    deps = Deps.build()
    migrate(deps.jobs.engine)
    installation = deps.jobs.installations().get(repo)
    if installation is None:
        typer.secho(
            f"error: {repo} is not an installed repository: no installation of the "
            "App on it has been recorded (the receiver records GitHub's "
            "installation events)",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    job, _ = deps.jobs.create(
        f"cli:{uuid.uuid4().hex}",
        "cli",
        Trigger(
            kind=JobKind.MAINTENANCE,
            repo=repo,
            number=None,
            sender="",
            task=task,
            installation_id=installation,
            instructions=instructions,
        ),
    )
    if queue:
        from workers.runtime.celery_app import app as celery

        celery.send_task("qwenfix.acknowledge", args=[job.id], queue=deps.settings.quick_queue)
        typer.echo(f"job {job.id} queued: {task} on {repo}")
        return
    deps.jobs.set_status(job.id, JobStatus.ACKNOWLEDGED, expected=JobStatus.QUEUED)
    try:
        execute(job.id, deps)
    except TargetBusy as busy:
        deps.jobs.set_status(job.id, JobStatus.SKIPPED, reason=str(busy))
    except Exception:  # recorded on the job by execute(); the log has the traceback
        logging.getLogger(__name__).exception("job %s failed", job.id)
    done = deps.jobs.get(job.id)
    status, reason = (done.status, done.reason) if done else ("missing", "")
    ok = status in ("resolved", "nothing-to-do", "skipped")
    typer.secho(f"job {job.id}: {status}: {reason}", fg="green" if ok else "red")
    raise typer.Exit(0 if ok else 1)


def _store() -> JobStore:
    from bot.contract.db import make_engine, migrate
    from bot.contract.store import JobStore

    store = JobStore(make_engine(WorkerSettings().database_url))
    migrate(store.engine)
    return store


@app.command()
def jobs(
    status: Annotated[str | None, typer.Option(help="Only jobs with this status.")] = None,
    repo: Annotated[str | None, typer.Option(help="Only jobs on OWNER/REPO.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only jobs of this kind.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """The jobs, newest first (from QWENFIX_DATABASE_URL)."""
    from rich.console import Console
    from rich.table import Table

    found = _store().find(status=status, repo=repo, kind=kind, limit=limit)
    if as_json:
        typer.echo(json.dumps([json.loads(j.model_dump_json()) for j in found], indent=2))
        return
    table = Table("job", "status", "kind", "repository", "trigger", "created", "reason")
    for j in found:
        table.add_row(
            str(j.id),
            j.status,
            j.kind + (f" {j.task}" if j.task else ""),
            j.repo + (f"#{j.number}" if j.number else ""),
            j.event + (f" by @{j.sender}" if j.sender else ""),
            f"{j.created_at:%Y-%m-%d %H:%M}",
            (j.reason or "")[:80],
        )
    Console().print(table if found else "no jobs")


@app.command()
def job(
    job_id: Annotated[int, typer.Argument(help="The job's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """One job: trigger, status, pull request, tests, tokens, time, and each turn."""
    from rich.console import Console

    from bot.contract.summary import pull_url, summarise

    store = _store()
    found = store.get(job_id)
    if found is None:
        typer.secho(f"error: there is no job {job_id}", fg="red", err=True)
        raise typer.Exit(2)
    s = summarise(store.records(job_id, 0, 100_000))
    facts = {
        "job": json.loads(found.model_dump_json()),
        "pull_request": pull_url(found.reason),
        "tests": {"before": s.tests_before, "after": s.tests_after},
        "verdict": s.verdict,
        "tokens": {
            "prompt": s.prompt_tokens,
            "completion": s.completion_tokens,
            "cached": s.cached_tokens,
        },
        "model_s": round(s.model_s, 3),
        "sandbox_s": round(s.sandbox_s, 3),
        "turns": [
            {"number": t.number, "text": t.text, "calls": [c.name for c in t.calls]}
            for t in s.turns
        ],
    }
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    console = Console()
    console.print(
        f"[bold]job {found.id}[/bold] {found.kind} on {found.repo}"
        f"{f'#{found.number}' if found.number else ''}: [bold]{found.status}[/bold]"
        f" — {found.reason or ''}",
        highlight=False,
    )
    console.print(
        f"trigger: {found.event}{f' by @{found.sender}' if found.sender else ''}", highlight=False
    )
    console.print(f"pull request: {facts['pull_request'] or '—'}", highlight=False)
    console.print(
        f"tests: {s.tests_before or 'not run'} → {s.tests_after or 'not run'}", highlight=False
    )
    console.print(
        f"tokens: {s.prompt_tokens} prompt ({s.cached_tokens} cached) / "
        f"{s.completion_tokens} completion; {s.model_s:.1f} s model, "
        f"{s.sandbox_s:.1f} s sandbox",
        highlight=False,
    )
    for t in s.turns:
        calls = ", ".join(c.name for c in t.calls) or "no tool call"
        console.print(f"  turn {t.number}: {calls}", highlight=False)


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """Check that this machine can run qwenfix: settings, Redis, the database (its schema
    at the newest), workers on the quick and agent queues (on a pool that enforces time
    limits), beat's lease, sandbox, the model server (its name, window and tool-call
    parser), the GitHub App's key."""
    from workers.cli.doctor import report, run_checks

    checks = run_checks()
    typer.echo(report(checks, as_json))
    raise typer.Exit(0 if all(c.ok for c in checks) else 1)


def _eval_options(
    model: str, specs: str | None, predictions: Path | None, out: Path
) -> Literal["swebench", "none"]:
    """The options checked before any work; the specs to use."""
    from workers.eval.environment_spec import swebench_installed

    if model not in ("server", "oracle", "noop"):
        raise typer.BadParameter("--model is server, oracle or noop")
    if predictions is not None:
        # SWE-bench's loader picks the format by suffix, and the results file is the
        # only record of a run: refuse both mistakes before hours of work, not after.
        if predictions.suffix != ".jsonl":
            raise typer.BadParameter("--predictions must end in .jsonl (SWE-bench reads it so)")
        if predictions.resolve() == out.resolve():
            raise typer.BadParameter("--predictions and --out must be different files")
    if specs is None:
        return "swebench" if swebench_installed() else "none"
    if specs == "none":
        return "none"
    if specs != "swebench":
        raise typer.BadParameter("--specs is swebench or none")
    if not swebench_installed():
        raise typer.BadParameter(
            "--specs swebench needs SWE-bench's package: pip install 'qwenfix[eval]'"
        )
    return "swebench"


def _packages_before(value: str) -> None:
    import datetime

    if value in ("auto", "none"):
        return
    try:
        datetime.date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter("--packages-before is a date (YYYY-MM-DD), none or auto") from exc


@app.command("eval")
def evaluate(
    tasks: Annotated[Path, typer.Argument(help="Tasks in SWE-bench's JSONL format.")],
    model: Annotated[
        str,
        typer.Option(
            help="`server` (QWENFIX_LLM_BASE_URL), or the honesty checks `oracle` and `noop`."
        ),
    ] = "server",
    out: Annotated[
        Path, typer.Option(help="Results, one JSON line per task; an existing file is resumed.")
    ] = Path("eval-results.jsonl"),
    workers: Annotated[int, typer.Option(help="Tasks at once.")] = 1,
    repos: Annotated[
        Path | None, typer.Option(help="Local mirrors: DIR/owner__name or DIR/name.")
    ] = None,
    only: Annotated[str | None, typer.Option(help="Comma-separated instance ids.")] = None,
    specs: Annotated[
        str | None,
        typer.Option(
            help="Where a task's environment comes from when it does not name its own: "
            "`swebench` (SWE-bench's specs, the default when `qwenfix[eval]` is installed) "
            "or `none`."
        ),
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option(
            help="Also write SWE-bench's predictions.jsonl here (every task in the results), "
            "for its harness or sb-cli."
        ),
    ] = None,
    logs: Annotated[
        Path | None,
        typer.Option(help="Keep each task's test output in DIR/INSTANCE_ID/tests.log."),
    ] = None,
    packages_before: Annotated[
        str,
        typer.Option(
            help="Installs see the package index as it was before this date (YYYY-MM-DD), "
            "`none`, or `auto`: SWE-bench's date for environments from its specs."
        ),
    ] = "auto",
) -> None:
    """Measure fix quality: the agent on each task's problem statement, then the task's
    FAIL_TO_PASS and PASS_TO_PASS tests in a fresh sandbox. Prints a line per task and a
    table by repository on stderr, and the summary as JSON on stdout."""
    from contextlib import contextmanager

    from workers.engine.factory import make_backend, make_model
    from workers.eval.models import ReplayModel, noop_script, oracle_script
    from workers.eval.report import (
        Progress,
        already_done,
        model_name,
        summary_table,
        write_predictions,
    )
    from workers.eval.runner import EvalOptions, run_eval, summary
    from workers.eval.tasks import TaskSetError, load_tasks

    _logging(False)
    chosen_specs = _eval_options(model, specs, predictions, out)
    _packages_before(packages_before)
    try:
        chosen = load_tasks(tasks)
    except TaskSetError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    if only:
        chosen = [t for t in chosen if t.instance_id in set(only.split(","))]
    settings = WorkerSettings()

    @contextmanager
    def model_for(task: Any, checkout: Path) -> Any:
        if model == "server":
            with make_model(settings) as served:
                yield served
            return
        yield ReplayModel(
            oracle_script(checkout, task.patch) if model == "oracle" else noop_script()
        )

    resumed = already_done(out, chosen)
    if resumed:
        typer.echo(f"resuming {out}: {resumed} of {len(chosen)} tasks already done", err=True)
    # Progress and the table go to stderr: stdout is the JSON summary alone, for scripts.
    progress = Progress(len(chosen), resumed=resumed, workers=workers)
    results = run_eval(
        chosen,
        out,
        model_for=model_for,
        backend=make_backend(settings),
        settings=settings,
        options=EvalOptions(
            mirrors=repos, specs=chosen_specs, logs=logs, packages_before=packages_before
        ),
        workers=workers,
        progress=lambda r: typer.echo(progress.line(r), err=True),
    )
    if predictions is not None:
        write_predictions(predictions, results, model_name(model, settings.llm_model))
        typer.echo(f"predictions: {predictions} ({len(results)} tasks)", err=True)
    typer.echo(summary_table(results, chosen), err=True)
    figures = summary(results)
    typer.echo(json.dumps(figures, indent=2))
    raise typer.Exit(0)


model_app = typer.Typer(no_args_is_help=True, help="Serving the model (vLLM).")
app.add_typer(model_app, name="model")
app.add_typer(config_app, name="config")


@model_app.command("serve")
def model_serve(
    model: Annotated[
        str, typer.Option(help="The model to serve.")
    ] = "Qwen/Qwen3-Coder-30B-A3B-Instruct",
    gpus: Annotated[int, typer.Option(help="GPUs on this machine to use.")] = 1,
    max_context: Annotated[
        int, typer.Option(help="262144 (native) or up to 1048576 (YaRN).")
    ] = 262_144,
    port: Annotated[int, typer.Option(help="Port of the OpenAI-compatible API.")] = 8000,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the command only.")] = False,
) -> None:
    """Start `vllm serve` with the flags qwenfix needs for this model and GPU count
    (tool-call parser, prefix caching, cached-token counts, parallelism, context).
    Needs the `gpu` extra: pip install 'qwenfix[gpu]'."""
    import os
    import shutil

    from workers.cli.model_serving import ServingError, vllm_command

    try:
        command = vllm_command(model, gpus=gpus, max_context=max_context, port=port)
    except ServingError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(command.shell())
    if dry_run:
        return
    if shutil.which("vllm") is None:
        typer.secho(
            "error: vllm is not installed here: pip install 'qwenfix[gpu]' (on a "
            "machine with NVIDIA GPUs and CUDA), or use deploy/compose.yaml, which "
            "runs vLLM's own image",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    os.execvpe("vllm", command.argv, {**os.environ, **command.env})


def main() -> None:
    app()


if __name__ == "__main__":
    main()
