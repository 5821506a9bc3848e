"""Copy accepted events from the system of record to the analytic store, each once in effect.

(Orders, whose state changes, are copied by :mod:`.order_replication`; :meth:`catch_up`
runs both.)

An event's ``analytics_seq`` is NULL until a replication batch has copied it. A batch reads
such events, inserts them into ClickHouse with the batch's sequence number, then stamps them
with it in the system of record. A crash between the two steps leaves them NULL: the next
batch copies them again, and the ClickHouse table (a ReplacingMergeTree keyed on the event's
identity, read with FINAL) keeps one row per event. Nothing committed is missed either: the
service catches up before it serves, after each ingest, and before each analytic read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, cast

from sqlalchemy import Table, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.attribution.analytics.order_replication import Copier, OrderReplicator
from services.attribution.analytics.store import AnalyticStore, clickhouse_time
from services.attribution.models import Event

#: Events per replication batch.
BATCH = 20_000
#: Event ids per stamping statement (below SQLite's parameter limit).
_STAMP_CHUNK = 500

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

_EVENTS = cast(Table, Event.__table__)
#: Events not copied yet, one batch of them.
_UNCOPIED_BATCH = (
    select(
        _EVENTS.c.tenant_id,
        _EVENTS.c.event_id,
        _EVENTS.c.user_id,
        _EVENTS.c.occurred_at,
        _EVENTS.c.type,
        _EVENTS.c.content_id,
        _EVENTS.c.product_id,
        _EVENTS.c.ad_id,
        _EVENTS.c.platform,
    )
    .where(_EVENTS.c.analytics_seq.is_(None))
    .limit(BATCH)
)


class EventReplicator(Copier):
    """Replication of one system of record into one analytic store (one batch at a time)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], store: AnalyticStore):
        super().__init__(sessionmaker, store)
        self.orders = OrderReplicator(sessionmaker, store)

    async def catch_up(self) -> int:
        """Copy every event not yet copied, then every changed order; returns how many
        events were copied."""
        async with self._lock:
            copied = 0
            while True:
                n = await self._batch()
                copied += n
                if n < BATCH:
                    break
        await self.orders.catch_up()
        return copied

    async def _batch(self) -> int:
        # Read, then copy, then stamp in a short write transaction: the write slot (SQLite has
        # one) is neither taken while ClickHouse inserts nor at all when nothing is new.
        async with self._read_sessionmaker() as session:
            rows = (await session.execute(_UNCOPIED_BATCH)).all()
            if not rows:
                return 0
            last = (await session.execute(select(func.max(_EVENTS.c.analytics_seq)))).scalar()
        seq = int(last or 0) + 1
        await asyncio.to_thread(self.store.insert_rows, "events", _documents(rows, seq))
        by_tenant: dict[str, list[str]] = {}
        for row in rows:
            by_tenant.setdefault(row.tenant_id, []).append(row.event_id)
        async with self._sessionmaker() as session:
            for tenant_id, ids in by_tenant.items():
                for start in range(0, len(ids), _STAMP_CHUNK):
                    await session.execute(
                        update(_EVENTS)
                        .where(
                            and_(
                                _EVENTS.c.tenant_id == tenant_id,
                                _EVENTS.c.event_id.in_(ids[start : start + _STAMP_CHUNK]),
                                _EVENTS.c.analytics_seq.is_(None),
                            )
                        )
                        .values(analytics_seq=seq)
                    )
            await session.commit()
        return len(rows)


def _documents(rows: Any, seq: int) -> list[dict[str, Any]]:
    return [
        {
            "tenant_id": row.tenant_id,
            "user_id": row.user_id,
            "t": clickhouse_time(row.occurred_at),
            "event_id": row.event_id,
            "type": row.type,
            "content_id": row.content_id,
            "product_id": row.product_id,
            "ad_id": row.ad_id,
            "platform": row.platform,
            "seq": seq,
        }
        for row in rows
    ]
