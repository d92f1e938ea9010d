"""The deployment's parts as real processes: the health probe of a worker and of beat
(their heartbeats in Redis), the prefork pool killing a job at its hard time limit,
`qwenfix migrate` before a receiver that no longer migrates, git against a server that
never answers, and the doctor's checks of workers, pools and beat."""

from __future__ import annotations

import ast
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from celery import Celery
from pydantic import SecretStr

from bot.contract.db import make_engine, schema_revisions
from bot.serve import build_receiver
from bot.settings import BotSettings
from tests.conftest import fresh_redis
from workers.cli.doctor import Failed, check_beat, check_database, check_time_limits, check_workers
from workers.engine.git import GitTimeout, git
from workers.github.remote import LOW_SPEED_TIME_S, fetch, token_env
from workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
QWENFIX = str(Path(sys.executable).parent / "qwenfix")


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def qwenfix(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QWENFIX, *args], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def base_env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "QWENFIX_REDIS_URL": redis_url,
        "QWENFIX_DATABASE_URL": f"sqlite:///{tmp_path / 'jobs.db'}",
        "QWENFIX_SANDBOX_BACKEND": "local",
        "PYTHONPATH": str(ROOT),
    }


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [QWENFIX, *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen[bytes], log: Path) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    print(log.read_text()[-4000:])
    return code


@pytest.fixture
def quick_worker(tmp_path: Path) -> Iterator[tuple[dict[str, str], subprocess.Popen[bytes]]]:
    """`qwenfix worker --queues quick` as a deployment starts it (prefork), with a task
    that overruns its limits importable."""
    redis_url, _ = fresh_redis(12)
    env = base_env(redis_url, tmp_path)
    env["QWENFIX_METRICS_PORT"] = str(free_port())
    log = tmp_path / "worker.log"
    worker = start(
        [
            "worker",
            "--queues",
            "quick",
            "--concurrency",
            "1",
            "-I",
            "tests.integration.overrun_task",
        ],
        env,
        log,
    )
    try:
        wait_for(
            lambda: qwenfix("health", "worker", env=env).returncode == 0,
            "the worker's heartbeat",
        )
        yield env, worker
    finally:
        if worker.poll() is None:
            stop(worker, log)


def test_the_health_probe_follows_a_real_prefork_worker(
    quick_worker: tuple[dict[str, str], subprocess.Popen[bytes]],
) -> None:
    env, worker = quick_worker
    healthy = qwenfix("health", "worker", "--queues", "quick", env=env)
    assert healthy.returncode == 0, healthy.stdout
    assert "consuming quick (prefork pool, time limits enforced)" in healthy.stdout
    wrong = qwenfix("health", "worker", "--queues", "agent", env=env)
    assert wrong.returncode == 1 and "consumes agent" in wrong.stdout

    settings = WorkerSettings(redis_url=env["QWENFIX_REDIS_URL"])
    assert "prefork pool" in check_time_limits(settings)
    with pytest.raises(Failed) as missing:
        check_workers(settings)
    assert "no worker consumes the agent queue" in missing.value.detail
    assert "--queues agent" in missing.value.fix

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    # A worker that stopped says so at once (its heartbeat is removed, not left to expire).
    gone = qwenfix("health", "worker", env=env)
    assert gone.returncode == 1 and "no worker on" in gone.stdout


def test_a_job_past_its_hard_time_limit_is_killed_and_the_pool_goes_on(
    quick_worker: tuple[dict[str, str], subprocess.Popen[bytes]],
) -> None:
    env, worker = quick_worker
    url = env["QWENFIX_REDIS_URL"]
    broker = redis.Redis.from_url(url)  # the fixture's database, heartbeat and all
    celery = Celery("sender", broker=url, set_as_current=False)
    started = time.monotonic()
    celery.send_task(
        "qwenfix.test.overrun",
        args=[url, 30],
        queue="quick",
        soft_time_limit=1,
        time_limit=3,
    )
    wait_for(lambda: broker.hget("overrun", "pid") is not None, "the task to start")
    pid = int(broker.hget("overrun", "pid"))  # type: ignore[arg-type]

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    wait_for(lambda: not alive(pid), "the pool process to be killed", timeout=20)
    killed_after = time.monotonic() - started
    assert broker.hget("overrun", "soft") == b"1"  # the soft limit came first
    assert broker.hget("overrun", "finished") is None  # and it never finished
    assert killed_after < 15  # at its 3 s hard limit, not its 30 s of work
    # The worker replaced the process and takes the next job.
    celery.send_task("qwenfix.test.quick", args=[url], queue="quick")
    wait_for(lambda: broker.hget("overrun", "quick_pid") is not None, "the next job")
    assert int(broker.hget("overrun", "quick_pid")) != pid  # type: ignore[arg-type]
    assert worker.poll() is None
    assert qwenfix("health", "worker", env=env).returncode == 0
    # What the pool's processes counted, the main process serves (prefork metrics).
    metrics = httpx.get(f"http://127.0.0.1:{env['QWENFIX_METRICS_PORT']}/metrics", timeout=10)
    assert 'qwenfix_jobs_finished_total{kind="test",status="ok"} 1.0' in metrics.text
    assert 'qwenfix_queue_depth{queue="quick"} 0.0' in metrics.text


