"""The receiver's group commit: concurrent deliveries' job rows written together, each
delivery told its own job id (real SQLite file; PostgreSQL in test_postgres.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from bot.contract.db import as_utc, make_engine, migrate
from bot.contract.job import JobKind, Trigger
from bot.contract.store import JobStore
from bot.receiver.job_writer import JobWriter


def trigger(number: int) -> Trigger:
    return Trigger(
        kind=JobKind.FIX,
        repo="o/r",
        number=number,
        sender="octocat",
        installation_id=1,
        instructions=f"issue {number}",
    )


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    migrate(engine)
    return JobStore(engine)


def test_a_batch_gets_its_own_ids_in_order_after_other_writers(store: JobStore) -> None:
    store.create("earlier", "issue_comment", trigger(1))  # another writer came first
    rows = [store.new_row(f"d{i}", "issue_comment", trigger(i)) for i in range(5)]
    ids = store.insert_rows(rows)
    assert len(set(ids)) == 5
    for job_id, row in zip(ids, rows, strict=True):
        job = store.get(job_id)
        assert job is not None and job.delivery_id == row["delivery_id"]
        assert job.number == row["number"] and as_utc(job.created_at) == row["created_at"]


def test_a_batch_with_a_known_delivery_inserts_nothing(store: JobStore) -> None:
    store.create("d1", "issue_comment", trigger(1))
    rows = [store.new_row(d, "issue_comment", trigger(2)) for d in ("d2", "d1", "d3")]
    with pytest.raises(IntegrityError):
        store.insert_rows(rows)
    assert [j.delivery_id for j in store.find()] == ["d1"]


def test_concurrent_deliveries_each_hear_their_own_job(store: JobStore) -> None:
    store.create("dup", "issue_comment", trigger(0))  # its dedup key was lost

    async def deliver() -> list[tuple[int, bool]]:
        writer = JobWriter(store)
        names = [f"c{i}" for i in range(200)] + ["dup"]
        return await asyncio.gather(
            *(writer.create(n, "issue_comment", trigger(i)) for i, n in enumerate(names))
        )

    outcomes = asyncio.run(deliver())
    created = [job_id for job_id, new in outcomes if new]
    assert len(created) == len(set(created)) == 200
    for i, (job_id, new) in enumerate(outcomes[:200]):
        job = store.get(job_id)
        assert new and job is not None and job.delivery_id == f"c{i}"
    existing = store.by_delivery("dup")
    assert existing is not None and outcomes[200] == (existing.id, False)
