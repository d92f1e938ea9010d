"""A job's trajectory, also in the job store: the dashboard follows runs live from there,
and the worker's metrics are summed from the same records (the same accounting)."""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.contract.store import JobStore
from bot.contract.summary import Costs

log = logging.getLogger(__name__)

MAX_TEXT = 64_000
"""Longer texts (the packed repository) are cut in the store; the file keeps them whole."""


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return (
            f"{value[:MAX_TEXT]}\n[… {len(value) - MAX_TEXT:,} more characters; the "
            "trajectory file has the whole text]"
        )
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value]
    return value


class JobRecorder:
    def __init__(self, jobs: JobStore, job_id: int) -> None:
        self.jobs, self.job_id = jobs, job_id
        self.total = Costs()

    def __call__(self, line: dict[str, Any]) -> None:
        self.total.add(str(line.get("event")), line)
        try:
            self.jobs.add_record(
                self.job_id,
                str(line.get("event")),
                json.dumps(_cut(line), default=str, ensure_ascii=False),
            )
        except SQLAlchemyError as exc:  # the run matters more than its live view
            log.warning("job %s: could not store a trajectory record: %s", self.job_id, exc)
