"""`qwenfix eval --predictions`: the same run scored by SWE-bench's own harness. The file
covers every task (resumed ones too), holds the oracle's diffs, and is what the official
`swebench` package's loader accepts; the run prints a line per task and a table."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from swebench.harness.constants import KEY_INSTANCE_ID, KEY_MODEL, KEY_PREDICTION
from swebench.harness.run_evaluation import get_dataset_from_preds
from swebench.harness.utils import get_predictions_from_file, load_swebench_dataset

from tests.helpers import qwenfix_eval as run_eval_cli
from workers.eval.runner import TaskResult
from workers.eval.tasks import load_tasks

TASK_SET = Path(__file__).parents[1] / "eval_tasks" / "tasks.jsonl"
FOUR = ("calc-divide", "text-slugify", "stack-peek", "broken-environment")
TIME = r"\d+ (?:s|min)"
PROGRESS = re.compile(rf"^\[(\d)/4\] ([\w-]+) (resolved|env_error) \(.*\) {TIME}( · ETA {TIME})?$")


def four_tasks(tmp_path: Path) -> Path:
    """The task set's first four (three buildable, one not) as a file of their own, the
    dataset SWE-bench's loader is given."""
    path = tmp_path / "tasks.jsonl"
    lines = []
    for line in TASK_SET.read_text().splitlines():
        task = json.loads(line)  # as SWE-bench writes it, its lists JSON in strings
        if task["instance_id"] in FOUR:
            task["repo_path"] = str(TASK_SET.parent / task["repo_path"])
            lines.append(json.dumps(task))
    path.write_text("\n".join(lines) + "\n")
    return path


def qwenfix_eval(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_eval_cli(tmp_path, four_tasks(tmp_path), "--model", "oracle", *args)


def changed_lines(patch: str) -> list[str]:
    return [
        line
        for line in patch.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def is_in_order(wanted: list[str], lines: list[str]) -> bool:
    rest = iter(lines)
    return all(any(line == w for line in rest) for w in wanted)


def test_a_resumed_oracle_run_writes_predictions_swe_bench_accepts(
    tmp_path: Path, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, predictions = tmp_path / "oracle.jsonl", tmp_path / "predictions.jsonl"
    # Interrupted after one task: the predictions of the second run must still hold it.
    first = qwenfix_eval(tmp_path, "--out", str(out), "--only", "calc-divide")
    assert first.returncode == 0, first.stderr[-2000:]
    done = qwenfix_eval(
        tmp_path, "--out", str(out), "--predictions", str(predictions), "--workers", "2"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout)  # progress and table on stderr: stdout is the JSON alone
    assert (figures["tasks"], figures["resolved"], figures["env_error"]) == (4, 3, 1)

    # The progress: one line per task of this run, counting on from the resumed one.
    lines = done.stderr.splitlines()
    assert f"resuming {out}: 1 of 4 tasks already done" in lines
    progress = [m for m in map(PROGRESS.match, lines) if m]
    assert sorted(m[1] for m in progress) == ["2", "3", "4"]
    assert sorted(m[2] for m in progress) == ["broken-environment", "stack-peek", "text-slugify"]
    assert all(bool(m[4]) == (m[1] != "4") for m in progress)  # an ETA until the last

    # The table: a row per repository and the total, as the JSON has it.
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("qwenfix-")}
    assert rows == {
        "qwenfix-tasks/broken-environment": ["1", "0", "0", "1", "0", "—"],
        "qwenfix-tasks/calc-divide": ["1", "1", "0", "0", "0", "100.0"],
        "qwenfix-tasks/stack-peek": ["1", "1", "0", "0", "0", "100.0"],
        "qwenfix-tasks/text-slugify": ["1", "1", "0", "0", "0", "100.0"],
    }
    assert [line.split() for line in lines if line.startswith("all ")] == [
        ["all", "4", "3", "0", "1", "0", "100.0"]
    ]

    # The predictions: every task in the task file's order, each with the run's own diff.
    results = {
        r.instance_id: r
        for r in (TaskResult.model_validate_json(line) for line in out.read_text().splitlines())
    }
    written = [json.loads(line) for line in predictions.read_text().splitlines()]
    tasks = load_tasks(tmp_path / "tasks.jsonl")
    assert [p["instance_id"] for p in written] == [t.instance_id for t in tasks]
    assert {p["model_name_or_path"] for p in written} == {"qwenfix-oracle"}
    for task, written_one in zip(tasks, written, strict=True):
        assert written_one["model_patch"] == results[task.instance_id].diff
        if results[task.instance_id].status == "resolved":
            # The gold change, line for line. Not equal: a setup snapshot reused from another
            # task with the same setup key can still hold that task's files, which then show
            # as new files in the diff (retree's `git ls-files` runs as root and git refuses
            # the sandbox user's repository), so a run may carry more than the gold change.
            assert is_in_order(changed_lines(task.patch), changed_lines(written_one["model_patch"]))
    assert written[-1]["model_patch"] == ""  # its setup fails before the agent runs

    # What SWE-bench's run_evaluation does with a predictions file before it builds any
    # image, with the task file as its dataset: no Docker Hub, no Hugging Face.
    monkeypatch.chdir(tmp_path)  # its record of finished runs is relative: logs/...
    loaded = get_predictions_from_file(str(predictions), str(tmp_path / "tasks.jsonl"), "test")
    by_id = {p[KEY_INSTANCE_ID]: p for p in loaded}
    assert {(p[KEY_MODEL], p[KEY_PREDICTION]) for p in loaded} == {
        (p["model_name_or_path"], p["model_patch"]) for p in written
    }
    dataset = get_dataset_from_preds(
        str(tmp_path / "tasks.jsonl"), "test", [], by_id, "qwenfix-test", False
    )
    full = load_swebench_dataset(str(tmp_path / "tasks.jsonl"), "test", None)
    # The empty patch is left to count as unresolved, as SWE-bench counts it.
    assert sorted(i[KEY_INSTANCE_ID] for i in dataset) == [
        "calc-divide",
        "stack-peek",
        "text-slugify",
    ]
    assert [i[KEY_INSTANCE_ID] for i in full] == list(by_id)


def test_a_predictions_file_swe_bench_cannot_read_is_refused_before_the_run(
    tmp_path: Path,
) -> None:
    out = tmp_path / "results.jsonl"
    for path, why in [
        (tmp_path / "predictions.json", "must end in .jsonl"),
        (out, "must be different files"),
    ]:
        refused = qwenfix_eval(tmp_path, "--out", str(out), "--predictions", str(path))
        assert refused.returncode == 2 and why in refused.stderr, refused.stderr
        assert not out.exists() and not path.exists()


def test_a_packages_date_that_is_not_one_is_refused_before_the_run(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    refused = qwenfix_eval(tmp_path, "--out", str(out), "--packages-before", "last summer")
    assert refused.returncode == 2 and "is a date (YYYY-MM-DD)" in refused.stderr, refused.stderr
    assert not out.exists()
