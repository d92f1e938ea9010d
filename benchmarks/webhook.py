"""The receiver under load, on loopback, next to a bare endpoint in the same run.

    python -m benchmarks.webhook [--seconds 8] [--concurrency 32] [--workers 1,2]

For each uvicorn worker count: `qwenfix serve` with real Redis (database 12, flushed) and
a fresh SQLite file; `wrk` sends signed 10 KB `issue_comment` deliveries that each queue
a job (distinct delivery ids), then redeliveries of one delivery (each answered
"duplicate"); the anchor is a FastAPI endpoint that only answers 202
(`benchmarks/bare.py`), served the same way. The signature covers the body only, so one
signed body serves every delivery id. Afterwards the queue must hold exactly one message
per 202 answer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import redis

from bot.receiver.signature import sign

SECRET = "bench-secret"
REDIS_URL = "redis://127.0.0.1:6379/12"


def payload(i: int) -> bytes:
    """A 10 KB `issue_comment` as GitHub sends them: the bulk is the issue's own text (and,
    in real deliveries, the repository object); the comment is a short command."""
    body = {
        "action": "created",
        "issue": {
            "number": i,
            "title": "bench",
            "body": "Steps to reproduce: " + "x" * 9000,
            "user": {"login": "octocat", "type": "User"},
        },
        "comment": {
            "id": i,
            "body": "@qwenfix fix please keep the change small",
            "user": {"login": "octocat", "type": "User"},
            "author_association": "OWNER",
        },
        "repository": {"full_name": "octo-org/bench"},
        "sender": {"login": "octocat", "type": "User"},
        "installation": {"id": 1},
    }
    return json.dumps(body).encode()


WRK_SCRIPT = """
local body = io.open("%(body)s"):read("*a")
local sig = io.open("%(sig)s"):read("*a")
local fixed = "%(fixed)s"
local n = 0
request = function()
  n = n + 1
  local delivery = fixed
  if delivery == "" then
    delivery = string.format("%%d-%%d-%%d", os.time(), math.random(1, 1000000000), n)
  end
  return wrk.format("POST", "/webhook", {
    ["X-GitHub-Event"] = "issue_comment", ["X-GitHub-Delivery"] = delivery,
    ["X-Hub-Signature-256"] = sig, ["Content-Type"] = "application/json"}, body)
end
"""


def _ms(text: str) -> float:
    value = float(re.sub(r"[a-z]+$", "", text))
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[re.sub(r"[\d.]+", "", text)]


def wrk(url: str, workdir: Path, seconds: int, concurrency: int, fixed: str) -> dict[str, Any]:
    body = payload(1)
    (workdir / "body.json").write_bytes(body)
    (workdir / "sig.txt").write_text(sign(SECRET, body))
    script = workdir / f"deliver{'-dup' if fixed else ''}.lua"
    script.write_text(
        WRK_SCRIPT % {"body": workdir / "body.json", "sig": workdir / "sig.txt", "fixed": fixed}
    )
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"{url}/webhook",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    found = {
        "rate": re.search(r"Requests/sec:\s+([\d.]+)", out),
        "p50": re.search(r"^\s+50%\s+(\S+)", out, re.M),
        "p99": re.search(r"^\s+99%\s+(\S+)", out, re.M),
        "requests": re.search(r"(\d+) requests in", out),
        "non2xx": re.search(r"Non-2xx or 3xx responses: (\d+)", out),
    }
    if not (found["rate"] and found["p50"] and found["p99"] and found["requests"]):
        raise RuntimeError(f"wrk printed something unexpected:\n{out}")
    return {
        "rate": float(found["rate"].group(1)),
        "p50_ms": _ms(found["p50"].group(1)),
        "p99_ms": _ms(found["p99"].group(1)),
        "requests": int(found["requests"].group(1)),
        "non2xx": int(found["non2xx"].group(1)) if found["non2xx"] else 0,
    }


def _wait(url: str, probe: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if probe == "healthz":
                httpx.get(f"{url}/healthz", timeout=1).raise_for_status()
            else:
                httpx.post(f"{url}/webhook", content=b"{}", timeout=1)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the server at {url} did not start") from None
            time.sleep(0.1)


@contextlib.contextmanager
def server(argv: list[str], env: dict[str, str], port: int, probe: str) -> Iterator[str]:
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, probe)
        yield url
    finally:
        process.terminate()
        process.wait(20)


def measure(workers: int, seconds: int, concurrency: int) -> dict[str, Any]:
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    workdir = Path(tempfile.mkdtemp(prefix="qwenfix-bench-"))
    port = 18000 + os.getpid() % 1000
    bare = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.bare:app",
        "--port",
        str(port + 1),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(workers),
    ]
    with server(bare, dict(os.environ), port + 1, "post") as url:
        anchor = wrk(url, workdir, seconds, concurrency, "")
    env = {
        **os.environ,
        "QWENFIX_WEBHOOK_SECRET": SECRET,
        "QWENFIX_API_TOKEN": "bench",
        "QWENFIX_REDIS_URL": REDIS_URL,
        "QWENFIX_LOG_FORMAT": "text",
        "QWENFIX_DATABASE_URL": f"sqlite:///{workdir / 'jobs.db'}",
    }
    qwenfix = [
        str(Path(sys.executable).parent / "qwenfix"),
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with server(qwenfix, env, port, "healthz") as url:
        distinct = wrk(url, workdir, seconds, concurrency, "")
        time.sleep(1)  # deliveries still in flight when wrk stopped counting
        queued = int(broker.llen("quick"))  # type: ignore[arg-type]  # sync client
        with sqlite3.connect(workdir / "jobs.db") as db:
            rows = int(db.execute("SELECT count(*) FROM jobs").fetchone()[0])
        duplicate = wrk(url, workdir, seconds, concurrency, "the-same-delivery")
    # Exactly one message per job row, and no fewer jobs than 202 answers counted.
    return {
        "workers": workers,
        "anchor": anchor,
        "distinct": distinct,
        "duplicate": duplicate,
        "queued": queued,
        "job_rows": rows,
        "one_job_per_202": queued == rows >= distinct["requests"] - distinct["non2xx"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    for workers in (int(w) for w in args.workers.split(",")):
        result = measure(workers, args.seconds, args.concurrency)
        for name in ("anchor", "distinct", "duplicate"):
            row = result[name]
            print(
                f"{workers} worker(s), {name:<9}: {row['rate']:8,.0f}/s  p50 "
                f"{row['p50_ms']:6.1f} ms  p99 {row['p99_ms']:6.1f} ms  "
                f"{row['rate'] / result['anchor']['rate']:5.0%} of the anchor  "
                f"non-2xx {row['non2xx']}"
            )
        print(f"one queued job per 202: {result['one_job_per_202']}")


if __name__ == "__main__":
    main()
