"""Context packing on a large real repository, next to repomix and gitingest.

    python -m benchmarks.pack [--runs 3] [--django 5.2.*]

Fetches a Django source release from PyPI (cached in benchmarks/.cache), makes it a git
repository, then times whole processes on the same tree in the same run:

- qwenfix pack, cold (an empty token-count cache every run) and warm (cache filled);
  budget 262,144 - 65,536 = 196,608 tokens, counted exactly with Qwen3's tokenizer;
- repomix (npm) and gitingest (PyPI), installed on demand into the cache folder and
  skipped with a note when they cannot be installed. Both dump the whole tree: they have
  no token budget, which is why they are the anchor, not a like-for-like competitor.
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.measure import Summary, measure

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
RESULTS = HERE / "results"
BUDGET = 262_144 - 65_536
TASK = (
    "QuerySet.aggregate() crashes when an annotation uses Subquery with OuterRef:\n"
    'File "django/db/models/sql/query.py", line 450, in get_aggregation'
)


def django_tree(spec: str) -> Path:
    """The newest Django sdist matching `spec` (`5.2.*`), extracted and committed to git."""
    CACHE.mkdir(exist_ok=True)
    # One folder per spec: the newest release of one line is not the newest of another.
    downloads = CACHE / "downloads" / spec.replace("*", "x")
    found = sorted(glob.glob(str(downloads / "[Dd]jango-*.tar.gz")))
    if not found:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"django=={spec}",
                "-d",
                str(downloads),
            ],
            check=True,
        )
        found = sorted(glob.glob(str(downloads / "[Dd]jango-*.tar.gz")))
    archive = Path(found[-1])
    tree = CACHE / archive.name.removesuffix(".tar.gz")
    if not (tree / ".git").is_dir():
        shutil.rmtree(tree, ignore_errors=True)
        with tarfile.open(archive) as tar:
            tar.extractall(CACHE, filter="data")
        env = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        subprocess.run(["git", "-C", str(tree), "init", "-q"], check=True)
        subprocess.run(["git", "-C", str(tree), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(tree), *env, "commit", "-q", "-m", "release"], check=True)
    return tree


def repomix(version: str) -> tuple[list[str], str] | None:
    prefix = CACHE / f"repomix-{version}"
    binary = prefix / "node_modules" / ".bin" / "repomix"
    if not binary.exists() and shutil.which("npm"):
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(prefix),
                f"repomix@{version}",
            ],
            check=False,
            capture_output=True,
        )
    if not binary.exists():
        return None
    installed = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    return [str(binary)], installed.stdout.strip()


def gitingest() -> list[str] | None:
    venv = CACHE / "gitingest-venv"
    binary = venv / "bin" / "gitingest"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "gitingest"],
            check=False,
            capture_output=True,
        )
    return [str(binary)] if binary.exists() else None


def fixed_command(argv: list[str]) -> Callable[[int], tuple[list[str], dict[str, str]]]:
    return lambda _run: (argv, {})


def run(runs: int = 3, django: str = "5.2.*", versions: str = "latest") -> dict[str, Any]:
    """qwenfix pack, cold and warm, next to repomix and gitingest on the same tree."""
    tree = django_tree(django)
    files = subprocess.run(
        ["git", "-C", str(tree), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.count("\n")
    size = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file() and ".git" not in p.parts)
    out = Path(tempfile.mkdtemp(prefix="qwenfix-bench-"))
    qwenfix = [
        str(Path(sys.executable).parent / "qwenfix"),
        "pack",
        str(tree),
        "--task",
        TASK,
        "--budget",
        str(BUDGET),
        "-o",
        str(out / "qwenfix.txt"),
    ]
    warm_cache = str(out / "warm-cache")
    rows: list[Summary] = [
        measure(
            "qwenfix pack (cold)",
            runs,
            lambda i: (qwenfix, {"QWENFIX_CACHE_DIR": str(out / f"cold-{i}")}),
        ),
        measure(
            "qwenfix pack (warm)", runs, lambda i: (qwenfix, {"QWENFIX_CACHE_DIR": warm_cache})
        ),
    ]
    anchors: list[tuple[str, list[str] | None]] = []
    for version in versions.split(","):
        found = repomix(version)
        anchors.append(
            (f"repomix {found[1] if found else version}", [*found[0], "--quiet"] if found else None)
        )
    anchors.append(("gitingest", gitingest()))
    skipped = []
    for name, binary in anchors:
        if binary is None:
            skipped.append(f"{name}: not available here, skipped")
            continue
        rows.append(
            measure(name, runs, fixed_command([*binary, str(tree), "-o", str(out / "anchor.out")]))
        )
    cold = rows[0].wall_s
    for row in rows[2:]:
        row.note = f"qwenfix cold is {row.wall_s / cold:.1f}x faster"
    rows[1].note = f"{cold / rows[1].wall_s:.1f}x faster than cold"
    shutil.rmtree(out, ignore_errors=True)
    return {
        "tree": tree.name,
        "files": files,
        "bytes": size,
        "budget": BUDGET,
        "rows": [row.__dict__ for row in rows],
        "skipped": skipped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--django", default="5.2.*")
    parser.add_argument(
        "--repomix",
        default="latest",
        help="comma-separated npm versions of repomix to compare with",
    )
    args = parser.parse_args()
    result = run(args.runs, args.django, args.repomix)
    print(
        f"tree: {result['tree']}, {result['files']} files, {result['bytes'] / 1e6:.1f} MB; "
        f"budget {BUDGET} tokens"
    )
    for line in result["skipped"]:
        print(line)
    print(f"{'':<34} {'median wall':>10}              {'peak RSS':>10}")
    for row in result["rows"]:
        print(Summary(**row).row())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pack-latest.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
