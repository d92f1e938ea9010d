"""Does the pack hold the fix? Context recall on real issues, next to BM25 filled greedily.

    python -m benchmarks.recall [--split test|dev|all] [--budgets 65536,131072,262144]
                                [--data FILE] [--limit N] [--instances ID,ID]

For each issue (a repository tree, its problem statement, the files its reference fix
changed), qwenfix packs the tree with the problem statement as the task, as a job does,
at each budget; an issue counts as held when every fix file is in the pack *in full*.
The anchor, computed in the same run on the same files: BM25 (bm25s) ranking every file
the pack may include by the problem statement, filled greedily, best first, into the same
room the pack had for files.

Material: SWE-bench Lite's Django issues with their fix files (`--data`, by default
../shared/data/swebench-lite-django-gold-files.jsonl). Each issue is scored on the newest
PyPI release of its Django line (downloaded once into benchmarks/.cache), which differs a
little from the issue's commit: only issues whose fix files all exist there are scored,
and the report says how many were skipped. Issues are split in two halves, `dev` and
`test`, by a hash of their id: the ranking is tuned on `dev`; the figures reported
(`docs/performance.md`) are `test`'s.

Pack times are with the token-count cache warm for the tree (a worker keeps it across
jobs): they measure ranking and selection, not first-time tokenisation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workers.engine.context.classify import ContextRules
from workers.engine.context.pack import Packer, PackReport, file_part
from workers.engine.context.sources import WorkingTreeFiles
from workers.engine.context.tokens import CountCache, TokenCounter

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
RESULTS = HERE / "results"
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "swebench-lite-django-gold-files.jsonl"
BUDGETS = (65_536, 131_072, 262_144)
Split = Literal["dev", "test", "all"]
_RANK = re.compile(r"^rank (\d+) ")
_WORDS = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Issue:
    instance_id: str
    version: str
    problem_statement: str
    gold_files: tuple[str, ...]


def split_of(instance_id: str) -> Literal["dev", "test"]:
    """A stable half: the same issue is always on the same side, whatever the data file."""
    return "dev" if hashlib.sha256(instance_id.encode()).digest()[0] % 2 == 0 else "test"


def load(path: Path) -> list[Issue]:
    if not path.is_file():
        raise SystemExit(
            f"no recall data at {path}: pass --data FILE (JSON lines with instance_id, "
            f"version, problem_statement, gold_files)"
        )
    issues = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            issues.append(
                Issue(
                    row["instance_id"],
                    str(row["version"]),
                    row["problem_statement"],
                    tuple(row["gold_files"]),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"{path}:{number}: not a recall row ({exc!r})") from exc
    return issues


def select(
    issues: Iterable[Issue], split: Split, only: Sequence[str] = (), limit: int | None = None
) -> list[Issue]:
    chosen = [
        i
        for i in issues
        if (split == "all" or split_of(i.instance_id) == split)
        and (not only or i.instance_id in only)
    ]
    return chosen[:limit] if limit else chosen


# -- the two methods ------------------------------------------------------------------


@dataclass
class Outcome:
    """One method on one issue at one budget."""

    held: bool
    files: dict[str, dict[str, Any]]  # fix file -> mode, rank, tokens (and reason)
    seconds: float = 0.0


def words(text: str) -> list[str]:
    """BM25's tokens: runs of letters and digits, lower-cased (so `get_FOO_display`
    gives get, foo, display): the plain tokenisation a BM25 baseline uses."""
    return _WORDS.findall(text.lower())


def file_rooms(report: PackReport) -> tuple[set[str], int]:
    """The files the pack could include (not left out by its rules) and the tokens it
    spent on what is not a file (the tree, the left-out list, the summary)."""
    candidates = {
        f.path for f in report.files if f.mode != "omitted" or f.reason.startswith("rank ")
    }
    file_tokens = sum(f.tokens for f in report.files if f.mode != "omitted")
    return candidates, report.tokens - file_tokens


@dataclass
class Tree:
    """One release's files, with what both methods need computed once per run."""

    root: Path
    counter: TokenCounter
    cache_path: Path
    _texts: dict[str, str] = field(default_factory=dict)
    _tokens: dict[str, int] = field(default_factory=dict)
    _index: Any = None
    _paths: list[str] = field(default_factory=list)

    def pack(self, task: str, budget: int) -> tuple[PackReport, float]:
        cache = CountCache(self.cache_path)
        try:
            started = time.perf_counter()
            packed = Packer(
                WorkingTreeFiles(self.root), rules=ContextRules(), cache=cache, counter=self.counter
            ).pack(task=task, budget=budget)
            return packed.report, time.perf_counter() - started
        finally:
            cache.close()

    def text(self, path: str) -> str:
        if path not in self._texts:
            self._texts[path] = (self.root / path).read_bytes().decode("utf-8", errors="replace")
        return self._texts[path]

    def full_tokens(self, paths: Sequence[str]) -> dict[str, int]:
        """Each file's whole part, counted as the pack counts it."""
        todo = [p for p in paths if p not in self._tokens]
        for start in range(0, len(todo), 256):
            chunk = todo[start : start + 256]
            counts = self.counter.count_many([file_part(p, self.text(p)) for p in chunk])
            self._tokens.update(zip(chunk, counts, strict=True))
        return {p: self._tokens[p] for p in paths}

    def bm25_order(self, candidates: set[str], task: str) -> list[str]:
        import bm25s

        if self._index is None or set(self._paths) != candidates:
            self._paths = sorted(candidates)
            # The path is part of the document: a baseline that ignored it would be a straw man.
            corpus = [words(p + "\n" + self.text(p)) for p in self._paths]
            self._index = bm25s.BM25()
            self._index.index(corpus, show_progress=False)
        scores = self._index.get_scores(words(task))
        return [p for _, p in sorted(zip(-scores, self._paths, strict=True))]


