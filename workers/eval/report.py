"""What an evaluation shows and leaves behind besides its results file: SWE-bench's
`predictions.jsonl` (so the official harness or `sb-cli` can score the same run), a
progress line per finished task, and a table by repository at the end."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

from workers.eval.runner import TaskResult, finished, summary
from workers.eval.tasks import EvalTask

STATUSES = ("resolved", "unresolved", "env_error", "agent_error")
REASON_CHARS = 100


def model_name(model: str, served: str) -> str:
    """SWE-bench's `model_name_or_path`: the honesty checks by name, else the served model
    (its harness turns `/` into `__` for its log directories, so a slash is fine)."""
    if model in ("oracle", "noop"):
        return f"qwenfix-{model}"
    return f"qwenfix/{served}"


def prediction(result: TaskResult, model: str) -> dict[str, str]:
    # An empty diff stays an empty patch: SWE-bench counts it as unresolved, which is
    # what it is, rather than leaving the task out of the denominator.
    return {
        "instance_id": result.instance_id,
        "model_name_or_path": model,
        "model_patch": result.diff,
    }


def write_predictions(path: Path, results: Iterable[TaskResult], model_name: str) -> None:
    """One line per result, written to a temporary file beside `path` and renamed over it,
    so a reader (or an interrupted run) never sees half a file."""
    lines = "".join(json.dumps(prediction(r, model_name)) + "\n" for r in results)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(lines)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def already_done(results: Path, tasks: Iterable[EvalTask]) -> int:
    """How many of `tasks` a resumed run skips, by the runner's own reading."""
    return len(finished(results).keys() & {t.instance_id for t in tasks})


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class Progress:
    """A line per finished task: `[3/20] id status (reason) 41 s · ETA 9 min`.

    Resumed tasks count as done but not towards the mean, which is of the tasks finished
    in this run. The runner calls back from its worker threads, hence the lock."""

    def __init__(self, total: int, *, resumed: int = 0, workers: int = 1) -> None:
        self.total = total
        self.done = resumed
        self.workers = max(1, workers)
        self._walls: list[float] = []
        self._lock = threading.Lock()

    def eta_s(self) -> float | None:
        remaining = self.total - self.done
        if remaining <= 0 or not self._walls:
            return None
        mean = sum(self._walls) / len(self._walls)
        # Fewer tasks left than workers: they run side by side, no faster than one each.
        return mean * remaining / min(self.workers, remaining)

    def line(self, result: TaskResult) -> str:
        with self._lock:
            self.done += 1
            self._walls.append(result.wall_s)
            eta = self.eta_s()
            done = self.done
        reason = result.reason.replace("\n", " ")
        if len(reason) > REASON_CHARS:
            reason = reason[: REASON_CHARS - 1] + "…"
        text = (
            f"[{done}/{self.total}] {result.instance_id} {result.status} ({reason}) "
            f"{duration(result.wall_s)}"
        )
        return text if eta is None else f"{text} · ETA {duration(eta)}"


def _row(label: str, results: list[TaskResult], statuses: tuple[str, ...]) -> list[str]:
    # The runner's own summary, so the table and the JSON figures cannot disagree.
    figures = summary(results)
    buildable = len(results) - int(figures["env_error"]) - int(figures["harness_error"])
    share = f"{figures['resolved_of_buildable_pct']:.1f}" if buildable else "—"
    return [label, str(len(results)), *(str(figures[s]) for s in statuses), share]


def summary_table(results: list[TaskResult], tasks: Iterable[EvalTask]) -> str:
    """Counts by status, one row per repository and a total row, as plain text."""
    repo_of = {t.instance_id: t.repo for t in tasks}
    by_repo: dict[str, list[TaskResult]] = {}
    for result in results:
        by_repo.setdefault(repo_of.get(result.instance_id, "(not in the task file)"), []).append(
            result
        )
    # qwenfix's own failures get a column only when there are any.
    statuses = STATUSES + (
        ("harness_error",) if any(r.status == "harness_error" for r in results) else ()
    )
    header = ["repository", "tasks", *statuses, "resolved % of buildable"]
    rows = [_row(repo, by_repo[repo], statuses) for repo in sorted(by_repo)]
    rows.append(_row("all", results, statuses))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def render(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), rule, *map(render, rows[:-1]), rule, render(rows[-1])])
