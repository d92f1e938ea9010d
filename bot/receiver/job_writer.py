"""Group commit for the receiver: the job rows of concurrent deliveries are inserted in
one statement and one transaction, on the store's own thread; each delivery waits only
for its row. Batches form by themselves under load (rows queue up while the previous
batch commits); a delivery on its own is written at once. Nothing is answered before its
row is committed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.contract.job import Trigger
from bot.contract.store import JobStore

log = logging.getLogger(__name__)
MAX_BATCH = 500

Pending = tuple[dict[str, Any], "asyncio.Future[tuple[int, bool]]"]


class JobWriter:
    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._pending: list[Pending] = []
        self._flushing = False
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps tasks weakly

    async def create(self, delivery_id: str, event: str, trigger: Trigger) -> tuple[int, bool]:
        """The delivery's job id, and whether this call created it (as JobStore.create)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, bool]] = loop.create_future()
        self._pending.append((self.store.new_row(delivery_id, event, trigger), future))
        if not self._flushing:
            self._flushing = True
            self._task = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._write(batch)
        finally:
            self._flushing = False

    async def _write(self, batch: list[Pending]) -> None:
        rows = [row for row, _ in batch]
        try:
            ids = await self.store.run(self.store.insert_rows, rows)
            outcomes: list[tuple[int, bool] | BaseException] = [(job_id, True) for job_id in ids]
        except IntegrityError:
            # A delivery in the batch has a job already (its dedup key was lost): one by
            # one, so that the others are still created and it finds its own.
            outcomes = []
            for row in rows:
                try:
                    job, created = await self.store.run(self.store.create_row, row)
                    outcomes.append((job.id, created))
                except Exception as exc:  # handed to that delivery's request
                    outcomes.append(exc)
        except Exception as exc:  # the database is away: every waiting delivery hears it
            outcomes = [exc] * len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
