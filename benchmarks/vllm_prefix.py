"""vLLM's own prefix-cache hit rate on a recorded conversation: the request bodies of
`benchmarks/agent_run.py`'s scripted run, replayed in order to vLLM's CPU build serving
the tiny Qwen3-MoE model of `make test-vllm` (Qwen3's tokenizer, the Qwen3-Coder template
and parser, prefix caching on, production's flags), each asking for one token. The figure
is `vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total` over the replay, read
from the server's `/metrics`: what the computed "reusable" share becomes once a real
server caches whole blocks.

Needs the vLLM venv (`bash scripts/ensure-vllm.sh`, about 3.4 GB); without it `replay`
says so and installs nothing.

    python -m benchmarks.vllm_prefix   # a fresh scripted run, then its replay
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.vllm.server import ServerDidNotStart, start, venv_python
from tests.vllm.tiny_model import build
from workers.engine.llm.prompt_format import PromptCounter

HITS = "vllm:prefix_cache_hits_total"
QUERIES = "vllm:prefix_cache_queries_total"


@dataclass(frozen=True)
class Replayed:
    requests: int
    hits: float
    queries: float
    first_prompt_tokens: int
    """Prompt tokens of the first request, which no cache can serve."""
    wall_s: float

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0

    @property
    def hit_rate_after_first(self) -> float:
        """The rate over every request but the first (the conversation's warm turns)."""
        rest = self.queries - self.first_prompt_tokens
        return self.hits / rest if rest > 0 else 0.0


class Unavailable(Exception):
    """The replay cannot run here; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def replay(requests: list[dict[str, Any]]) -> Replayed:
    python, why = venv_python(install=False)
    if python is None:
        raise Unavailable(why)
    counter = PromptCounter()
    sizes = [counter.count(r["messages"], r.get("tools") or []) for r in requests]
    # The window holds the largest prompt plus the one token asked for, in whole KiB.
    window = -(-(max(sizes) + 64) // 1024) * 1024
    work = Path(tempfile.mkdtemp(prefix="qwenfix-bench-vllm-"))
    try:
        running = start(str(python), build(work / "model"), work / "logs", window=window)
    except ServerDidNotStart as error:
        raise Unavailable(str(error)) from error
    server = running.server
    try:
        hits, queries = server.metric(HITS), server.metric(QUERIES)
        started = time.perf_counter()
        with httpx.Client(base_url=server.base_url, timeout=900) as client:
            for number, request in enumerate(requests, 1):
                body = {**request, "model": "tiny", "max_tokens": 1, "stream": False}
                answer = client.post("/chat/completions", json=body)
                if answer.status_code != 200:
                    raise RuntimeError(
                        f"vLLM refused replayed request {number}: "
                        f"{answer.status_code} {answer.text[:500]}"
                    )
        wall = time.perf_counter() - started
        return Replayed(
            requests=len(requests),
            hits=server.metric(HITS) - hits,
            queries=server.metric(QUERIES) - queries,
            first_prompt_tokens=sizes[0],
            wall_s=wall,
        )
    finally:
        running.stop()


if __name__ == "__main__":
    from benchmarks.agent_run import record

    recorded = record()
    try:
        figures = replay(recorded.requests)
    except Unavailable as error:
        raise SystemExit(f"no vLLM replay: {error.reason}") from None
    print(
        json.dumps(
            {
                "computed_prefix_reuse": recorded.figures["prefix_reuse"],
                "vllm_hit_rate": figures.hit_rate,
                "vllm_hit_rate_after_first": figures.hit_rate_after_first,
                "requests": figures.requests,
                "queries": figures.queries,
                "hits": figures.hits,
                "replay_wall_s": figures.wall_s,
            },
            indent=2,
        )
    )
