"""Job records: find-or-create by delivery id, read for the API."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from pydantic import BaseModel
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.contract.db import Installation, InstalledRepository, Job, JobEvent, JobRecord, utcnow
from bot.contract.job import COMMAND_KINDS, ON_THE_WAY, JobStatus, Record, StopRequest, Trigger

# A finished attempt at a change (what attempt caps count).
ATTEMPTED = (
    JobStatus.RESOLVED,
    JobStatus.UNRESOLVED,
    JobStatus.UNVERIFIED,
    JobStatus.CONTEXT_FULL,
    JobStatus.ERROR,
    JobStatus.BLOCKED,
)


class JobView(BaseModel):
    id: int
    delivery_id: str
    kind: str
    repo: str
    number: int | None
    sender: str
    status: str
    created_at: datetime
    event: str
    instructions: str
    reason: str | None
    task: str | None = None

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(
            id=job.id,
            delivery_id=job.delivery_id,
            kind=job.kind,
            repo=job.repo,
            number=job.number,
            sender=job.sender,
            status=job.status,
            created_at=job.created_at,
            event=job.event,
            instructions=job.instructions,
            reason=job.reason,
            task=job.task,
        )


class RecordView(BaseModel):
    id: int
    event: str
    data: dict[str, Any]


class EventView(BaseModel):
    at: datetime
    status: str
    reason: str | None


_VIEW = frozenset(JobView.model_fields)
P = ParamSpec("P")
T = TypeVar("T")


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite allows one writer: concurrent writers would sleep in its busy handler
        # (tens of milliseconds each). Taking turns in-process is far faster.
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else None
        # For async callers: SQLite writes go through one thread (no lock or connection-pool
        # contention between dozens of threads); other databases get a few.
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self._write_lock is not None else 8, thread_name_prefix="jobs-db"
        )
        self._sqlite_binds = {
            column.name: column.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
            for column in Job.__table__.columns
        }

    async def run(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a store method off the event loop, on the store's own thread(s)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(method, *args, **kwargs)
        )

    def _writing(self) -> AbstractContextManager[object]:
        return self._write_lock if self._write_lock is not None else nullcontext()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    @staticmethod
    def new_row(delivery_id: str, event: str, trigger: Trigger) -> dict[str, Any]:
        now = utcnow()
        return {
            "delivery_id": delivery_id,
            "event": event,
            "kind": trigger.kind.value,
            "repo": trigger.repo,
            "number": trigger.number,
            "sender": trigger.sender,
            "installation_id": trigger.installation_id,
            "instructions": trigger.instructions,
            "comment_id": trigger.comment_id,
            "comment_kind": trigger.comment_kind,
            "head_branch": trigger.head_branch,
            "head_sha": trigger.head_sha,
            "task": trigger.task,
            "status": JobStatus.QUEUED,
            "reason": None,
            "created_at": now,
            "updated_at": now,
        }

    def insert_rows(self, rows: list[dict[str, Any]]) -> list[int]:
        """New job rows in one transaction; their ids, in order. Raises IntegrityError
        (and inserts none) when a delivery has a job already."""
        if self._write_lock is not None:
            return self._insert_rows_sqlite(rows)
        statement = insert(Job).returning(Job.id, sort_by_parameter_order=True)
        with self.engine.begin() as connection:
            return [int(i) for i in connection.execute(statement, rows).scalars()]

    def _insert_rows_sqlite(self, rows: list[dict[str, Any]]) -> list[int]:
        # The driver's executemany, with values converted as SQLAlchemy would store them:
        # the receiver's group commit runs this for every delivery, and SQLAlchemy's
        # generic insert-many-with-RETURNING held the GIL several times longer than the
        # write itself, taking it from the event loop.
        columns = list(rows[0])
        convert = [self._sqlite_binds[column] for column in columns]
        values = [
            tuple(
                value if to_db is None or value is None else to_db(value)
                for to_db, value in zip(convert, row.values(), strict=True)
            )
            for row in rows
        ]
        sql = f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        with self._writing(), self.engine.begin() as connection:
            connection.exec_driver_sql(sql, values)
            last = int(connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
        # One writer at a time, inside one transaction: SQLite gives the rows consecutive
        # rowids, each one more than the largest before it.
        return list(range(last - len(rows) + 1, last + 1))

    @staticmethod
    def view(job_id: int, row: dict[str, Any]) -> JobView:
        return JobView(id=job_id, **{k: v for k, v in row.items() if k in _VIEW})

    def create(self, delivery_id: str, event: str, trigger: Trigger) -> tuple[JobView, bool]:
        """The job of this delivery, created if there is none yet (redeliveries converge)."""
        return self.create_row(self.new_row(delivery_id, event, trigger))

    def create_row(self, row: dict[str, Any]) -> tuple[JobView, bool]:
        delivery_id = str(row["delivery_id"])
        # A Core insert: this runs on every delivery, and the ORM's unit of work costs
        # several times more than the write itself.
        try:
            with self._writing(), self.engine.begin() as connection:
                result = connection.execute(insert(Job).values(**row))
                job_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            return self.view(job_id, row), True
        except IntegrityError:
            pass
        existing = self.by_delivery(delivery_id)
        if existing is None:  # deleted between the two statements: report the conflict
            raise RuntimeError(f"job for delivery {delivery_id} vanished")
        return existing, False

    def set_status(
        self,
        job_id: int,
        status: JobStatus,
        *,
        reason: str | None = None,
        expected: JobStatus | None = None,
    ) -> bool:
        """Move a job to `status`; with `expected`, only from that status (so that two
        deliveries of the same task cannot both act). True when the row changed."""
        query = update(Job).where(Job.id == job_id)
        if expected is not None:
            query = query.where(Job.status == expected)
        now = utcnow()
        with self._writing(), self.engine.begin() as connection:
            changed = connection.execute(
                query.values(status=status, reason=reason, updated_at=now)
            ).rowcount
            if changed:
                connection.execute(
                    insert(JobEvent).values(job_id=job_id, at=now, status=status, reason=reason)
                )
        return bool(changed)

    def request_stop(
        self, repo: str, number: int, stop: StopRequest, *, before: int
    ) -> tuple[list[int], list[int]]:
        """Ask every job on repo#number recorded before job `before` that has not finished to
        stop: (the ids asked, those of them stopped before they started). A job not yet
        running is stopped here, so it never runs; a running one finds the flag before its
        next model request. The first request to stop a job is the one it names."""
        on_target = (
            Job.repo == repo,
            Job.number == number,
            Job.id < before,
            Job.kind.not_in([k.value for k in COMMAND_KINDS]),
            Job.status.in_([s.value for s in ON_THE_WAY]),
        )
        with self._writing(), self.engine.begin() as connection:
            connection.execute(
                update(Job)
                .where(*on_target, Job.stopped_by.is_(None))
                .values(stopped_by=stop.by, stop_reason=stop.why)
            )
            asked = [int(i) for i in connection.execute(select(Job.id).where(*on_target)).scalars()]
        not_started = [
            job_id
            for job_id in asked
            if any(
                self.set_status(job_id, JobStatus.STOPPED, reason=stop.why, expected=status)
                for status in (JobStatus.QUEUED, JobStatus.ACKNOWLEDGED)
            )
        ]
        return asked, not_started

    def stop_request(self, job_id: int) -> StopRequest | None:
        """Who asked job `job_id` to stop, if anyone: polled by the running worker."""
        query = select(Job.stopped_by, Job.stop_reason).where(Job.id == job_id)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None or row.stopped_by is None:
            return None
        return StopRequest(
            by=row.stopped_by, why=row.stop_reason or f"@{row.stopped_by} stopped it"
        )

    def last_job(self, repo: str, number: int, *, before: int) -> Job | None:
        """The newest job on repo#number recorded before job `before` that is not a command
        (what `@qwenfix retry` runs again)."""
        query = (
            select(Job)
            .where(
                Job.repo == repo,
                Job.number == number,
                Job.id < before,
                Job.kind.not_in([k.value for k in COMMAND_KINDS]),
            )
            .order_by(Job.id.desc())
            .limit(1)
        )
        with Session(self.engine, expire_on_commit=False) as session:
            return session.scalars(query).first()

    def add_record(self, job_id: int, event: str, data: str) -> int:
        """A trajectory record of the job's run (JSON text); its id orders the records."""
        with self._writing(), self.engine.begin() as connection:
            result = connection.execute(
                insert(JobRecord).values(job_id=job_id, event=event, data=data)
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def records(self, job_id: int, after: int = 0, limit: int = 500) -> list[RecordView]:
        query = (
            select(JobRecord)
            .where(JobRecord.job_id == job_id, JobRecord.id > after)
            .order_by(JobRecord.id)
            .limit(limit)
        )
        with Session(self.engine) as session:
            return [
                RecordView(id=r.id, event=r.event, data=json.loads(r.data))
                for r in session.scalars(query)
            ]

    def events(self, job_id: int) -> list[EventView]:
        query = select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        with Session(self.engine) as session:
            return [
                EventView(at=e.at, status=e.status, reason=e.reason) for e in session.scalars(query)
            ]

    def counts(self) -> list[tuple[str, str, int]]:
        """(kind, status, number of jobs), for the metrics."""
        query = select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)
        with Session(self.engine) as session:
            return [(kind, status, int(n)) for kind, status, n in session.execute(query)]

    def stranded(self, older_than: datetime) -> list[int]:
        """Jobs still queued and untouched since `older_than` — their message was most
        likely lost — touched now, so that the next sweep waits as long again."""
        query = select(Job.id).where(Job.status == JobStatus.QUEUED, Job.updated_at < older_than)
        with self._writing(), self.engine.begin() as connection:
            ids = [int(i) for i in connection.execute(query).scalars()]
            if ids:
                connection.execute(update(Job).where(Job.id.in_(ids)).values(updated_at=utcnow()))
        return ids

    def discard(self, job_id: int) -> None:
        with self._writing(), Session(self.engine) as session:
            session.execute(delete(Job).where(Job.id == job_id))
            session.commit()

    def by_delivery(self, delivery_id: str) -> JobView | None:
        with Session(self.engine) as session:
            job = session.scalars(select(Job).where(Job.delivery_id == delivery_id)).first()
            return JobView.of(job) if job else None

    def count_finished(self, repo: str, number: int, kind: str) -> int:
        """Finished jobs of a kind on one issue or pull request (attempt caps)."""
        query = select(Job.id).where(
            Job.repo == repo,
            Job.number == number,
            Job.kind == kind,
            Job.status.in_(ATTEMPTED),
        )
        with Session(self.engine) as session:
            return len(session.scalars(query).all())

    def count_since(self, repo: str, kind: str, statuses: tuple[str, ...], since: datetime) -> int:
        """Jobs of a kind on a repository that ended in one of `statuses` since then."""
        query = select(Job.id).where(
            Job.repo == repo, Job.kind == kind, Job.status.in_(statuses), Job.updated_at >= since
        )
        with Session(self.engine) as session:
            return len(session.scalars(query).all())

    def record(self, job_id: int) -> Job | None:
        """The full row, for the worker (detached from its session)."""
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Job, job_id)

    def get(self, job_id: int) -> JobView | None:
        with Session(self.engine) as session:
            job = session.get(Job, job_id)
            return JobView.of(job) if job else None

    def find(
        self,
        *,
        repo: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobView]:
        query = select(Job).order_by(Job.id.desc()).limit(limit).offset(offset)
        if repo:
            query = query.where(Job.repo == repo)
        if kind:
            query = query.where(Job.kind == kind)
        if status:
            query = query.where(Job.status == status)
        with Session(self.engine) as session:
            return [JobView.of(j) for j in session.scalars(query)]

    def record_installation(self, record: Record) -> None:
        with self._writing(), Session(self.engine) as session:
            installation = session.get(Installation, record.installation_id)
            if installation is None:
                installation = Installation(id=record.installation_id, account=record.account)
                session.add(installation)
            installation.account = record.account or installation.account
            installation.active = record.action not in ("deleted", "suspend")
            if record.action == "deleted":
                session.execute(
                    delete(InstalledRepository).where(
                        InstalledRepository.installation_id == record.installation_id
                    )
                )
            for name in record.removed:
                session.execute(
                    delete(InstalledRepository).where(InstalledRepository.full_name == name)
                )
            for name in record.added:
                row = session.get(InstalledRepository, name)
                if row is None:
                    session.add(
                        InstalledRepository(full_name=name, installation_id=record.installation_id)
                    )
                else:
                    row.installation_id = record.installation_id
            session.commit()

    def installed_repositories(self) -> list[str]:
        with Session(self.engine) as session:
            return sorted(session.scalars(select(InstalledRepository.full_name)))

    def installations(self) -> dict[str, int]:
        """Installed repository -> its installation, for active installations."""
        query = (
            select(InstalledRepository.full_name, InstalledRepository.installation_id)
            .join(
                Installation, Installation.id == InstalledRepository.installation_id, isouter=True
            )
            .where((Installation.active.is_(None)) | (Installation.active.is_(True)))
        )
        with Session(self.engine) as session:
            return {name: int(installation) for name, installation in session.execute(query)}