def qwenfix_outcome(report: PackReport, gold: Sequence[str], seconds: float) -> Outcome:
    by_path = {f.path: f for f in report.files}
    files = {}
    for path in gold:
        f = by_path[path]
        match = _RANK.match(f.reason)
        files[path] = {
            "mode": f.mode,
            "rank": int(match.group(1)) if match else None,
            "tokens": f.tokens,
            "reason": f.reason,
        }
    return Outcome(all(v["mode"] == "full" for v in files.values()), files, seconds)


def bm25_outcome(tree: Tree, report: PackReport, task: str, gold: Sequence[str]) -> Outcome:
    started = time.perf_counter()
    candidates, overhead = file_rooms(report)
    order = tree.bm25_order(candidates, task)
    tokens = tree.full_tokens(order)
    room = report.budget - overhead
    held: set[str] = set()
    for path in order:
        if tokens[path] <= room:
            held.add(path)
            room -= tokens[path]
        if room <= 0:
            break
    rank = {p: i + 1 for i, p in enumerate(order)}
    files = {
        p: {
            "mode": "full" if p in held else "omitted",
            "rank": rank.get(p),
            "tokens": tokens.get(p),
        }
        for p in gold
    }
    return Outcome(all(p in held for p in gold), files, time.perf_counter() - started)


# -- trees and the run ----------------------------------------------------------------


def release_tree(line: str) -> Path:
    from benchmarks.pack import django_tree

    return django_tree(f"{line}.*")


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    ranks = sorted(
        r["rank"] if r["rank"] is not None else 10**9 for o in outcomes for r in o.files.values()
    )
    full = [r["mode"] == "full" for o in outcomes for r in o.files.values()]

    def quantile(q: float) -> int | None:
        return ranks[min(len(ranks) - 1, int(q * len(ranks)))] if ranks else None

    return {
        "issues": len(outcomes),
        "recall": sum(o.held for o in outcomes) / len(outcomes) if outcomes else 0.0,
        "fix_files_in_full": sum(full) / len(full) if full else 0.0,
        "median_rank": quantile(0.5),
        "p90_rank": quantile(0.9),
        "median_seconds": statistics.median(o.seconds for o in outcomes) if outcomes else 0.0,
    }


