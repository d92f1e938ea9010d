"""The prefix cache over a ten-turn run, from vLLM's own counters (`/metrics`).

The conversation is append-only: request k is request k-1 with the new assistant turn and
its tool answers appended, rendered by the same template. vLLM caches every full KV block
(`block_size` tokens, 128 on the CPU build) of a prompt it has computed, so request k
finds at least the full blocks of request k-1's prompt:

    hits(k) >= B * floor(P(k-1) / B)          for k >= 2

and the first request is owed nothing. Over the run, the hit rate (hits over queried
tokens, which are the prompt tokens) is then at least

    sum over k >= 2 of B * floor(P(k-1) / B)  /  sum over k of P(k)

computed here from the prompt sizes the server reports. With a first prompt of about
1,100 tokens and 30-odd tokens a turn, that is about 85% over ten turns; a break in the
append-only rule (a message re-rendered, reordered or edited) drops request k's hits to
the system prompt's blocks, and the rate far below the floor."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vllm.forcing import block_size, run_forced_agent
from tests.vllm.server import VllmServer

pytestmark = pytest.mark.vllm

TURNS = 10
HITS, QUERIES = "vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total"


def test_the_prefix_cache_holds_every_earlier_turn_of_an_append_only_run(
    vllm_server: VllmServer, tmp_path: Path
) -> None:
    block = block_size(vllm_server)
    hits, queries = vllm_server.metric(HITS), vllm_server.metric(QUERIES)
    run = run_forced_agent(vllm_server, tmp_path / "trajectory.jsonl", TURNS)
    hit = vllm_server.metric(HITS) - hits
    asked = vllm_server.metric(QUERIES) - queries

    assert run.result.status == "unresolved", run.result.reason
    assert run.result.turns == TURNS
    usage = [r["usage"] for r in run.model.responses]
    prompts = [u["prompt_tokens"] for u in usage]
    cached = [u["prompt_tokens_details"]["cached_tokens"] for u in usage]
    owed = [0] + [block * (p // block) for p in prompts[:-1]]
    # Each request, by the server's own usage: at least the full blocks of the one before.
    assert all(c >= o for c, o in zip(cached, owed, strict=True)), (cached, owed)
    # The run, by the server's counters: every prompt token queried once; the floor held.
    assert asked == sum(prompts)
    assert hit == sum(cached)
    rate, floor = hit / asked, sum(owed) / sum(prompts)
    print(
        f"\nvLLM prefix-cache hit rate over {TURNS} turns: {rate:.1%} "
        f"({hit:.0f} of {asked:.0f} prompt tokens; floor {floor:.1%}, block {block})"
    )
    assert rate >= floor > 0.5
