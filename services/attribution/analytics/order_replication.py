"""Copy changed orders from the system of record to the analytic store, as they are now.

The database keeps an outbox: triggers on ``orders`` (revision 0012) add a row to
``analytics_order_changes`` for every insert or update, in the writer's transaction, so no
write path can forget it. Credits and lines change only together with their order's row
(its ``attributed_at``, status, revenue), so the outbox sees their changes too.

A batch reads outbox rows and the *current* state of those orders (buyer, paid time, status;
the lines' products; the ``last_touch`` credits' contents, ads and their touches' platforms)
in a read transaction, inserts one row per order into ClickHouse, then deletes exactly the
outbox rows it read in a short write transaction. (On SQLite a write transaction holds the
database's one write slot: none is taken while ClickHouse inserts, nor at all when there is
nothing to copy, so order posts do not queue behind replication.)

``orders`` is a ReplacingMergeTree on ``(tenant_id, order_id)`` read with FINAL, and a copy's
version is the highest outbox ``change_id`` the batch read for that order (plus
``VERSION_BASE``): the state read is at least as new as that change, and the newest change
of an order is only ever read with a state at least as new, so the newest state wins however
batches of several processes interleave, without a lock across them.

* A change committed during a batch leaves an outbox row the batch did not read: it is
  copied by the next batch, with a higher version.
* A crash between the insert and the delete leaves the rows: the next batch copies the same
  orders again (the same version, a state at least as new).
* An order a funnel cannot see (no paid time or no buyer) is copied with ``visible = 0``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.attribution.analytics.store import AnalyticStore, clickhouse_time
from services.attribution.models import AnalyticsOrderChange, Credit, Event, Order, OrderLine
from shared.db import make_sessionmaker

#: Outbox rows per replication batch.
BATCH = 2_000
#: Ids per ``IN (…)`` (below SQLite's parameter limit).
_CHUNK = 500
#: The attribution model whose credits give an order its contents and ads (as the SQL
#: funnel source reads them).
ORDER_MODEL = "last_touch"
#: Added to change ids to make versions: copies made before versions were change ids were
#: numbered by batch, far below this, so every copy made since wins over them.
VERSION_BASE = 1 << 40


_CHANGES = cast(Table, AnalyticsOrderChange.__table__)
#: The oldest outbox rows, one batch of them.
_OUTBOX_BATCH = (
    select(_CHANGES.c.change_id, _CHANGES.c.tenant_id, _CHANGES.c.order_id)
    .order_by(_CHANGES.c.change_id)
    .limit(BATCH)
)


class Copier:
    """Rows of one system of record copied into one analytic store, one batch at a time."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], store: AnalyticStore):
        self._sessionmaker = sessionmaker
        # Reads never take SQLite's write slot (see shared.db).
        self._read_sessionmaker = make_sessionmaker(sessionmaker.kw["bind"], read_only=True)
        self.store = store
        self._lock = asyncio.Lock()


@dataclass(frozen=True, slots=True)
class Batch:
    """What one batch read: a document per order (with its version) and the outbox rows."""

    documents: list[dict[str, Any]]
    change_ids: list[int]


class OrderReplicator(Copier):
    """Replication of the orders of one system of record into one analytic store."""

    async def catch_up(self) -> int:
        """Copy every order changed since it was last copied; returns how many copies."""
        async with self._lock:
            copied = 0
            while True:
                batch = await self.read_batch()
                await self.copy(batch)
                copied += len(batch.documents)
                if len(batch.change_ids) < BATCH:
                    return copied

    async def read_batch(self) -> Batch:
        async with self._read_sessionmaker() as session:
            outbox = (await session.execute(_OUTBOX_BATCH)).all()
            latest: dict[tuple[str, str], int] = {}
            for row in outbox:  # in change_id order: the last one is the highest
                latest[(row.tenant_id, row.order_id)] = row.change_id
            by_tenant: dict[str, list[str]] = {}
            for tenant_id, order_id in sorted(latest):
                by_tenant.setdefault(tenant_id, []).append(order_id)
            documents = []
            for tenant_id, ids in by_tenant.items():
                for start in range(0, len(ids), _CHUNK):
                    documents.extend(
                        await _order_documents(session, tenant_id, ids[start : start + _CHUNK])
                    )
        for document in documents:
            change_id = latest[(document["tenant_id"], document["order_id"])]
            document["version"] = VERSION_BASE + change_id
        return Batch(documents, [row.change_id for row in outbox])

    async def copy(self, batch: Batch) -> None:
        """Insert the batch's documents, then delete the outbox rows it read."""
        if not batch.change_ids:
            return
        await asyncio.to_thread(self.store.insert_rows, "orders", batch.documents)
        async with self._sessionmaker() as session:
            for start in range(0, len(batch.change_ids), _CHUNK):
                chunk = batch.change_ids[start : start + _CHUNK]
                await session.execute(delete(_CHANGES).where(_CHANGES.c.change_id.in_(chunk)))
            await session.commit()


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
