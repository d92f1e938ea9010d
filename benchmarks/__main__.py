"""`python -m benchmarks` (or `make bench`): every benchmark, each next to its anchor,
as one table; the figures also go to benchmarks/results/latest.json.

    python -m benchmarks [--only webhook,pack,recall,prefix,sandbox,harness,verdict,languages]
                         [--quick]

Sections: the webhook receiver under load (1 and 2 uvicorn workers) next to a bare
endpoint; packing Django next to repomix and gitingest (downloaded on first use); how
often the pack holds a real issue's fix files, next to BM25 (benchmarks/recall.py); the
share of each model request that the server's prefix cache can reuse, next to a naive
agent, and (when vLLM's CPU build is installed: `bash scripts/ensure-vllm.sh`) vLLM's own
hit rate on the same requests replayed; sandbox start and per-command cost next to the
Docker CLI; the harness's own time per agent turn; the verdict in a fresh sandbox next to
the in-sandbox one it replaced, and a repository's second job from its setup snapshot next
to its first; per ecosystem (benchmarks/languages.py), its image's build time and size,
its setup, and a fix job on its example repository, first and from the snapshot. Needs
Redis, Docker with the sandbox image, and wrk (`make bench` provides them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
SECTIONS = (
    "webhook",
    "pack",
    "recall",
    "prefix",
    "sandbox",
    "harness",
    "verdict",
    "languages",
)


class Table:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def add(
        self,
        section: str,
        name: str,
        value: float,
        unit: str,
        anchor: str = "",
        anchor_value: float | None = None,
        better: str = "higher",
    ) -> None:
        ratio = None
        if anchor_value:
            ratio = value / anchor_value if better == "higher" else anchor_value / value
        self.rows.append(
            {
                "section": section,
                "name": name,
                "value": value,
                "unit": unit,
                "anchor": anchor,
                "anchor_value": anchor_value,
                "ratio": ratio,
            }
        )

    def print(self) -> None:
        print(
            f"\n{'section':<9} {'measure':<46} {'value':>14}   {'anchor':<34} "
            f"{'anchor value':>14}  ratio"
        )
        for r in self.rows:
            anchor_value = (
                "" if r["anchor_value"] is None else f"{r['anchor_value']:,.2f} {r['unit']}"
            )
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
            print(
                f"{r['section']:<9} {r['name']:<46} {r['value']:>10,.2f} {r['unit']:<5}"
                f" {r['anchor']:<34} {anchor_value:>14}  {ratio}"
            )
        for note in self.notes:
            print(f"note: {note}")


def webhook(table: Table, quick: bool) -> dict[str, Any]:
    from benchmarks.webhook import measure

    results = {}
    for workers in (1, 2):
        result = measure(workers, 4 if quick else 8, 32)
        results[workers] = result
        anchor = f"bare FastAPI 202, {workers} worker(s)"
        for name, label in (
            ("distinct", "deliveries/s, each queues a job"),
            ("duplicate", "redeliveries/s, answered duplicate"),
        ):
            row = result[name]
            table.add(
                "webhook",
                f"{workers}w {label}",
                row["rate"],
                "/s",
                anchor,
                result["anchor"]["rate"],
            )
            table.add(
                "webhook",
                f"{workers}w {name} p99 latency",
                row["p99_ms"],
                "ms",
                anchor,
                result["anchor"]["p99_ms"],
                better="lower",
            )
    return {str(k): v for k, v in results.items()}


def pack(table: Table, quick: bool) -> dict[str, Any]:
    from benchmarks.pack import run

    result = run(runs=1 if quick else 3)
    rows = {r["name"]: r for r in result["rows"]}
    cold, warm = rows["qwenfix pack (cold)"], rows["qwenfix pack (warm)"]
    anchors = [r for name, r in rows.items() if not name.startswith("qwenfix")]
    for ours, label in ((cold, "cold"), (warm, "warm")):
        for anchor in anchors or [None]:
            table.add(
                "pack",
                f"Django to 196,608 tokens, {label}, wall",
                ours["wall_s"],
                "s",
                anchor["name"] if anchor else "(no anchor available)",
                anchor["wall_s"] if anchor else None,
                better="lower",
            )
        for anchor in anchors[:1]:
            table.add(
                "pack",
                f"Django to 196,608 tokens, {label}, peak RSS",
                ours["peak_mb"],
                "MB",
                anchor["name"],
                anchor["peak_mb"],
                better="lower",
            )
    return result


def recall(table: Table, quick: bool) -> dict[str, Any]:
    """Issues whose fix files are all in the pack in full, on the held-out split."""
    from benchmarks.recall import DEFAULT_DATA, run

    if not DEFAULT_DATA.is_file():
        table.notes.append(f"recall: skipped, no data at {DEFAULT_DATA}")
        return {"skipped": str(DEFAULT_DATA)}
    result = run("test", limit=12 if quick else None, progress=False)
    scored = sum(result["scored"].values())
    for budget in result["budgets"]:
        table.add(
            "recall",
            f"fix files all in full, {budget:,} tokens ({scored} issues)",
            100 * result["summary"]["qwenfix"][str(budget)]["recall"],
            "%",
            "BM25 (bm25s) filled greedily",
            100 * result["summary"]["bm25"][str(budget)]["recall"],
        )
    result.pop("issues")  # per-issue rows: python -m benchmarks.recall writes them
    return result


def agent_run(table: Table, sections: set[str], server: bool) -> dict[str, Any]:
    from benchmarks.agent_run import record

    recorded = record()
    result: dict[str, Any] = dict(recorded.figures)
    if "prefix" in sections:
        table.add(
            "prefix",
            "prompt tokens reusable from the previous request",
            100 * result["prefix_reuse"],
            "%",
            "naive agent re-packing every turn",
            100 * result["naive_prefix_reuse"],
        )
        if server:
            result["vllm"] = vllm_prefix(table, recorded.requests, result["prefix_reuse"])
    if "harness" in sections:
        table.add(
            "harness",
            f"own time per turn ({result['turns']} scripted turns)",
            result["overhead_per_turn_ms"],
            "ms",
            "a scripted model round trip",
            1000 * result["model_s"] / result["turns"],
            better="lower",
        )
    return result


def vllm_prefix(table: Table, requests: list[dict[str, Any]], computed: float) -> dict[str, Any]:
    """The same requests replayed to vLLM's CPU build, when its venv is here."""
    from benchmarks.vllm_prefix import Unavailable, replay

    try:
        replayed = replay(requests)
    except Unavailable as error:
        table.notes.append(f"prefix: no vLLM row ({error.reason.splitlines()[0]})")
        return {"skipped": error.reason}
    table.add(
        "prefix",
        "vLLM's prefix-cache hits, same requests replayed",
        100 * replayed.hit_rate,
        "%",
        "computed reusable share (row above)",
        100 * computed,
    )
    table.add(
        "prefix",
        "the same, after the first request",
        100 * replayed.hit_rate_after_first,
        "%",
        "computed reusable share (row above)",
        100 * computed,
    )
    return {
        "hit_rate": replayed.hit_rate,
        "hit_rate_after_first": replayed.hit_rate_after_first,
        "hits": replayed.hits,
        "queries": replayed.queries,
        "first_prompt_tokens": replayed.first_prompt_tokens,
        "requests": replayed.requests,
        "replay_s": replayed.wall_s,
    }


