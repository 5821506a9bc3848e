"""Copy changed orders from the system of record to the analytic store, as they are now.

The database keeps an outbox: triggers on ``orders`` (revision 0012) add a row to
``analytics_order_changes`` for every insert or update, in the writer's transaction, so no
write path can forget it. Credits and lines change only together with their order's row
(its ``attributed_at``, status, revenue), so the outbox sees their changes too.

A batch reads outbox rows, reads the *current* state of those orders (buyer, paid time,
status; the lines' products; the ``last_touch`` credits' contents, ads and their touches'
platforms), inserts one row per order into ClickHouse with the batch's version, then deletes
exactly the outbox rows it read. Versions grow with every batch, and ``orders`` is a
ReplacingMergeTree on ``(tenant_id, order_id)`` read with FINAL: the newest copy wins.
Batches are serialised (an asyncio lock in the process; on PostgreSQL also a
transaction-scoped advisory lock, so the workers of one service take turns) and each one
continues after ``max(version)`` in ClickHouse: a batch that read a later state always has
a higher version.

* A change committed during a batch leaves an outbox row the batch did not read: it is
  copied by the next batch, with a higher version.
* A crash between the insert and the delete leaves the rows: the next batch copies the same
  orders again (a higher version of the same state).
* An order a funnel cannot see (no paid time or no buyer) is copied with ``visible = 0``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, and_, delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.attribution.analytics.store import AnalyticStore, clickhouse_time
from services.attribution.models import AnalyticsOrderChange, Credit, Event, Order, OrderLine

#: Outbox rows per replication batch.
BATCH = 2_000
#: Ids per ``IN (…)`` (below SQLite's parameter limit).
_CHUNK = 500
#: The attribution model whose credits give an order its contents and ads (as the SQL
#: funnel source reads them).
ORDER_MODEL = "last_touch"
#: PostgreSQL advisory lock serialising order replication batches across processes.
_BATCH_LOCK_KEY = 0x0C11F0_0012


class Copier:
    """Rows of one system of record copied into one analytic store, one batch at a time."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], store: AnalyticStore):
        self._sessionmaker = sessionmaker
        self.store = store
        self._lock = asyncio.Lock()


class OrderReplicator(Copier):
    """Replication of the orders of one system of record into one analytic store."""

    #: The last batch's version (None: not read from the store yet).
    _version: int | None = None

    async def catch_up(self) -> int:
        """Copy every order changed since it was last copied; returns how many copies."""
        async with self._lock:
            copied = 0
            while True:
                n, read = await self._batch()
                copied += n
                if read < BATCH:
                    return copied

    async def _next_version(self) -> int:
        """Above every copy in the store (another process's too) and every one of ours."""
        rows = await self.store.arows("SELECT max(version) FROM {db}.orders")
        stored = int(rows[0][0] or 0) if rows else 0
        self._version = max(stored, self._version or 0) + 1
        return self._version

    async def _batch(self) -> tuple[int, int]:
        """``(orders copied, outbox rows read)`` of one batch."""
        changes = cast(Table, AnalyticsOrderChange.__table__)
        async with self._sessionmaker() as session:
            if session.get_bind().dialect.name == "postgresql":
                # Held until the batch commits: another worker's batch waits for this one.
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BATCH_LOCK_KEY}
                )
            outbox = (
                await session.execute(
                    select(changes.c.change_id, changes.c.tenant_id, changes.c.order_id)
                    .order_by(changes.c.change_id)
                    .limit(BATCH)
                )
            ).all()
            if not outbox:
                return 0, 0
            by_tenant: dict[str, set[str]] = {}
            for row in outbox:
                by_tenant.setdefault(row.tenant_id, set()).add(row.order_id)
            version = await self._next_version()
            documents = []
            for tenant_id, order_ids in sorted(by_tenant.items()):
                ids = sorted(order_ids)
                for start in range(0, len(ids), _CHUNK):
                    documents.extend(
                        await _order_documents(session, tenant_id, ids[start : start + _CHUNK])
                    )
            for document in documents:
                document["version"] = version
            await asyncio.to_thread(self.store.insert_rows, "orders", documents)
            seen = [row.change_id for row in outbox]
            for start in range(0, len(seen), _CHUNK):
                await session.execute(
                    delete(changes).where(changes.c.change_id.in_(seen[start : start + _CHUNK]))
                )
            await session.commit()
            return len(documents), len(outbox)


async def _order_documents(
    session: AsyncSession, tenant_id: str, order_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """One ClickHouse row per order id: its current state (hidden when it is gone)."""
    o = cast(Table, Order.__table__)
    line = cast(Table, OrderLine.__table__)
    credit = cast(Table, Credit.__table__)
    touch = cast(Table, Event.__table__)
    orders = {
        row.order_id: row
        for row in await session.execute(
            select(o.c.order_id, o.c.buyer_id, o.c.paid_at, o.c.status).where(
                o.c.tenant_id == tenant_id, o.c.order_id.in_(order_ids)
            )
        )
    }
    products: dict[str, set[str]] = {}
    for row in await session.execute(
        select(line.c.order_id, line.c.product_id).where(
            line.c.tenant_id == tenant_id, line.c.order_id.in_(order_ids)
        )
    ):
        products.setdefault(row.order_id, set()).add(row.product_id)
    credits: dict[str, list[tuple[str | None, str | None, str | None]]] = {}
    for row in await session.execute(
        select(credit.c.order_id, credit.c.content_id, credit.c.ad_id, touch.c.platform)
        .select_from(
            credit.outerjoin(
                touch, and_(touch.c.tenant_id == tenant_id, touch.c.event_id == credit.c.event_id)
            )
        )
        .where(
            credit.c.tenant_id == tenant_id,
            credit.c.order_id.in_(order_ids),
            credit.c.model == ORDER_MODEL,
        )
        .order_by(credit.c.order_id, credit.c.position)
    ):
        credits.setdefault(row.order_id, []).append((row.content_id, row.ad_id, row.platform))
    documents = []
    for order_id in order_ids:
        order = orders.get(order_id)
        paid_at = order.paid_at if order is not None else None
        buyer_id = order.buyer_id if order is not None else None
        own = credits.get(order_id, [])
        documents.append(
            {
                "tenant_id": tenant_id,
                "order_id": order_id,
                "buyer_id": buyer_id,
                "paid_at": None if paid_at is None else clickhouse_time(paid_at),
                "status": order.status if order is not None else "",
                # What the SQL funnel source reads as an order step: a paid time and a buyer.
                "visible": int(paid_at is not None and buyer_id is not None),
                "products": sorted(products.get(order_id, ())),
                "contents": [c for c, _, _ in own],
                "ads": [a for _, a, _ in own],
                "touch_platforms": [p for _, _, p in own],
            }
        )
    return documents
