"""Each installed repository's maintenance schedule as last read from its default branch.

The receiver only marks a schedule stale (a push changed the config); the worker's
scheduler tick reads the config again and records what it found, or the error.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.contract.db import MaintenanceSchedule, as_utc, utcnow


class ScheduleView(BaseModel):
    repo: str
    config_sha: str | None
    tasks: str | None
    error: str | None
    stale: bool
    checked_at: datetime | None
    evaluated_until: datetime | None

    @classmethod
    def of(cls, row: MaintenanceSchedule) -> ScheduleView:
        return cls(
            repo=row.repo,
            config_sha=row.config_sha,
            tasks=row.tasks,
            error=row.error,
            stale=row.stale,
            checked_at=as_utc(row.checked_at) if row.checked_at else None,
            evaluated_until=as_utc(row.evaluated_until) if row.evaluated_until else None,
        )


class ScheduleStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock() if engine.dialect.name == "sqlite" else None

    def mark_stale(self, repo: str) -> None:
        with self._guard(), Session(self.engine) as session:
            row = session.get(MaintenanceSchedule, repo)
            if row is None:
                session.add(MaintenanceSchedule(repo=repo, stale=True))
            else:
                row.stale = True
            session.commit()

    def save(
        self,
        repo: str,
        *,
        config_sha: str | None,
        tasks: str | None,
        error: str | None,
        at: datetime | None = None,
    ) -> ScheduleView:
        with self._guard(), Session(self.engine, expire_on_commit=False) as session:
            row = session.get(MaintenanceSchedule, repo)
            if row is None:
                row = MaintenanceSchedule(repo=repo)
                session.add(row)
            row.config_sha, row.tasks, row.error = config_sha, tasks, error
            row.stale, row.checked_at = False, at or utcnow()
            session.commit()
            return ScheduleView.of(row)

    def evaluated(self, repo: str, until: datetime) -> None:
        """Runs due up to `until` are queued (the next tick starts from there)."""
        with self._guard(), Session(self.engine) as session:
            row = session.get(MaintenanceSchedule, repo)
            if row is not None:
                row.evaluated_until = until
                session.commit()

    def get(self, repo: str) -> ScheduleView | None:
        with Session(self.engine) as session:
            row = session.get(MaintenanceSchedule, repo)
            return ScheduleView.of(row) if row else None

    def all(self) -> list[ScheduleView]:
        with Session(self.engine) as session:
            return [
                ScheduleView.of(r)
                for r in session.scalars(
                    select(MaintenanceSchedule).order_by(MaintenanceSchedule.repo)
                )
            ]

    def _guard(self) -> AbstractContextManager[object]:
        # SQLite has one writer: taking turns in-process beats its busy-wait.
        return self._lock if self._lock is not None else nullcontext()
