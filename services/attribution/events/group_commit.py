"""Group commit for SQLite: event batches that arrive together share one write transaction.

SQLite has one writer, and a commit writes every page the transaction touched to the WAL. A
1,000-event batch with random keys touches a page or more per event in each of the events
indexes; ten such batches in one transaction touch far fewer pages in all than ten separate
transactions do (in a one-off test, 10,000-row transactions took a quarter less CPU per row
than 1,000-row ones). So while one group is being written, the batches that arrive queue up, and
the next group takes them all in one transaction, each batch in its own SAVEPOINT: a batch
that fails is rolled back alone and its request gets the error; the others commit. Every
request is answered after the commit that holds its events (read-your-writes holds). A lone
request waits for nobody.

Each request validates its own batch before it queues (reading, in a read-only transaction,
the stored clicks its events may inherit from), so validation runs while the writer's
statements run in SQLite's thread; the writer only stores. A click stored by a batch of the
same group is not seen by another batch of that group: those requests are concurrent, and a
click acknowledged before a request starts is always seen.

PostgreSQL runs concurrent transactions side by side and needs none of this.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.attribution.events.service import IngestOutcome, store_batch, validate_batch
from services.attribution.events.validation import BatchPartition

#: A group stops growing at this many events (so a transaction stays well under a second).
MAX_GROUP_EVENTS = 8_000


@dataclass(slots=True)
class _Job:
    tenant_id: str
    batch: BatchPartition
    now: dt.datetime
    done: asyncio.Future[IngestOutcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommitIngest:
    """Queue event batches; one writer task stores each group of them in one transaction."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        read_sessionmaker: async_sessionmaker[AsyncSession],
        *,
        max_group_events: int = MAX_GROUP_EVENTS,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._read_sessionmaker = read_sessionmaker
        self._max_group_events = max_group_events
        self._queue: deque[_Job] = deque()
        self._writer: asyncio.Task[None] | None = None
        self.groups = 0  # transactions committed (for tests and curiosity)

    async def ingest(
        self,
        tenant_id: str,
        raw_events: Sequence[Any],
        *,
        now: dt.datetime,
        max_future_seconds: int,
    ) -> IngestOutcome:
        """Validate and store one decoded batch; returns once its transaction committed.

        If the caller is cancelled before its batch is taken, the batch is dropped; once
        taken, it is stored whatever happens to the caller (as a request whose answer was
        lost).
        """
        async with self._read_sessionmaker() as session:  # no connection unless clicks are read
            batch = await validate_batch(
                session, tenant_id, raw_events, now=now, max_future_seconds=max_future_seconds
            )
        job = _Job(tenant_id, batch, now)
        self._queue.append(job)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="events-group-commit")
        return await job.done

    async def close(self) -> None:
        """Wait for the groups in flight (at shutdown)."""
        if self._writer is not None:
            await asyncio.wait({self._writer})

    def _take_group(self) -> list[_Job]:
        group: list[_Job] = []
        size = 0
        while self._queue:
            job = self._queue[0]
            if group and size + job.batch.received > self._max_group_events:
                break
            self._queue.popleft()
            if job.done.cancelled():
                continue  # the request went away before its turn
            group.append(job)
            size += job.batch.received
        return group

    async def _write(self) -> None:
        while self._queue:
            group = self._take_group()
            if group:
                await self._write_group(group)

    async def _write_group(self, group: list[_Job]) -> None:
        stored: list[tuple[_Job, IngestOutcome]] = []
        try:
            async with self._sessionmaker() as session:
                for job in group:
                    try:
                        async with session.begin_nested():
                            outcome = await store_batch(
                                session, job.tenant_id, job.batch, now=job.now
                            )
                    except Exception as exc:  # this batch only: its savepoint is rolled back
                        _fail(job, exc)
                        continue
                    stored.append((job, outcome))
                await session.commit()
                self.groups += 1
        except Exception as exc:  # the commit (or the session) failed: nothing is stored
            for job in group:
                _fail(job, exc)
            return
        except BaseException:  # cancelled (shutdown): the transaction was rolled back
            for job in group:
                _fail(job, RuntimeError("the service stopped before the batch was stored"))
            raise
        for job, outcome in stored:
            if not job.done.done():
                job.done.set_result(outcome)


def _fail(job: _Job, exc: Exception) -> None:
    if not job.done.done():
        job.done.set_exception(exc)
