from __future__ import annotations

from workers.jobs.push_checks import blocked

FAKE_KEY = "AKIA" + "ABCDEFGHIJKLMNOP"  # shaped like an AWS key id, not a real one


def diff(path: str, added: list[str], removed: int = 0) -> str:
    body = "".join(f"-old {i}\n" for i in range(removed)) + "".join(f"+{a}\n" for a in added)
    return (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
        f"@@ -1,{removed} +1,{len(added)} @@\n{body}"
    )


def test_a_small_clean_diff_passes() -> None:
    assert blocked(diff("calc.py", ["x = 1"]), max_lines=100, allow_workflows=False) is None


def test_size_limit() -> None:
    reason = blocked(diff("calc.py", ["x"] * 80, removed=30), max_lines=100, allow_workflows=False)
    assert reason == "the change is 110 lines, over the limit of 100"


def test_workflows_need_permission() -> None:
    change = diff(".github/workflows/ci.yml", ["on: push"])
    assert "allow_workflow_changes: true" in (
        blocked(change, max_lines=100, allow_workflows=False) or ""
    )
    assert blocked(change, max_lines=100, allow_workflows=True) is None


def test_added_credentials_block_the_push() -> None:
    reason = blocked(
        diff("settings.py", ["ok = 1", f'KEY = "{FAKE_KEY}"']), max_lines=100, allow_workflows=False
    )
    assert reason == "an added line in settings.py looks like a credential (AWS access key)"
    removed_only = (
        f'diff --git a/s.py b/s.py\n--- a/s.py\n+++ b/s.py\n@@ -1,1 +0,0 @@\n-KEY = "{FAKE_KEY}"\n'
    )
    assert blocked(removed_only, max_lines=100, allow_workflows=False) is None
