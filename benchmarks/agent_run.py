"""Two figures from one scripted 30-turn fix run (real Docker sandbox, the scripted model
over HTTP, a generated 200-module repository):

- harness overhead per turn: the run's wall time minus the model's time (each request's
  latency) minus the sandbox's (each tool's time), divided by the turns;
- prefix-cache friendliness: the share of each request's prompt tokens that repeat the
  previous request's prompt from the start (Qwen3's tokenizer over the Qwen3-Coder prompt
  format, `render_prompt`), averaged; next to a naive agent that, like retrieval-per-turn agents,
  re-packs the repository every turn for the task and the latest observation, within a
  budget a third of the repository's size, and puts it first (the anchor).

`record` also keeps the request bodies, which `benchmarks/vllm_prefix.py` replays to a
real vLLM server for its own hit rate.
"""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.docker_backend import DockerBackend
from tests.fakes.model_server import ScriptedModelServer
from workers.engine.agent.trajectory import read_trajectory
from workers.engine.context import pack_commit
from workers.engine.context.classify import ContextRules
from workers.engine.context.tokens import TokenCounter
from workers.engine.fix import FixRequest, run_fix
from workers.engine.llm.client import OpenAICompatibleModel
from workers.engine.llm.prompt_format import render_prompt
from workers.settings import WorkerSettings

TURNS = 30
IMAGE = "qwenfix-sandbox:1"
ISSUE = (
    "mod_017.scale() is wrong: scale(3) should be 6. tests/test_mod_017.py fails. "
    "The helpers in mod_042 and mod_133 call it too."
)


def make_repository(root: Path) -> Path:
    root.mkdir(parents=True)
    for i in range(200):
        body = "".join(f"def f{i}_{j}(x):\n    return x * {j} + {i}\n\n\n" for j in range(12))
        wrong = "    return x * 2 + 1\n" if i == 17 else "    return x * 2\n"
        (root / f"mod_{i:03d}.py").write_text(
            f'"""Module {i}."""\n\n\n{body}def scale(x):\n{wrong}'
        )
    (root / "tests").mkdir()
    (root / "tests" / "test_mod_017.py").write_text(
        "from mod_017 import scale\n\n\ndef test_scale():\n    assert scale(3) == 6\n"
    )
    (root / "conftest.py").write_text("")
    (root / ".qwenfix.yml").write_text("test: python -m pytest -q\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "initial"],
    ):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    return root


def script() -> list[dict[str, Any]]:
    def call(name: str, **arguments: Any) -> dict[str, Any]:
        return {"tool_calls": [{"name": name, "arguments": arguments}]}

    steps = [
        call("view", path=f"mod_{(i * 7) % 200:03d}.py")
        if i % 2
        else call("search", pattern=f"def f{i}_3")
        for i in range(TURNS - 4)
    ]
    return [
        *steps,
        call("view", path="mod_017.py"),
        call("str_replace", path="mod_017.py", old_str="x * 2 + 1\n", new_str="x * 2\n"),
        call("run_tests"),
        call("submit", summary="scale() added one.", title="Fix"),
    ]


def prompt_ids(counter: TokenCounter, request: dict[str, Any]) -> list[int]:
    text = render_prompt(request["messages"], request.get("tools") or [])
    return list(counter.tokenizer.encode(text, add_special_tokens=False).ids)


def reuse(prompts: list[list[int]]) -> float:
    """Mean share of each prompt's tokens that equal the previous prompt's, from the start."""
    shares = []
    for before, now in itertools.pairwise(prompts):
        same = 0
        for a, b in zip(before, now, strict=False):
            if a != b:
                break
            same += 1
        shares.append(same / len(now))
    return statistics.mean(shares)


@dataclass(frozen=True)
class Recorded:
    figures: dict[str, float]
    requests: list[dict[str, Any]]
    """Each request body the scripted server received, in order."""


def run() -> dict[str, float]:
    return record().figures


def record() -> Recorded:
    work = Path(tempfile.mkdtemp(prefix="qwenfix-bench-agent-"))
    repo = make_repository(work / "repo")
    settings = WorkerSettings(
        sandbox_image=IMAGE,
        trajectory_dir=work / "trajectories",
        cache_dir=work / "cache",
        max_turns=TURNS + 5,
        sandbox_memory_mb=1024,
    )
    with (
        ScriptedModelServer({"steps": script()}) as server,
        OpenAICompatibleModel(base_url=server.base_url, model="qwen") as model,
    ):
        started = time.perf_counter()
        result = run_fix(
            FixRequest(repo=repo, issue=ISSUE),
            model=model,
            backend=DockerBackend(),
            settings=settings,
        )
        wall = time.perf_counter() - started
        requests = list(server.requests)
    if result.status != "resolved" or result.turns != TURNS:
        raise RuntimeError(
            f"the scripted run ended {result.status} after {result.turns} turns: {result.reason}"
        )
    records = read_trajectory(Path(result.trajectory or ""))
    agent = (
        next(r for r in records if r["event"] == "stop")["t"]
        - next(r for r in records if r["event"] == "request")["t"]
    )
    model_s = sum(float(r.get("latency_s") or 0) for r in records if r["event"] == "message")
    tools_s = sum(float(r.get("elapsed_s") or 0) for r in records if r["event"] == "message")
    verify_s = sum(
        float((r.get("tests") or {}).get("duration_s") or 0)
        for r in records
        if r["event"] == "verify"
    )
    overhead = (agent - model_s - tools_s - verify_s) / TURNS

    counter = TokenCounter()
    ours = [prompt_ids(counter, r) for r in requests]
    base = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    naive = []
    for i, request in enumerate(requests):
        observation = next(
            (m.get("content") or "" for m in reversed(request["messages"]) if m["role"] == "tool"),
            "",
        )
        pack = pack_commit(
            repo,
            base,
            task=f"{ISSUE}\n{observation}",
            budget=20_000,
            rules=ContextRules(),
            cache_path=work / "cache" / "naive.sqlite3",
            counter=counter,
        )
        rest = {
            **request,
            "messages": [{"role": "system", "content": pack.text}, *request["messages"][2:]],
        }
        naive.append(prompt_ids(counter, rest))
        if i >= TURNS:
            break
    figures = {
        "turns": TURNS,
        "run_wall_s": wall,
        "agent_s": agent,
        "model_s": model_s,
        "sandbox_s": tools_s + verify_s,
        "overhead_per_turn_ms": overhead * 1000,
        "prefix_reuse": reuse(ours),
        "naive_prefix_reuse": reuse(naive),
        "first_prompt_tokens": len(ours[0]),
    }
    return Recorded(figures=figures, requests=requests)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
