"""`qwenfix doctor` against real Redis, SQLite, Docker, the fake GitHub and the scripted
model (with and without the server's tool-call parser): each problem with its fix."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from bot.contract.db import make_engine, migrate
from bot.embedded import ThreadedServer
from tests.conftest import SANDBOX_IMAGE, fresh_redis
from tests.fakes.github import FakeGitHub
from tests.fakes.model_server import ScriptedModelServer
from tests.helpers import call, step
from workers.cli.doctor import Failed, check_beat, check_time_limits, check_workers, run_checks
from workers.runtime.beat import BeatLease
from workers.runtime.heartbeat import Heartbeat
from workers.settings import WorkerSettings

PROBE = [step(call("qwenfix_probe"))]


@pytest.fixture
def machine(tmp_path: Path, docker_client: Any) -> Iterator[tuple[WorkerSettings, FakeGitHub]]:
    redis_url, _ = fresh_redis(5)
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    migrate(make_engine(database))
    fake = FakeGitHub()
    with ThreadedServer(fake.asgi()) as github:
        fake.base_url = github.url
        yield (
            WorkerSettings(
                redis_url=redis_url,
                database_url=database,
                sandbox_image=SANDBOX_IMAGE,
                github_api_url=github.url,
                github_app_id=fake.app_id,
                github_private_key=SecretStr(fake.private_key_pem),
            ),
            fake,
        )
    fake.close()


def by_name(settings: WorkerSettings) -> dict[str, Any]:
    return {c.name: c for c in run_checks(settings)}


def running_parts(redis_url: str, pool: str = "prefork") -> None:
    """Heartbeats as a quick worker, an agent worker and the leading beat write them."""
    client = redis.Redis.from_url(redis_url)
    for queue in ("quick", "agent"):
        Heartbeat(
            client, f"celery@{queue}", [queue], 2, pool=pool, time_limits=pool == "prefork"
        ).beat()
    lease = BeatLease(client, "beat-1", 30)
    assert lease.hold()
    lease.alive(True)


def test_a_ready_machine_passes_every_check(
    machine: tuple[WorkerSettings, FakeGitHub], tmp_path: Path
) -> None:
    settings, fake = machine
    running_parts(settings.redis_url)
    with ScriptedModelServer({"steps": PROBE}) as model:
        env = {
            "QWENFIX_REDIS_URL": settings.redis_url,
            "QWENFIX_DATABASE_URL": settings.database_url,
            "QWENFIX_SANDBOX_IMAGE": SANDBOX_IMAGE,
            "QWENFIX_SANDBOX_ECOSYSTEM_IMAGE": "qwenfix-sandbox-absent:{ecosystems}",
            "QWENFIX_LLM_BASE_URL": model.base_url,
            "QWENFIX_GITHUB_API_URL": settings.github_api_url,
            "QWENFIX_GITHUB_APP_ID": str(fake.app_id),
            "QWENFIX_GITHUB_PRIVATE_KEY": fake.private_key_pem,
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
        }
        done = subprocess.run(
            [str(Path(sys.executable).parent / "qwenfix"), "doctor", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        checks = {c["name"]: c for c in json.loads(done.stdout)}
        assert all(c["ok"] for c in checks.values())
        # Which ecosystems' images the worker has, against a template naming none here.
        assert checks["sandbox"]["detail"] == (
            f"Docker engine, image {SANDBOX_IMAGE}; ecosystem images: none (none for node, "
            "go, rust, jvm: scripts/build-ecosystem-image.sh or "
            "deploy/sandbox/Dockerfile.ECOSYSTEM builds them)"
        )
        assert checks["model"]["detail"] == (
            "Qwen/Qwen3-Coder-30B-A3B-Instruct, window 262144, tool calls parsed by the server "
            "(a forced call: this tells the protocol and the parser work, not how well the "
            "model chooses)"
        )
        assert checks["github"]["detail"].startswith(f"App qwenfix (id {fake.app_id})")
        assert checks["database"]["detail"] == "schema 0004"
        assert checks["workers"]["detail"] == "quick: celery@quick; agent: celery@agent"
        assert checks["time-limits"]["detail"].startswith("2 worker(s) on the prefork pool")
        assert checks["beat"]["detail"] == "beat-1 holds the lease"
        # The test Redis keeps nothing on disk; the operator is told what that means.
        assert "not persistent" in checks["redis"]["detail"]
        assert "--appendonly yes" in checks["redis"]["detail"]
        probe = model.requests[0]
        assert probe["tools"][0]["function"]["name"] == "qwenfix_probe"
        assert probe["tool_choice"] == {"type": "function", "function": {"name": "qwenfix_probe"}}


def test_a_server_without_the_tool_parser_is_named_with_the_fix(
    machine: tuple[WorkerSettings, FakeGitHub],
) -> None:
    settings, _ = machine
    with ScriptedModelServer({"mode": "raw", "steps": PROBE}) as model:
        settings.llm_base_url = model.base_url
        check = by_name(settings)["model"]
    assert not check.ok and "qwen3_coder parser is off" in check.detail
    assert "--enable-auto-tool-choice --tool-call-parser qwen3_coder" in check.fix


def test_each_broken_part_says_what_to_do(
    machine: tuple[WorkerSettings, FakeGitHub], tmp_path: Path
) -> None:
    settings, _ = machine
    with ScriptedModelServer({"steps": PROBE}, model="some/other-model") as model:
        broken = settings.model_copy(
            update={
                "redis_url": "redis://127.0.0.1:1/0",
                "sandbox_image": "qwenfix-sandbox:missing",
                "database_url": f"sqlite:///{tmp_path / 'absent.db'}",
                "llm_base_url": model.base_url,
                "github_private_key": SecretStr(FakeGitHub().private_key_pem),
            }
        )
        checks = by_name(broken)
    assert "cannot reach redis://127.0.0.1:1/0" in checks["redis"].detail
    assert "ensure-redis" in checks["redis"].fix
    assert checks["database"].detail.startswith("there is no database file")
    assert not (tmp_path / "absent.db").exists()  # the doctor changes nothing
    assert "docker build -t qwenfix-sandbox:missing deploy/sandbox" in checks["sandbox"].fix
    assert (
        "serves some/other-model, not Qwen/Qwen3-Coder-30B-A3B-Instruct" in checks["model"].detail
    )
    assert checks["github"].detail == "GitHub refused the App's key (401)"
    assert all(not checks[n].ok for n in ("redis", "database", "sandbox", "model", "github"))

    short = settings.model_copy(update={"llm_context_tokens": 1_048_576})
    with ScriptedModelServer({"steps": PROBE}) as model:
        short.llm_base_url = model.base_url
        check = by_name(short)["model"]
    assert "window is 262144 tokens; qwenfix is set to fill 1048576" in check.detail
    assert "QWENFIX_LLM_CONTEXT_TOKENS=262144" in check.fix


def test_a_refusal_that_is_not_the_parsers_is_not_blamed_on_it(
    machine: tuple[WorkerSettings, FakeGitHub],
) -> None:
    settings, _ = machine
    # A window too small for the probe itself: refused, but not for want of a parser.
    with ScriptedModelServer({"steps": PROBE}, max_model_len=300) as model:
        tiny = settings.model_copy(update={"llm_base_url": model.base_url})
        tiny.llm_context_tokens = 300
        check = by_name(tiny)["model"]
    assert not check.ok
    assert check.detail.startswith("the server refused the probe request (HTTP 400: ")
    assert "maximum context length is 300 tokens" in check.detail
    assert "parser is off" not in check.detail
    assert "--enable-auto-tool-choice --tool-call-parser qwen3_coder" in check.fix


def test_workers_on_a_pool_without_time_limits_and_a_missing_beat_are_named() -> None:
    """Without Docker or a model: the checks of what runs, from the heartbeats alone."""
    redis_url, client = fresh_redis(5)
    settings = WorkerSettings(redis_url=redis_url)
    with pytest.raises(Failed) as nobody:
        check_workers(settings)
    assert "no worker consumes the quick and agent queues" in nobody.value.detail
    Heartbeat(client, "celery@both", ["agent", "quick"], 2, pool="threads").beat()
    assert check_workers(settings) == "quick: celery@both; agent: celery@both"
    with pytest.raises(Failed) as loose:
        check_time_limits(settings)
    assert "celery@both (threads pool)" in loose.value.detail
    assert "prefork" in loose.value.fix
    with pytest.raises(Failed) as no_beat:
        check_beat(settings)
    assert "start `qwenfix beat`" in no_beat.value.fix
    # A lease whose holder stopped ticking (killed before it could let go).
    client.set("qwenfix:beat:leader", "gone-beat", ex=30)
    with pytest.raises(Failed) as stale:
        check_beat(settings)
    assert "held by gone-beat, which has not ticked" in stale.value.detail
