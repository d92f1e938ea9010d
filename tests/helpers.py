"""Helpers for building real git repositories and scripts in tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from bot.receiver.signature import sign

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    ).stdout


def make_repo(path: Path, files: dict[str, str | bytes]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def step(*calls: dict[str, Any], content: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"tool_calls": list(calls), **extra}
    if content is not None:
        out["content"] = content
    return out


BUGGY_REPO: dict[str, str | bytes] = {
    "mathlib.py": "def double(x):\n    return x + x + 1\n",
    "tests/test_mathlib.py": (
        "from mathlib import double\n\n\n"
        "def test_double():\n    assert double(2) == 4\n\n\n"
        "def test_double_zero():\n    assert double(0) == 0\n"
    ),
    "conftest.py": "",
    ".qwenfix.yml": "test: python -m pytest -q\n",
}

ISSUE = "double() is wrong: double(2) gives 5. test_double fails."


def cli_env(**extra: str) -> dict[str, str]:
    """This environment with `extra`, and this venv's commands (`qwenfix`) first on PATH."""
    return {
        **os.environ,
        **extra,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }


def fix(
    repo: Path, server: Any, backend: Any, settings: Any, issue: str = ISSUE, number: int | None = 7
) -> Any:
    """`run_fix` on `repo` with the scripted model `server`, as the CLI would run it."""
    from workers.engine.fix import FixRequest, run_fix
    from workers.engine.llm.client import OpenAICompatibleModel

    settings.llm_base_url = server.base_url if server else settings.llm_base_url
    with OpenAICompatibleModel(
        base_url=settings.llm_base_url, model="qwen", max_retries=2, backoff_s=0.01, timeout_s=30
    ) as model:
        return run_fix(
            FixRequest(repo=repo, issue=issue, issue_number=number),
            model=model,
            backend=backend,
            settings=settings,
            model_name="qwen",
        )


def branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--list", "qwenfix/*", "--format=%(refname:short)").split()


FIX_STEPS = [
    step(call("view", path="mathlib.py")),
    step(call("str_replace", path="mathlib.py", old_str="x + x + 1", new_str="x * 2")),
    step(call("run_tests")),
    step(call("submit", summary="double() added one too many.", title="Fix double()")),
]


def wheel(name: str, version: str, module: str) -> bytes:
    """A pure-Python wheel of one module `name` (for a package index made of files)."""
    import base64
    import hashlib
    import io
    import zipfile

    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": module,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: qwenfix-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{path},sha256={digest.decode()},{len(data)}")
            archive.writestr(path, data)
        archive.writestr(f"{dist}/RECORD", "\n".join([*record, f"{dist}/RECORD,,"]) + "\n")
    return buffer.getvalue()


def send_body(handler: Any, body: bytes, kind: str) -> None:
    """A 200 answer of `body` from a `http.server` handler."""
    handler.send_response(200)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return value


def deliver(
    url: str, secret: str, event: str, payload: dict[str, Any], delivery: str
) -> httpx.Response:
    """A signed webhook delivery, as GitHub sends it."""
    raw = json.dumps(payload).encode()
    return httpx.post(
        f"{url}/webhook",
        content=raw,
        timeout=10,
        headers={
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(secret, raw),
            "Content-Type": "application/json",
        },
    )


def start_worker(
    env: dict[str, str], log_path: Path, queues: str = "quick,agent"
) -> subprocess.Popen[str]:
    """A real `qwenfix worker` on the threads pool (it starts faster than prefork; the
    deployment's prefork pool has its own tests), its output appended to `log_path`."""
    with open(log_path, "a") as log:  # the child holds its own copy of it
        return subprocess.Popen(
            [
                str(Path(sys.executable).parent / "qwenfix"),
                "worker",
                "--queues",
                queues,
                "--pool",
                "threads",
                "--concurrency",
                "2",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )


def stop_process(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    process.send_signal(sig)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def make_receiver(database: str, redis_url: str, secret: str) -> tuple[Any, Any]:
    """(JobStore, Receiver) on a fresh, migrated database; the API token is "t"."""
    from bot.contract.db import make_engine, migrate
    from bot.contract.store import JobStore
    from bot.receiver.app import Receiver
    from bot.receiver.enqueue import RedisJobQueue
    from bot.receiver.ledger import DeliveryLedger
    from bot.receiver.metrics import ReceiverMetrics
    from bot.settings import BotSettings

    engine = make_engine(database)
    migrate(engine)
    store = JobStore(engine)
    settings = BotSettings(
        webhook_secret=[secret],
        api_token="t",  # type: ignore[arg-type]
        redis_url=redis_url,
        database_url=database,
    )
    return store, Receiver(
        settings=settings,
        store=store,
        ledger=DeliveryLedger.from_url(redis_url, 3600),
        queue=RedisJobQueue.from_url(redis_url, "quick"),
        metrics=ReceiverMetrics(),
    )


def worker_env(
    tmp: Path,
    *,
    redis_url: str,
    database: str,
    fake: Any,
    github_url: str,
    model_url: str,
    **extra: str,
) -> dict[str, str]:
    """The environment of a worker (or beat, or CLI) process against the fake GitHub and
    the scripted model; `extra` adds QWENFIX_ settings by their lowercase names."""
    from .conftest import SANDBOX_IMAGE

    return {
        **os.environ,
        "QWENFIX_REDIS_URL": redis_url,
        "QWENFIX_DATABASE_URL": database,
        "QWENFIX_GITHUB_API_URL": github_url,
        "QWENFIX_GITHUB_APP_ID": str(fake.app_id),
        "QWENFIX_GITHUB_PRIVATE_KEY": fake.private_key_pem,
        "QWENFIX_BOT_LOGIN": fake.bot_login,
        "QWENFIX_LLM_BASE_URL": model_url,
        "QWENFIX_LLM_BACKOFF_S": "0.01",
        "QWENFIX_SANDBOX_IMAGE": SANDBOX_IMAGE,
        "QWENFIX_SANDBOX_MEMORY_MB": "1024",
        "QWENFIX_CACHE_DIR": str(tmp / "cache"),
        "QWENFIX_TRAJECTORY_DIR": str(tmp / "trajectories"),
        **{f"QWENFIX_{key.upper()}": value for key, value in extra.items()},
    }


POSTGRES_ADMIN_URL = "postgresql+psycopg://qwenfix:qwenfix@127.0.0.1:5432/qwenfix"


@contextlib.contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A scratch database on the local PostgreSQL (`make test` starts it): its name;
    dropped afterwards, whoever is still connected."""
    import pytest
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not running on 127.0.0.1:5432 ({exc}); run `make test`")
    try:
        yield name
    finally:
        with admin.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM "
                    f"pg_stat_activity WHERE datname = '{name}'"
                )
            )
            connection.execute(sa.text(f'DROP DATABASE "{name}"'))
        admin.dispose()


def qwenfix_eval(tmp_path: Path, tasks: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`qwenfix eval TASKS ARGS` as a user runs it, with nothing of this process's
    environment but the test image and a home, cache and trajectories in `tmp_path`."""
    from .conftest import SANDBOX_IMAGE

    return subprocess.run(
        [str(Path(sys.executable).parent / "qwenfix"), "eval", str(tasks), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "QWENFIX_SANDBOX_IMAGE": SANDBOX_IMAGE,
            "QWENFIX_SANDBOX_MEMORY_MB": "1024",
            "QWENFIX_CACHE_DIR": str(tmp_path / "cache"),
            "QWENFIX_TRAJECTORY_DIR": str(tmp_path / "trajectories"),
        },
    )
