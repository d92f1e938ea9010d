from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import git, make_repo
from workers.engine.diffmap import DiffMap, ReviewComment


def pr_diff(tmp_path: Path) -> str:
    before = "".join(f"line {n}\n" for n in range(1, 41))
    repo = make_repo(
        tmp_path / "r", {"calc.py": before, "old_name.py": "a\nb\nc\n", "gone.py": "x\ny\n"}
    )
    after = before.replace("line 3\n", "line three\n").replace(
        "line 30\n", "line thirty\nline 30b\n"
    )
    (repo / "calc.py").write_text(after)
    git(repo, "mv", "old_name.py", "new_name.py")
    (repo / "new_name.py").write_text("a\nB\nc\n")
    (repo / "gone.py").unlink()
    git(repo, "add", "-A")
    return subprocess.run(
        ["git", "-C", str(repo), "diff", "--cached", "-M"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_lines_of_several_hunks_renames_and_deletions(tmp_path: Path) -> None:
    diff = DiffMap(pr_diff(tmp_path))
    assert diff.commentable("calc.py", 3)  # added
    assert diff.commentable("calc.py", 3, "LEFT")  # removed
    assert diff.commentable("calc.py", 5)  # context of the first hunk
    assert diff.commentable("calc.py", 31)  # second hunk, added
    assert not diff.commentable("calc.py", 15)  # between the hunks
    assert diff.commentable("new_name.py", 2)
    assert diff.commentable("old_name.py", 2)  # the old name resolves to the new one
    assert diff.commentable("gone.py", 1, "LEFT") and not diff.commentable("gone.py", 1)


def test_placement_keeps_what_github_would_reject_for_the_summary(tmp_path: Path) -> None:
    diff = DiffMap(pr_diff(tmp_path))
    placed = diff.place(
        [
            ReviewComment(path="calc.py", line=3, body="```suggestion\nline 3\n```"),
            ReviewComment(path="calc.py", line=15, body="unrelated"),
            ReviewComment(path="old_name.py", line=2, body="why upper case?"),
            ReviewComment(path="gone.py", line=2, side="LEFT", body="```suggestion\ny\n```"),
            ReviewComment(path="nowhere.py", line=1, body="?"),
        ]
    )
    assert [(c.path, c.line, c.side) for c in placed.inline] == [
        ("calc.py", 3, "RIGHT"),
        ("new_name.py", 2, "RIGHT"),
        ("gone.py", 2, "LEFT"),
    ]
    assert "```suggestion" in placed.inline[0].body
    assert "```suggestion" not in placed.inline[2].body
    assert [(c.path, c.line) for c in placed.elsewhere] == [("calc.py", 15), ("nowhere.py", 1)]