def run(
    split: Split = "test",
    budgets: Sequence[int] = BUDGETS,
    data: Path = DEFAULT_DATA,
    only: Sequence[str] = (),
    limit: int | None = None,
    progress: bool = True,
    trees: Callable[[str], Path] = release_tree,
    cache: Path = CACHE,
) -> dict[str, Any]:
    """`trees(line)` is the source tree of a release line (PyPI's newest release)."""
    issues = select(load(data), split, only, limit)
    counter = TokenCounter()
    rows: list[dict[str, Any]] = []
    skipped: dict[str, list[str]] = {}
    scored: dict[str, int] = {}
    by_method: dict[str, dict[int, list[Outcome]]] = {
        "qwenfix": {b: [] for b in budgets},
        "bm25": {b: [] for b in budgets},
    }
    started = time.perf_counter()
    for line in sorted({i.version for i in issues}):
        root = trees(line)
        tree = Tree(root, counter, cache / f"counts-{root.name}.sqlite")
        for issue in (i for i in issues if i.version == line):
            missing = [g for g in issue.gold_files if not (root / g).is_file()]
            if missing:
                skipped.setdefault(root.name, []).append(
                    f"{issue.instance_id}: {', '.join(missing)} not in {root.name}"
                )
                continue
            scored[root.name] = scored.get(root.name, 0) + 1
            row: dict[str, Any] = {
                "instance_id": issue.instance_id,
                "version": line,
                "tree": root.name,
                "gold_files": list(issue.gold_files),
                "budgets": {},
            }
            for budget in budgets:
                report, seconds = tree.pack(issue.problem_statement, budget)
                ours = qwenfix_outcome(report, issue.gold_files, seconds)
                theirs = bm25_outcome(tree, report, issue.problem_statement, issue.gold_files)
                by_method["qwenfix"][budget].append(ours)
                by_method["bm25"][budget].append(theirs)
                row["budgets"][str(budget)] = {
                    "qwenfix": ours.__dict__,
                    "bm25": theirs.__dict__,
                }
            rows.append(row)
            if progress:
                marks = " ".join(
                    f"{b // 1024}K:{'Y' if row['budgets'][str(b)]['qwenfix']['held'] else '-'}"
                    f"/{'Y' if row['budgets'][str(b)]['bm25']['held'] else '-'}"
                    for b in budgets
                )
                print(f"  {issue.instance_id:<24} {marks}  (qwenfix/bm25)", flush=True)
    return {
        "split": split,
        "data": str(data),
        "budgets": list(budgets),
        "scored": scored,
        "skipped": skipped,
        "seconds": round(time.perf_counter() - started, 1),
        "summary": {
            method: {str(b): summarise(outs) for b, outs in per_budget.items()}
            for method, per_budget in by_method.items()
        },
        "issues": rows,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"split {result['split']}: {sum(result['scored'].values())} issues scored "
        f"({', '.join(f'{k} {v}' for k, v in result['scored'].items())}), "
        f"{sum(len(v) for v in result['skipped'].values())} skipped (fix file not in the "
        f"release); {result['seconds']} s",
        f"{'budget':>8} {'method':<8} {'recall':>7} {'fix files in full':>18} "
        f"{'median rank':>12} {'p90 rank':>9} {'median pack s':>14}",
    ]
    for budget in result["budgets"]:
        for method in ("qwenfix", "bm25"):
            s = result["summary"][method][str(budget)]
            lines.append(
                f"{budget:>8} {method:<8} {s['recall']:>7.1%} {s['fix_files_in_full']:>18.1%} "
                f"{s['median_rank'] or '-':>12} {s['p90_rank'] or '-':>9} "
                f"{s['median_seconds']:>14.2f}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", choices=("dev", "test", "all"), default="test")
    parser.add_argument("--budgets", default=",".join(str(b) for b in BUDGETS))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--instances", default="", help="comma-separated instance ids")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--out", type=Path, default=RESULTS / "recall.json")
    args = parser.parse_args()
    result = run(
        args.split,
        [int(b) for b in args.budgets.split(",")],
        args.data,
        [i for i in args.instances.split(",") if i],
        args.limit,
    )
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"per-issue rows: {args.out}")


if __name__ == "__main__":
    main()
