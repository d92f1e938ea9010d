"""A soak of mixed deliveries against the receiver, with real Redis and SQLite.

    python -m benchmarks.soak [--seconds 180] [--concurrency 8]

Valid deliveries that queue a job, redeliveries of them, unsigned, malformed and
irrelevant ones, in random order for the whole time. Checks: no 5xx for any of it, every
category answered as it should be, exactly one queued job per accepted delivery, and the
receiver's memory (resident set, sampled every 10 s) flat after the first minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import redis

from benchmarks.webhook import REDIS_URL, SECRET, _wait, payload
from bot.receiver.signature import sign

EXPECTED = {
    "valid": {202},
    "duplicate": {200},
    "unsigned": {401},
    "malformed": {400},
    "irrelevant": {200},
}
MIX = ["valid"] * 12 + ["duplicate"] * 3 + ["unsigned"] * 2 + ["malformed"] * 2 + ["irrelevant"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def soak(
    url: str, seconds: float, concurrency: int, pid: int
) -> tuple[Counter[tuple[str, int]], int, list[tuple[float, float]]]:
    answers: Counter[tuple[str, int]] = Counter()
    accepted: list[str] = []
    memory: list[tuple[float, float]] = []
    started = time.monotonic()
    rng = random.Random(7)

    def request(kind: str) -> tuple[dict[str, str], bytes]:
        delivery = str(uuid.uuid4())
        body = payload(rng.randrange(10**6))
        event = "issue_comment"
        if kind == "duplicate" and accepted:
            delivery = rng.choice(accepted)
        elif kind == "malformed":
            body = body[: len(body) // 2]
        elif kind == "irrelevant":
            event, body = "star", json.dumps({"action": "created"}).encode()
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "Content-Type": "application/json",
        }
        if kind != "unsigned":
            headers["X-Hub-Signature-256"] = sign(SECRET, body)
        return headers, body

    async def worker(client: httpx.AsyncClient) -> None:
        while time.monotonic() - started < seconds:
            kind = rng.choice(MIX) if accepted else "valid"
            headers, body = request(kind)
            response = await client.post(f"{url}/webhook", content=body, headers=headers)
            answers[(kind, response.status_code)] += 1
            if kind == "valid" and response.status_code == 202:
                accepted.append(headers["X-GitHub-Delivery"])

    async def sampler() -> None:
        while time.monotonic() - started < seconds:
            memory.append((round(time.monotonic() - started), rss_mb(pid)))
            await asyncio.sleep(10)

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(sampler(), *(worker(client) for _ in range(concurrency)))
    return answers, len(accepted), memory


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    workdir = Path(tempfile.mkdtemp(prefix="qwenfix-soak-"))
    port = 17000 + os.getpid() % 1000
    env = {
        **os.environ,
        "QWENFIX_WEBHOOK_SECRET": SECRET,
        "QWENFIX_API_TOKEN": "soak",
        "QWENFIX_REDIS_URL": REDIS_URL,
        "QWENFIX_DATABASE_URL": f"sqlite:///{workdir / 'jobs.db'}",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "qwenfix"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, "healthz")
        answers, accepted, memory = asyncio.run(
            soak(url, args.seconds, args.concurrency, server.pid)
        )
        time.sleep(1)
        queued = int(broker.llen("quick"))  # type: ignore[arg-type]  # sync client
    finally:
        server.terminate()
        server.wait(20)
    total = sum(answers.values())
    wrong = {f"{k}→{s}": n for (k, s), n in answers.items() if s not in EXPECTED[k]}
    print(
        f"{total:,} deliveries in {args.seconds:.0f} s ({total / args.seconds:,.0f}/s) "
        f"with {args.concurrency} connections"
    )
    for (kind, status), n in sorted(answers.items()):
        print(f"  {kind:<10} → {status}: {n:,}")
    print(
        f"5xx: {sum(n for (_, s), n in answers.items() if s >= 500)}; unexpected: {wrong or 'none'}"
    )
    print(
        f"accepted {accepted:,}, queued {queued:,}: "
        f"{'one job each' if queued == accepted else 'MISMATCH'}"
    )
    print("receiver RSS (s, MB): " + ", ".join(f"{t:.0f}: {m:.0f}" for t, m in memory))


if __name__ == "__main__":
    main()
