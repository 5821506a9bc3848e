"""Recording and reading the change feed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.changes.metrics import CATALOG_CHANGES
from services.catalog.models import Change

# Any constant works; it only has to be the same for every writer.
_FEED_LOCK_KEY = 0x0C11F0_0001


async def record_change(
    session: AsyncSession,
    *,
    tenant_id: str,
    entity: str,
    entity_id: str,
    op: str,
    data: dict[str, Any],
) -> Change:
    """Append a change in the caller's transaction.

    On PostgreSQL a sequence hands out numbers at INSERT time but transactions commit in any
    order, so a reader could see seq 12 before seq 11 commits and skip 11 for ever. A
    transaction-scoped advisory lock makes writers append one after another, so seq order is
    commit order. (SQLite has one writer at a time already.)
    """
    await lock_feed(session)
    change = Change(tenant_id=tenant_id, entity=entity, entity_id=entity_id, op=op, data=data)
    session.add(change)
    await session.flush()
    CATALOG_CHANGES.labels(entity, op).inc()
    return change


async def lock_feed(session: AsyncSession) -> None:
    """Take the feed's writer lock for the rest of the transaction (re-entrant; no-op on SQLite).

    Writers that check-then-insert (``upsert``) take it first, so two concurrent creates of the
    same id run one after the other instead of one failing on the primary key.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _FEED_LOCK_KEY})


async def read_changes(
    session: AsyncSession, *, after: int, limit: int, tenant_id: str | None = None
) -> list[Change]:
    stmt = select(Change).where(Change.seq > after)
    if tenant_id is not None:
        stmt = stmt.where(Change.tenant_id == tenant_id)
    rows = await session.scalars(stmt.order_by(Change.seq).limit(limit))
    return list(rows)


async def last_seq(session: AsyncSession) -> int:
    value = await session.scalar(select(Change.seq).order_by(Change.seq.desc()).limit(1))
    return int(value or 0)
