"""What `qwenfix eval` shows and leaves besides its results: SWE-bench's predictions file,
the progress line with its ETA, and the table by repository."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from workers.eval.report import (
    Progress,
    already_done,
    duration,
    model_name,
    summary_table,
    write_predictions,
)
from workers.eval.runner import Status, TaskResult
from workers.eval.tasks import EvalTask

DIFF = "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-a\n+b\n"


def result(instance_id: str, status: Status, *, wall_s: float = 10.0, diff: str = "") -> TaskResult:
    return TaskResult(
        instance_id=instance_id, status=status, reason=f"{status} because", wall_s=wall_s, diff=diff
    )


def task(instance_id: str, repo: str) -> EvalTask:
    return EvalTask(instance_id=instance_id, repo=repo, base_commit="HEAD", problem_statement="x")


def test_the_model_name_is_the_check_or_the_served_model() -> None:
    assert model_name("oracle", "Qwen/Qwen3-Coder-30B-A3B-Instruct") == "qwenfix-oracle"
    assert model_name("noop", "anything") == "qwenfix-noop"
    assert (
        model_name("server", "Qwen/Qwen3-Coder-30B-A3B-Instruct")
        == "qwenfix/Qwen/Qwen3-Coder-30B-A3B-Instruct"
    )


def test_predictions_are_one_swe_bench_line_per_result_empty_diffs_included(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs" / "predictions.jsonl"  # the directory is made
    results = [result("a", "resolved", diff=DIFF), result("b", "env_error")]
    write_predictions(path, results, "qwenfix/m")
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"instance_id": "a", "model_name_or_path": "qwenfix/m", "model_patch": DIFF},
        {"instance_id": "b", "model_name_or_path": "qwenfix/m", "model_patch": ""},
    ]
    assert os.listdir(path.parent) == ["predictions.jsonl"]  # no temporary left behind


def test_predictions_replace_an_earlier_file_whole_and_never_half(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "predictions.jsonl"
    write_predictions(path, [result("a", "resolved", diff=DIFF), result("b", "unresolved")], "m")
    write_predictions(path, [result("c", "unresolved")], "m")
    assert [json.loads(line)["instance_id"] for line in path.read_text().splitlines()] == ["c"]

    def disk_full(fd: int) -> None:
        raise OSError("No space left on device")

    # Failing while the new file is written leaves the earlier one as it was, no temporary.
    monkeypatch.setattr("workers.eval.report.os.fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_predictions(path, [result("d", "resolved", diff=DIFF)], "m")
    assert [json.loads(line)["instance_id"] for line in path.read_text().splitlines()] == ["c"]
    assert os.listdir(tmp_path) == ["predictions.jsonl"]


def test_already_done_counts_only_the_chosen_tasks_in_the_results(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    assert already_done(out, [task("a", "o/r")]) == 0
    out.write_text(
        "\n".join(r.model_dump_json() for r in [result("a", "resolved"), result("z", "resolved")])
        + "\n\n"
    )
    assert already_done(out, [task("a", "o/r"), task("b", "o/r")]) == 1
    # As the runner resumes: what qwenfix failed on, and a line cut short, run again.
    with out.open("a") as more:
        more.write(result("b", "harness_error").model_dump_json() + "\n" + '{"instance_id": "c"')
    assert already_done(out, [task("a", "o/r"), task("b", "o/r"), task("c", "o/r")]) == 1


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "0 s"),
        (41.2, "41 s"),
        (59.4, "59 s"),
        (61, "1 min"),
        (540, "9 min"),
        (3900, "1 h 05 min"),
    ],
)
def test_durations_read_as_a_person_would_say_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_progress_counts_resumed_tasks_as_done_but_not_in_the_mean() -> None:
    progress = Progress(20, resumed=2, workers=1)
    first = progress.line(
        TaskResult(
            instance_id="psf__requests-2317",
            status="resolved",
            reason="all 4 tests pass",
            wall_s=41,
        )
    )
    # 17 left at the mean of this run's one task (41 s), one at a time: 697 s.
    assert first == "[3/20] psf__requests-2317 resolved (all 4 tests pass) 41 s · ETA 12 min"
    second = progress.line(result("b", "unresolved", wall_s=19))
    # 16 left at a mean of 30 s.
    assert second == "[4/20] b unresolved (unresolved because) 19 s · ETA 8 min"


def test_the_eta_is_shared_between_workers_and_absent_at_the_end() -> None:
    progress = Progress(10, workers=4)
    # Nine left, 60 s each, four at a time: 135 s.
    assert progress.line(result("a", "resolved", wall_s=60)).endswith("1 min · ETA 2 min")
    for name in "bcdefg":
        progress.line(result(name, "resolved", wall_s=60))
    # Two left with four workers: they run side by side, one task's time.
    assert progress.line(result("h", "resolved", wall_s=60)).endswith("· ETA 1 min")
    progress.line(result("i", "resolved", wall_s=60))
    assert progress.line(result("j", "resolved", wall_s=60)) == (
        "[10/10] j resolved (resolved because) 1 min"
    )


def test_a_long_reason_is_cut_to_one_short_line() -> None:
    progress = Progress(1)
    long = TaskResult(instance_id="a", status="env_error", reason="setup\nfailed " + "x" * 300)
    line = progress.line(long)
    assert "\n" not in line and line.startswith("[1/1] a env_error (setup failed xxx")
    assert line.endswith("…) 0 s") and len(line) < 140


def test_the_table_counts_each_repository_and_the_whole_run() -> None:
    tasks = [
        task("req-1", "psf/requests"),
        task("req-2", "psf/requests"),
        task("req-3", "psf/requests"),
        task("dj-1", "django/django"),
        task("dj-2", "django/django"),
        task("fl-1", "pallets/flask"),
    ]
    results = [
        result("req-1", "resolved"),
        result("req-2", "unresolved"),
        result("req-3", "env_error"),
        result("dj-1", "resolved"),
        result("dj-2", "agent_error"),
        result("fl-1", "env_error"),
    ]
    lines = summary_table(results, tasks).splitlines()
    assert lines[0].split() == [
        "repository",
        "tasks",
        "resolved",
        "unresolved",
        "env_error",
        "agent_error",
        "resolved",
        "%",
        "of",
        "buildable",
    ]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:] if not line.startswith("-")}
    assert rows == {
        "django/django": ["2", "1", "0", "0", "1", "50.0"],
        "pallets/flask": ["1", "0", "0", "1", "0", "—"],  # nothing built: no share to give
        "psf/requests": ["3", "1", "1", "1", "0", "50.0"],
        "all": ["6", "2", "1", "2", "1", "50.0"],
    }
    assert [line.split()[0] for line in lines[2:] if not line.startswith("-")] == [
        "django/django",
        "pallets/flask",
        "psf/requests",
        "all",
    ]
    assert set(lines[1]) == set(lines[-2]) == {"-", " "}  # rules under the header, over all
    assert len({len(line) for line in lines[:2]}) == 1  # the header is as wide as the rule


def test_the_table_of_an_empty_run_is_a_total_of_nothing() -> None:
    assert summary_table([], []).splitlines()[-1].split() == ["all", "0", "0", "0", "0", "0", "—"]
