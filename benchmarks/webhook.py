"""The receiver under a burst of signed deliveries, on loopback.

    python -m benchmarks.webhook [--deliveries 3000] [--concurrency 32]

Starts `qwenfix serve` (one uvicorn worker) on a free port with real Redis (dedup and
Celery's broker, database 12, flushed first) and a fresh SQLite file, then sends a burst
of distinct, signed `issue_comment` deliveries (10 KB bodies) that each queue a job, plus
the same number of redeliveries of a single delivery (each must answer "duplicate").
Prints throughput, latency percentiles and every non-2xx answer; bounded in count and
time. The client is asyncio+httpx in this process, so on a 2-core machine it competes
with the server for CPU: the figures are a floor. `wrk` with a signing-free Lua script
(the signature covers the body only, so one signed body serves every delivery id) gives
the server-side figure; docs/performance.md has both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import redis

from bot.signature import sign

SECRET = "bench-secret"
REDIS_URL = "redis://127.0.0.1:6379/12"


def payload(i: int) -> bytes:
    body = {"action": "created",
            "issue": {"number": i, "title": "bench", "user": {"login": "octocat", "type": "User"}},
            "comment": {"id": i, "body": "@qwenfix fix " + "x" * 9000,
                        "user": {"login": "octocat", "type": "User"},
                        "author_association": "OWNER"},
            "repository": {"full_name": "octo-org/bench"},
            "sender": {"login": "octocat", "type": "User"}, "installation": {"id": 1}}
    return json.dumps(body).encode()


async def burst(url: str, bodies: list[tuple[str, bytes]], concurrency: int
                ) -> tuple[list[float], dict[int, int], float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            delivery, body = queue.get_nowait()
            headers = {"X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": delivery,
                       "X-Hub-Signature-256": sign(SECRET, body),
                       "Content-Type": "application/json"}
            started = time.perf_counter()
            response = await client.post(f"{url}/webhook", content=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return latencies, statuses, time.perf_counter() - started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


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


def with_wrk(url: str, workdir: Path, seconds: int, concurrency: int, fixed: str) -> str:
    body = payload(1)
    (workdir / "body.json").write_bytes(body)
    (workdir / "sig.txt").write_text(sign(SECRET, body))
    script = workdir / f"deliver{'-dup' if fixed else ''}.lua"
    script.write_text(WRK_SCRIPT % {"body": workdir / "body.json", "sig": workdir / "sig.txt",
                                    "fixed": fixed})
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency",
                          "-s", str(script), f"{url}/webhook"], capture_output=True, text=True,
                         timeout=seconds + 30).stdout
    keep = ("Requests/sec", "50%", "99%", "Non-2xx", "Socket errors")
    return "; ".join(" ".join(line.split()) for line in out.splitlines()
                     if line.strip().startswith(keep) or "requests in" in line)


def rate(line: str) -> float:
    found = [part for part in line.split("; ") if part.startswith("Requests/sec")]
    return float(found[0].split()[-1]) if found else 0.0


def ratio(line: str, anchor: str) -> str:
    return f"{rate(line) / rate(anchor):.0%}" if rate(anchor) else "n/a"


def bare_anchor(workdir: Path, seconds: int, concurrency: int) -> str:
    """The same load on a FastAPI endpoint that does nothing but answer 202."""
    port = 19000 + os.getpid() % 1000
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "benchmarks.bare:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(f"{url}/webhook", content=b"{}", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("the anchor did not start") from None
                time.sleep(0.1)
        return with_wrk(url, workdir, seconds, concurrency, "")
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    args = parser.parse_args()
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    port = 18000 + os.getpid() % 1000
    workdir = Path(tempfile.mkdtemp(prefix="qwenfix-bench-"))
    env = {**os.environ, "QWENFIX_WEBHOOK_SECRET": SECRET, "QWENFIX_API_TOKEN": "bench",
           "QWENFIX_REDIS_URL": REDIS_URL,
           "QWENFIX_DATABASE_URL": f"sqlite:///{workdir / 'jobs.db'}"}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "qwenfix"), "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the receiver did not start")
            time.sleep(0.1)
        if shutil.which("wrk"):
            bare = bare_anchor(workdir, args.seconds, args.concurrency)
            print(f"wrk, anchor: bare FastAPI 202: {bare}")
            for name, fixed in (("wrk, distinct deliveries", ""),
                                ("wrk, redeliveries of one delivery", "wrk-same")):
                line = with_wrk(url, workdir, args.seconds, args.concurrency, fixed)
                print(f"{name}: {line}; {ratio(line, bare)} of the anchor")
            print(f"jobs queued in Redis: {broker.llen('quick')}")
            broker.flushdb()
        fresh = [(str(uuid.uuid4()), payload(i)) for i in range(args.deliveries)]
        same = payload(0)
        dupes = [("the-same-delivery", same)] * args.deliveries
        for name, bodies in (("distinct deliveries (each queues a job)", fresh),
                             ("redeliveries of one delivery", dupes)):
            latencies, statuses, wall = asyncio.run(burst(url, bodies, args.concurrency))
            print(f"{name}: {len(bodies)} in {wall:.2f}s = {len(bodies) / wall:,.0f}/s; "
                  f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
                  f"p99 {percentile(latencies, 99) * 1000:.1f} ms; statuses {statuses}")
        print(f"jobs queued in Redis (python client runs): {broker.llen('quick')}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
