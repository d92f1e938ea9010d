"""`qwenfix health [serve|worker|beat]`: a container's probe, exit 0 when the process it
names is doing its work, 1 when not (with one line saying why).

- serve: the receiver answers GET /healthz on its port.
- worker: a worker on this host has a live heartbeat in Redis (renewed every 10 s,
  expiring after 30 s), consuming the queues its command line names.
- beat: a beat on this host ticked within its lease's TTL (leader or standby).

Without a role it checks what the container's main process (PID 1) runs, so that the
image's one HEALTHCHECK is honest for all three."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from workers.runtime.beat import beat_heartbeats
from workers.runtime.heartbeat import worker_heartbeats
from workers.settings import WorkerSettings

ROLES = ("serve", "worker", "beat")
MAIN_PROCESS = Path("/proc/1/cmdline")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str


@dataclass(frozen=True)
class Role:
    name: str | None
    port: int = 8080
    queues: tuple[str, ...] = ()


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def role_of(args: list[str]) -> Role:
    """What a `qwenfix …` command line runs (None when it is not a long-running part)."""
    for i, arg in enumerate(args[:-1]):
        if Path(arg).name == "qwenfix" and args[i + 1] in ROLES:
            rest = args[i + 2 :]
            port = _option(rest, "--port")
            queues = _option(rest, "--queues")
            return Role(
                args[i + 1],
                port=int(port) if port and port.isdigit() else 8080,
                queues=tuple(q for q in (queues or "").split(",") if q),
            )
    return Role(None)


def main_process_role(path: Path = MAIN_PROCESS) -> Role:
    try:
        raw = path.read_bytes()
    except OSError:
        return Role(None)
    return role_of([part.decode(errors="replace") for part in raw.split(b"\0") if part])


def check_serve(port: int) -> Verdict:
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        answer = httpx.get(url, timeout=4)
    except httpx.HTTPError as exc:
        return Verdict(False, f"the receiver does not answer {url}: {exc}")
    if answer.status_code != 200:
        return Verdict(False, f"the receiver answers {url} with HTTP {answer.status_code}")
    return Verdict(True, f"the receiver answers {url}")


def check_worker(client: redis.Redis, host: str, queues: tuple[str, ...]) -> Verdict:
    mine = [w for w in worker_heartbeats(client) if w.get("host") == host]
    if not mine:
        return Verdict(
            False,
            f"no worker on {host} has a live heartbeat in Redis: it is not running, "
            "is stuck, or cannot reach Redis",
        )
    consumed = {q for w in mine for q in w.get("queues") or []}
    missing = [q for q in queues if q not in consumed]
    if missing:
        return Verdict(False, f"no worker on {host} consumes {', '.join(missing)}")
    return Verdict(
        True,
        "; ".join(
            f"{w.get('hostname')} consuming {','.join(w.get('queues') or [])} "
            f"({w.get('pool')} pool, time limits "
            f"{'enforced' if w.get('time_limits') else 'NOT enforced'})"
            for w in mine
        ),
    )


def check_beat(client: redis.Redis, host: str) -> Verdict:
    mine = [b for b in beat_heartbeats(client) if b.get("host") == host]
    if not mine:
        return Verdict(
            False,
            f"no beat on {host} ticked within its lease: it is not running, is stuck, "
            "or cannot reach Redis",
        )
    return Verdict(
        True,
        "; ".join(
            f"beat {b.get('holder')} {'leads' if b.get('leading') else 'stands by'}" for b in mine
        ),
    )


def probe(role: Role, settings: WorkerSettings, host: str | None = None) -> Verdict:
    host = host or socket.gethostname()
    if role.name is None:
        return Verdict(True, "the main process is not serve, worker or beat: nothing to probe")
    if role.name == "serve":
        return check_serve(role.port)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=3, socket_connect_timeout=3)
    try:
        if role.name == "worker":
            return check_worker(client, host, role.queues)
        return check_beat(client, host)
    except redis.RedisError as exc:
        return Verdict(False, f"cannot read the heartbeats from {settings.redis_url}: {exc}")
    finally:
        client.close()
