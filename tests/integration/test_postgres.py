"""The production database: migrations and job records on a real PostgreSQL
(`make test` starts one on 127.0.0.1 with a `qwenfix` role)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.contract.db import make_engine, migrate
from bot.contract.job import JobKind, Record, Trigger
from bot.contract.store import JobStore
from tests.helpers import POSTGRES_ADMIN_URL, postgres_database


@pytest.fixture
def engine() -> Iterator[Engine]:
    with postgres_database("qwenfix_test") as name:
        engine = make_engine(POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
        try:
            yield engine
        finally:
            engine.dispose()


def test_migrations_and_jobs_on_postgresql(engine: Engine) -> None:
    migrate(engine)
    migrate(engine)  # idempotent
    assert set(sa.inspect(engine).get_table_names()) >= {
        "jobs",
        "installations",
        "installed_repositories",
        "alembic_version",
    }
    store = JobStore(engine)
    trigger = Trigger(
        kind=JobKind.FIX,
        repo="o/r",
        number=3,
        sender="octocat",
        installation_id=9_000_000_000,
        comment_id=2**40,
    )
    job, created = store.create("delivery-1", "issue_comment", trigger)
    batch = Trigger(kind=JobKind.FIX, repo="o/batch", number=4, sender="octocat", installation_id=1)
    rows = [store.new_row(f"batch-{i}", "issue_comment", batch) for i in range(3)]
    ids = store.insert_rows(rows)  # the receiver's group commit
    assert [store.get(i).delivery_id for i in ids] == [  # type: ignore[union-attr]
        "batch-0",
        "batch-1",
        "batch-2",
    ]
    again, created_again = store.create("delivery-1", "issue_comment", trigger)
    assert created and not created_again and again.id == job.id
    assert store.set_status(job.id, "acknowledged", expected="queued")
    assert not store.set_status(job.id, "acknowledged", expected="queued")
    assert [j.status for j in store.find(repo="o/r")] == ["acknowledged"]
    record = store.record(job.id)
    assert record is not None and record.comment_id == 2**40
    store.record_installation(
        Record(
            installation_id=9_000_000_000,
            account="o",
            action="created",
            added=["o/r", "o/s"],
            removed=[],
        )
    )
    assert store.installed_repositories() == ["o/r", "o/s"]