def sandbox(table: Table, quick: bool) -> dict[str, Any]:
    from benchmarks.sandbox_bench import run

    result = run(runs=3 if quick else 5, commands=15 if quick else 30)
    table.add(
        "sandbox",
        "start to first command output (no warm pool)",
        result["start_to_first_output_s"] * 1000,
        "ms",
        "docker run --rm IMAGE true",
        result["docker_run_s"] * 1000,
        better="lower",
    )
    table.add(
        "sandbox",
        "one more command",
        result["command_s"] * 1000,
        "ms",
        "docker exec CONTAINER true",
        result["docker_exec_s"] * 1000,
        better="lower",
    )
    return result


def verdict(table: Table, quick: bool) -> dict[str, Any]:
    from benchmarks.verdict import run

    result = run(runs=3 if quick else 5)
    table.add(
        "verdict",
        "fresh sandbox from the snapshot + tests, demo",
        result["fresh_sandbox_verdict_s"] * 1000,
        "ms",
        "in-sandbox verdict (tests only)",
        result["in_sandbox_verdict_s"] * 1000,
        better="lower",
    )
    table.add(
        "verdict",
        "  of which beyond the test run itself",
        result["fresh_sandbox_overhead_s"] * 1000,
        "ms",
        "target",
        1000.0,
        better="lower",
    )
    table.add(
        "verdict",
        "second job: setup from the snapshot",
        result["second_job_from_snapshot_s"] * 1000,
        "ms",
        "first job: setup + snapshot",
        result["first_job_setup_s"] * 1000,
        better="lower",
    )
    return result


def languages(table: Table, quick: bool) -> dict[str, Any]:
    from benchmarks.languages import run

    # --quick leaves out the timed image builds (minutes each, through Debian's mirror).
    result = run(build_images=not quick)
    for name, row in result.items():
        if "build_s" in row:
            table.add("languages", f"{name}: image build ({row['image']})", row["build_s"], "s")
        table.add("languages", f"{name}: image size over the base", row["size_mb"], "MB")
        table.add("languages", f"{name}: setup", row["setup_s"], "s")
        table.add(
            "languages",
            f"{name}: second job, from the snapshot",
            row["second_job_s"],
            "s",
            "first job: setup + snapshot",
            row["first_job_s"],
            better="lower",
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="fewer and shorter runs")
    parser.add_argument(
        "--no-vllm",
        action="store_true",
        help="leave out the prefix row from a real vLLM server (on when its venv is here)",
    )
    args = parser.parse_args()
    sections = set(args.only.split(","))
    unknown = sections - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections: {', '.join(sorted(unknown))}")
    table, raw, started = Table(), {}, time.monotonic()
    if "webhook" in sections:
        raw["webhook"] = webhook(table, args.quick)
    if "pack" in sections:
        raw["pack"] = pack(table, args.quick)
    if "recall" in sections:
        raw["recall"] = recall(table, args.quick)
    if sections & {"prefix", "harness"}:
        raw["agent_run"] = agent_run(table, sections, server=not args.no_vllm)
    if "sandbox" in sections:
        raw["sandbox"] = sandbox(table, args.quick)
    if "verdict" in sections:
        raw["verdict"] = verdict(table, args.quick)
    if "languages" in sections:
        raw["languages"] = languages(table, args.quick)
    table.print()
    elapsed = time.monotonic() - started
    print(f"\n{elapsed:.0f} s in all; written to {RESULTS / 'latest.json'}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(),
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "seconds": round(elapsed, 1),
                "rows": table.rows,
                "raw": raw,
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
