"""The context-recall benchmark's scoring (benchmarks/recall.py), on a small made-up tree:
the real packer and tokenizer, the real BM25 library, no download."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.recall import load, run, select, split_of, words
from tests.helpers import make_repo

TASK = (
    "compute_invoice_total() raises ZeroDivisionError when an invoice has no lines:\n"
    '  File "shop/billing.py", line 3, in compute_invoice_total'
)


def make_tree(root: Path) -> Path:
    """Forty modules of filler that cannot all fit a small budget, and the one to fix."""
    files = {
        f"shop/module_{n:02}.py": "".join(
            f"def helper_{n}_{k}(value):\n    return value * {k} + {n}  # arithmetic\n\n"
            for k in range(60)
        )
        for n in range(40)
    }
    files["shop/billing.py"] = (
        "def compute_invoice_total(lines):\n"
        "    return sum(lines) / len(lines)  # ZeroDivisionError on an empty invoice\n"
    )
    return make_repo(root, files)


def test_the_split_is_stable_and_about_half() -> None:
    ids = [f"project__project-{n}" for n in range(400)]
    sides = [split_of(i) for i in ids]
    assert sides == [split_of(i) for i in ids]
    assert 150 < sides.count("dev") < 250


def test_bm25_tokens_split_identifiers() -> None:
    assert words("get_FOO_display() in django/db.py") == [
        "get",
        "foo",
        "display",
        "in",
        "django",
        "db",
        "py",
    ]


def test_scores_the_pack_and_the_anchor_on_each_budget(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    data = tmp_path / "issues.jsonl"
    rows = [
        {
            "instance_id": "shop__shop-1",
            "version": "1.0",
            "problem_statement": TASK,
            "gold_files": ["shop/billing.py"],
        },
        {
            "instance_id": "shop__shop-2",
            "version": "1.0",
            "problem_statement": "the exporter drops the header row",
            "gold_files": ["shop/exporter.py"],  # not in this release: skipped
        },
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))

    result = run(
        "all", [4096, 16384], data, progress=False, trees=lambda line: tree, cache=tmp_path
    )

    assert result["scored"] == {"tree": 1}
    assert result["skipped"] == {"tree": ["shop__shop-2: shop/exporter.py not in tree"]}
    [row] = result["issues"]
    for budget in ("4096", "16384"):
        ours = row["budgets"][budget]["qwenfix"]
        assert ours["held"] is True
        assert ours["files"]["shop/billing.py"]["mode"] == "full"
        assert ours["files"]["shop/billing.py"]["rank"] == 1
        bm25 = row["budgets"][budget]["bm25"]
        assert bm25["files"]["shop/billing.py"]["rank"] == 1
        assert bm25["held"] is True
    # A budget this small cannot hold the whole tree: the pack had to rank and choose.
    small = result["summary"]["qwenfix"]["4096"]
    assert small == {**small, "issues": 1, "recall": 1.0, "fix_files_in_full": 1.0}


def test_refuses_a_malformed_data_file(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"instance_id": "x"}\n')
    with pytest.raises(SystemExit, match=r"bad\.jsonl:1: not a recall row"):
        load(data)
    assert select([], "test") == []
