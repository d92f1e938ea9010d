"""`qwenfix doctor`: is this machine ready to run qwenfix? Each check says ok, or what is
wrong and the exact fix. Nothing is changed; only the model gets one small request."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from workers.settings import WorkerSettings

PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "qwenfix_probe",
        "description": "Report that tools work.",
        "parameters": {"type": "object", "properties": {}},
    },
}
# Named, so that the server's guided decoding makes the call whatever the weights (a test
# server with random weights, a model that would rather talk): the check is of the
# protocol and the parser, not of the model's judgement.
PROBE_CHOICE = {"type": "function", "function": {"name": "qwenfix_probe"}}
SERVE_FLAGS = "--enable-auto-tool-choice --tool-call-parser qwen3_coder"


class Check(BaseModel):
    name: str
    ok: bool
    detail: str
    fix: str = ""


class Failed(Exception):
    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix


def check_redis(settings: WorkerSettings) -> str:
    import redis

    client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=3, decode_responses=True
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        raise Failed(
            f"cannot reach {settings.redis_url}: {exc}",
            "start Redis (scripts/ensure-redis.sh here; the redis service in "
            "deploy/compose.yaml) or set QWENFIX_REDIS_URL",
        ) from exc
    try:
        config: dict[str, str] = {
            **client.config_get("appendonly"),  # type: ignore[dict-item]
            **client.config_get("save"),  # type: ignore[dict-item]
        }
    except redis.RedisError:  # CONFIG is often disabled on managed Redis
        return settings.redis_url
    if config.get("appendonly") == "yes":
        return f"{settings.redis_url} (persistent: appendonly)"
    if config.get("save"):
        return (
            f"{settings.redis_url} (snapshots only: a crash loses recent queued jobs "
            f"until they are sent again after QWENFIX_REQUEUE_AFTER_S)"
        )
    return (
        f"{settings.redis_url} (not persistent: a restart loses queued jobs until they "
        f"are sent again after QWENFIX_REQUEUE_AFTER_S; run it with --appendonly yes)"
    )


def check_database(settings: WorkerSettings) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from bot.contract.db import make_engine, schema_revisions

    url = make_url(settings.database_url)
    path = url.database or ""
    if (
        url.get_backend_name() == "sqlite"
        and path not in ("", ":memory:")
        and not Path(path).exists()
    ):  # opening it would create it
        raise Failed(
            f"there is no database file {path}",
            "run `qwenfix migrate` (it creates and migrates it), or set QWENFIX_DATABASE_URL",
        )
    try:
        current, head = schema_revisions(make_engine(settings.database_url))
    except SQLAlchemyError as exc:
        raise Failed(
            f"cannot open {settings.database_url}: {exc}",
            "start the database or set QWENFIX_DATABASE_URL "
            "(postgresql+psycopg://user:password@host/db)",
        ) from exc
    if current != head:
        raise Failed(
            f"the schema is at {current or 'nothing'}, the code needs {head}",
            "run `qwenfix migrate` (the deployment's migrate job) before the receiver "
            "and the workers",
        )
    return f"schema {head}"


def check_sandbox(settings: WorkerSettings) -> str:
    if settings.sandbox_backend == "local":
        import shutil

        if shutil.which("bwrap") is None:
            raise Failed("bubblewrap is not installed", "apt-get install bubblewrap")
        return "bubblewrap (local backend)"
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise Failed(
            f"no Docker engine: {exc}", "start dockerd, or point DOCKER_HOST at the sandbox host"
        ) from exc
    try:
        client.images.get(settings.sandbox_image)
    except docker.errors.ImageNotFound as exc:
        raise Failed(
            f"the sandbox image {settings.sandbox_image} is missing",
            f"docker build -t {settings.sandbox_image} deploy/sandbox "
            "(or `make image` without a registry)",
        ) from exc
    return f"Docker engine, image {settings.sandbox_image}; {_ecosystem_images(client, settings)}"


def _ecosystem_images(client: Any, settings: WorkerSettings) -> str:
    """Which ecosystems' images are here: not a failure when some are missing (a worker
    may serve Python only), but the operator sees it before a job says so."""
    import docker

    found, missing = [], []
    for ecosystem in ("node", "go", "rust", "jvm"):
        image = settings.sandbox_ecosystem_image.format(ecosystems=ecosystem)
        try:
            client.images.get(image)
            found.append(ecosystem)
        except docker.errors.ImageNotFound:
            missing.append(ecosystem)
    listed = f"ecosystem images: {', '.join(found) or 'none'}"
    if missing:
        listed += (
            f" (none for {', '.join(missing)}: scripts/build-ecosystem-image.sh or "
            "deploy/sandbox/Dockerfile.ECOSYSTEM builds them)"
        )
    return listed


def check_model(settings: WorkerSettings) -> str:
    headers = {"Authorization": f"Bearer {settings.llm_api_key}"}
    base = settings.llm_base_url.rstrip("/")
    try:
        with httpx.Client(timeout=30, headers=headers) as client:
            models = client.get(f"{base}/models")
            models.raise_for_status()
            served = {m.get("id"): m for m in models.json().get("data", [])}
            if settings.llm_model not in served:
                raise Failed(
                    f"{base} serves {', '.join(map(str, served)) or 'no model'}, "
                    f"not {settings.llm_model}",
                    "set QWENFIX_LLM_MODEL to the served name, or serve it "
                    "(`qwenfix model serve --dry-run` prints the command)",
                )
            window = served[settings.llm_model].get("max_model_len")
            if isinstance(window, int) and window < settings.llm_context_tokens:
                raise Failed(
                    f"the server's window is {window} tokens; qwenfix is set to "
                    f"fill {settings.llm_context_tokens}",
                    f"set QWENFIX_LLM_CONTEXT_TOKENS={window}, or serve with "
                    f"--max-model-len {settings.llm_context_tokens}",
                )
            answer = client.post(
                f"{base}/chat/completions",
                json={
                    "model": settings.llm_model,
                    "max_tokens": 200,
                    "temperature": 0,
                    "tools": [PROBE_TOOL],
                    "tool_choice": PROBE_CHOICE,
                    "messages": [{"role": "user", "content": "Call the qwenfix_probe tool."}],
                },
            )
            refused = 400 <= answer.status_code < 500
            if refused and "parser" not in answer.text.lower():
                raise Failed(
                    f"the server refused the probe request (HTTP {answer.status_code}: "
                    f"{answer.text[:200]})",
                    f"check that it is vLLM serving a Qwen3-Coder model with {SERVE_FLAGS}",
                )
            if refused:
                # vLLM refuses a named tool choice when served without a tool parser
                # ("... requires --tool-call-parser to be set").
                raise Failed(
                    "the server refused a forced tool call: its qwen3_coder parser is off "
                    f"(HTTP {answer.status_code}: {answer.text[:200]})",
                    f"restart vLLM with {SERVE_FLAGS}",
                )
            answer.raise_for_status()
    except httpx.HTTPError as exc:
        raise Failed(
            f"cannot use the model server at {base}: {exc}",
            "start vLLM (`qwenfix model serve`, or the vllm service in "
            "deploy/compose.yaml) or set QWENFIX_LLM_BASE_URL",
        ) from exc
    message = (answer.json().get("choices") or [{}])[0].get("message") or {}
    names = [(c.get("function") or {}).get("name") for c in message.get("tool_calls") or []]
    if "qwenfix_probe" in names:
        return (
            f"{settings.llm_model}, window {window}, tool calls parsed by the server "
            "(a forced call: this tells the protocol and the parser work, not how well "
            "the model chooses)"
        )
    if "<tool_call>" in str(message.get("content") or ""):
        raise Failed(
            "the server answers tool calls as text: its qwen3_coder parser is off",
            f"restart vLLM with {SERVE_FLAGS} (qwenfix can parse the text itself, "
            "but the server's parser is the tested path)",
        )
    raise Failed(
        "the model did not call the probe tool",
        f"check that vLLM runs with {SERVE_FLAGS} and serves a Qwen3-Coder model",
    )


def check_github(settings: WorkerSettings) -> str:
    from githubkit.exception import RequestFailed

    from workers.github.app_auth import AppCredentials, AppCredentialsError, GitHubApp

    try:
        credentials = AppCredentials.load(
            app_id=settings.github_app_id,
            private_key=settings.github_private_key,
            private_key_file=settings.github_private_key_file,
            api_url=settings.github_api_url,
        )
    except AppCredentialsError as exc:
        raise Failed(
            str(exc), "create the App (docs/github-app.md) and set its id and private key"
        ) from exc
    try:
        github = GitHubApp(credentials).as_app()  # githubkit's namespaces hold it weakly
        data: Any = github.rest.apps.get_authenticated().parsed_data
    except RequestFailed as exc:
        raise Failed(
            f"GitHub refused the App's key ({exc.response.status_code})",
            f"check QWENFIX_GITHUB_APP_ID ({settings.github_app_id}) and that the "
            "private key is the App's current one",
        ) from exc
    except Exception as exc:  # the network: say what it was
        raise Failed(
            f"cannot reach {settings.github_api_url}: {exc}",
            "check QWENFIX_GITHUB_API_URL and the network",
        ) from exc
    return f"App {data.slug} (id {data.id}) on {settings.github_api_url}"


def _redis(settings: WorkerSettings) -> Any:
    import redis

    return redis.Redis.from_url(settings.redis_url, socket_timeout=3, socket_connect_timeout=3)


def _workers(settings: WorkerSettings) -> list[dict[str, Any]]:
    import redis

    from workers.runtime.heartbeat import worker_heartbeats

    try:
        return worker_heartbeats(_redis(settings))
    except redis.RedisError as exc:
        raise Failed(
            f"cannot read the workers' heartbeats from {settings.redis_url}: {exc}",
            "start Redis or set QWENFIX_REDIS_URL",
        ) from exc


def check_workers(settings: WorkerSettings) -> str:
    """Someone consumes each queue: a job waits behind no agent run to be acknowledged."""
    workers = _workers(settings)
    by_queue = {
        queue: sorted(str(w.get("hostname")) for w in workers if queue in (w.get("queues") or []))
        for queue in (settings.quick_queue, settings.agent_queue)
    }
    missing = [queue for queue, names in by_queue.items() if not names]
    if missing:
        raise Failed(
            f"no worker consumes the {' and '.join(missing)} "
            f"queue{'s' if len(missing) > 1 else ''} "
            f"({len(workers)} worker(s) with a live heartbeat)",
            f"start `qwenfix worker --queues {','.join(missing)}` (the worker-quick and "
            "worker-agent services of deploy/compose.yaml and deploy/k8s)",
        )
    return "; ".join(f"{queue}: {', '.join(names)}" for queue, names in by_queue.items())


def check_time_limits(settings: WorkerSettings) -> str:
    """Every worker's pool kills a job at its hard time limit."""
    from workers.runtime.celery_app import celery_config

    config = celery_config(settings)
    soft, hard = config["task_soft_time_limit"], config["task_time_limit"]
    workers = _workers(settings)
    if not workers:
        raise Failed(
            "no worker is running: no pool to check",
            "start the workers (`qwenfix worker` runs the prefork pool)",
        )
    loose = [w for w in workers if not w.get("time_limits")]
    if loose:
        names = ", ".join(f"{w.get('hostname')} ({w.get('pool')} pool)" for w in loose)
        raise Failed(
            f"{names}: the pool does not enforce the time limits ({soft}s soft, {hard}s "
            "hard), so a job that hangs holds its slot for good",
            "run the workers on the prefork pool (`qwenfix worker`'s default: drop "
            "--pool solo or threads)",
        )
    return (
        f"{len(workers)} worker(s) on the prefork pool: a job is stopped at {soft}s, "
        f"killed at {hard}s"
    )