def test_the_health_probe_and_the_doctor_follow_a_real_beat(tmp_path: Path) -> None:
    redis_url, _ = fresh_redis(15)
    env = base_env(redis_url, tmp_path)
    settings = WorkerSettings(redis_url=redis_url)
    assert qwenfix("health", "beat", env=env).returncode == 1
    with pytest.raises(Failed) as absent:
        check_beat(settings)
    assert "no beat holds the lease" in absent.value.detail
    log = tmp_path / "beat.log"
    beat = start(["beat"], env, log)
    try:
        wait_for(lambda: qwenfix("health", "beat", env=env).returncode == 0, "beat's heartbeat")
        healthy = qwenfix("health", "beat", env=env)
        assert "leads" in healthy.stdout
        assert "holds the lease" in check_beat(settings)
    finally:
        assert stop(beat, log) == 0
    assert qwenfix("health", "beat", env=env).returncode == 1


def test_the_image_probe_checks_what_the_main_process_runs(tmp_path: Path) -> None:
    from workers.cli.health import main_process_role, role_of

    assert role_of(["/opt/qwenfix/bin/python", "/opt/qwenfix/bin/qwenfix", "beat"]).name == "beat"
    served = role_of(["/opt/qwenfix/bin/qwenfix", "serve", "--host", "0.0.0.0", "--port", "9000"])
    assert (served.name, served.port) == ("serve", 9000)
    worker = role_of(["qwenfix", "worker", "--queues=agent", "--concurrency", "2"])
    assert (worker.name, worker.queues) == ("worker", ("agent",))
    assert role_of(["qwenfix", "migrate"]).name is None
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/usr/bin/python3\0/usr/local/bin/qwenfix\0worker\0--queues\0quick\0")
    assert main_process_role(cmdline).queues == ("quick",)


def test_migrate_runs_once_and_the_receiver_can_leave_it_alone(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    env = {**os.environ, "QWENFIX_DATABASE_URL": database}
    before = qwenfix("migrate", "--check", env=env)
    assert before.returncode == 1 and "the schema is at nothing" in before.stdout
    # The deployment's receivers start with QWENFIX_MIGRATE_ON_START=false: they do not
    # touch the schema (two replicas would race).
    settings = BotSettings(
        webhook_secret=[SecretStr("s")],
        api_token=SecretStr("t"),
        database_url=database,
        migrate_on_start=False,
    )
    build_receiver(settings)
    assert schema_revisions(make_engine(database))[0] is None
    with pytest.raises(Failed) as behind:
        check_database(WorkerSettings(database_url=database))
    assert "qwenfix migrate" in behind.value.fix

    done = qwenfix("migrate", env=env)
    current, head = schema_revisions(make_engine(database))
    assert done.returncode == 0 and done.stdout.strip() == f"schema {head}"
    assert current == head
    assert qwenfix("migrate", "--check", env=env).returncode == 0
    assert qwenfix("migrate", env=env).returncode == 0  # again: nothing to do
    assert check_database(WorkerSettings(database_url=database)) == f"schema {head}"
    # Embedded use keeps migrating on start (the default).
    fresh = f"sqlite:///{tmp_path / 'embedded.db'}"
    build_receiver(settings.model_copy(update={"database_url": fresh, "migrate_on_start": True}))
    assert schema_revisions(make_engine(fresh))[0] == head


def test_migrate_says_when_the_database_is_unreachable(tmp_path: Path) -> None:
    env = {**os.environ, "QWENFIX_DATABASE_URL": "postgresql+psycopg://u:secret@127.0.0.1:1/x"}
    done = qwenfix("migrate", "--check", "--wait", "1", env=env)
    assert done.returncode == 2 and "cannot read the schema" in done.stderr
    assert "secret" not in done.stderr


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    closing = threading.Event()

    def accept() -> None:
        while not closing.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/octo/hello.git"
    finally:
        closing.set()
        listener.close()
        for connection in held:
            connection.close()


def test_a_fetch_from_a_server_that_never_answers_ends_within_its_timeout(
    tmp_path: Path, silent_server: str
) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    git(checkout, "init", "-q")
    os.environ.setdefault("NO_PROXY", "127.0.0.1")
    started = time.monotonic()
    with pytest.raises(GitTimeout) as stopped:
        fetch(checkout, silent_server, "main", SecretStr("t0ken"), timeout_s=3)
    elapsed = time.monotonic() - started
    assert 3 <= elapsed < 10
    assert "did not finish within 3s and was stopped" in str(stopped.value)
    assert "t0ken" not in str(stopped.value)
    # Nothing of git is left running (its helpers went with it).
    leftover = subprocess.run(
        ["pgrep", "-f", silent_server], capture_output=True, text=True, check=False
    )
    assert leftover.stdout.strip() == ""
    # And a transfer that stalls part-way is ended by git itself, whatever the timeout.
    env = token_env(None)
    assert env["GIT_HTTP_LOW_SPEED_TIME"] == str(LOW_SPEED_TIME_S)
    assert int(env["GIT_HTTP_LOW_SPEED_LIMIT"]) > 0
    assert token_env(SecretStr("x")).items() >= env.items()


HTTP_CLIENTS = {"Client", "AsyncClient", "get", "post", "put", "request", "stream"}


def test_every_http_client_in_the_product_has_a_timeout() -> None:
    """httpx clients and calls, githubkit clients and urllib's urlopen in bot/, workers/
    and sandbox/ each name a timeout: no call can wait forever on a silent server."""
    missing = []
    for path in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("workers/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not isinstance(
                node.func, ast.Attribute | ast.Name
            ):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id
            owner = (
                func.value.id
                if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                else ""
            )
            http = (owner == "httpx" and name in HTTP_CLIENTS) or name in ("GitHub", "urlopen")
            if http and not any(k.arg == "timeout" for k in node.keywords):
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {owner}.{name}")
    assert missing == []
