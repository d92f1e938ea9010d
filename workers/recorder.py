"""A job's trajectory, also in the job store: the dashboard follows runs live from there,
and the worker's metrics are summed from the same records."""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from bot.jobs import JobStore

log = logging.getLogger(__name__)

MAX_TEXT = 64_000
"""Longer texts (the packed repository) are cut in the store; the file keeps them whole."""


class Tally(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    model_s: float = 0.0
    sandbox_s: float = 0.0
    turns: int = 0


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return (f"{value[:MAX_TEXT]}\n[… {len(value) - MAX_TEXT:,} more characters; the "
                "trajectory file has the whole text]")
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value]
    return value


def tally(total: Tally, line: dict[str, Any]) -> None:
    """Model tokens and time, and sandbox time (tools, setup, tests), from one record."""
    event = line.get("event")
    if event == "message" and isinstance(line.get("usage"), dict):
        usage = line["usage"]
        total.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        total.completion_tokens += int(usage.get("completion_tokens") or 0)
        total.cached_tokens += int(usage.get("cached_tokens") or 0)
        total.model_s += float(line.get("latency_s") or 0)
        total.turns += 1
    elif event == "message" and line.get("elapsed_s") is not None:
        total.sandbox_s += float(line["elapsed_s"])
    elif event in ("setup", "upgrade", "autofix", "check", "tests_before", "tests_head"):
        total.sandbox_s += float(line.get("duration_s") or 0)
    elif event == "verify":
        total.sandbox_s += float((line.get("tests") or {}).get("duration_s") or 0)


class JobRecorder:
    def __init__(self, jobs: JobStore, job_id: int) -> None:
        self.jobs, self.job_id = jobs, job_id
        self.total = Tally()

    def __call__(self, line: dict[str, Any]) -> None:
        tally(self.total, line)
        try:
            self.jobs.add_record(self.job_id, str(line.get("event")),
                                 json.dumps(_cut(line), default=str, ensure_ascii=False))
        except SQLAlchemyError as exc:  # the run matters more than its live view
            log.warning("job %s: could not store a trajectory record: %s", self.job_id, exc)