def check_beat(settings: WorkerSettings) -> str:
    """One beat holds the lease and still ticks (maintenance, lost jobs sent again)."""
    import redis

    from workers.runtime.beat import LEASE_KEY, beat_heartbeats

    client = _redis(settings)
    try:
        raw = client.get(LEASE_KEY)
        beats = beat_heartbeats(client)
    except redis.RedisError as exc:
        raise Failed(
            f"cannot read the beat's lease from {settings.redis_url}: {exc}",
            "start Redis or set QWENFIX_REDIS_URL",
        ) from exc
    if raw is None:
        raise Failed(
            "no beat holds the lease: no maintenance ticks, and jobs whose message was "
            "lost are not sent again",
            "start `qwenfix beat` (the beat service)",
        )
    holder = raw.decode() if isinstance(raw, bytes) else str(raw)
    if not any(b.get("holder") == holder for b in beats):
        raise Failed(
            f"the lease is held by {holder}, which has not ticked within {settings.beat_lease_s}s",
            "look at that beat's log; a standby takes over when the lease expires",
        )
    standby = len(beats) - 1
    return f"{holder} holds the lease" + (f" ({standby} standing by)" if standby else "")


CHECKS: list[tuple[str, Callable[[WorkerSettings], str]]] = [
    ("redis", check_redis),
    ("database", check_database),
    ("workers", check_workers),
    ("time-limits", check_time_limits),
    ("beat", check_beat),
    ("sandbox", check_sandbox),
    ("model", check_model),
    ("github", check_github),
]


def run_checks(settings: WorkerSettings | None = None) -> list[Check]:
    try:
        settings = settings or WorkerSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"QWENFIX_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        return [
            Check(
                name="settings",
                ok=False,
                detail=problems,
                fix="correct these environment variables",
            )
        ]
    out = [Check(name="settings", ok=True, detail="worker settings read")]
    for name, check in CHECKS:
        try:
            out.append(Check(name=name, ok=True, detail=check(settings)))
        except Failed as failed:
            out.append(Check(name=name, ok=False, detail=failed.detail, fix=failed.fix))
    return out


def report(checks: list[Check], as_json: bool) -> str:
    if as_json:
        return json.dumps([c.model_dump() for c in checks], indent=2)
    lines = []
    for c in checks:
        lines.append(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
        if c.fix:
            lines.append(f"     fix: {c.fix}")
    return "\n".join(lines)
