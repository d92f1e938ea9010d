"""The job and installation records (SQLite by default, PostgreSQL through a URL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String, Text, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite gives datetimes back without their zone; they are stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    event: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    repo: Mapped[str] = mapped_column(String(200), index=True)
    number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sender: Mapped[str] = mapped_column(String(100))
    installation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    instructions: Mapped[str] = mapped_column(Text, default="")
    comment_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    comment_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    head_branch: Mapped[str | None] = mapped_column(String(255), nullable=True)
    head_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    task: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The maintenance task of a maintenance job (its name in `.qwenfix.yml`)."""
    status: Mapped[str] = mapped_column(String(32), index=True, default="queued")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    stopped_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """Who asked the job to stop; the running worker reads it before each model request."""
    stop_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The sentence the status comment says it with ("@alice closed this issue")."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class JobEvent(Base):
    """A job's status changes, in order: the timeline of the dashboard."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(Integer, index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class JobRecord(Base):
    """One trajectory record of a job's run (a model message, a tool result, a test
    run…), as the worker wrote it: what the dashboard shows turn by turn, live."""

    __tablename__ = "job_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(Integer, index=True)
    event: Mapped[str] = mapped_column(String(32))
    data: Mapped[str] = mapped_column(Text)
    """The record as JSON; very long texts are cut (the trajectory file has them whole)."""


class Installation(Base):
    __tablename__ = "installations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    account: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class InstalledRepository(Base):
    __tablename__ = "installed_repositories"

    full_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    installation_id: Mapped[int] = mapped_column(BigInteger, index=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MaintenanceSchedule(Base):
    """A repository's `maintenance:` list as last read from its default branch."""

    __tablename__ = "maintenance_schedules"

    repo: Mapped[str] = mapped_column(String(200), primary_key=True)
    config_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The blob of `.qwenfix.yml` read; None when the repository has none."""
    tasks: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The `maintenance:` list as JSON; None when the config has no such key (the
    operator's defaults apply)."""
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    stale: Mapped[bool] = mapped_column(Boolean, default=True)
    """Set when a push changed the config on the default branch: read it again."""
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    evaluated_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """Runs due up to this moment have been queued."""


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


MIGRATIONS = Path(__file__).parent / "migrations"


def schema_revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(the database's schema revision, the newest the code knows)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current, ScriptDirectory(str(MIGRATIONS)).get_current_head()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
