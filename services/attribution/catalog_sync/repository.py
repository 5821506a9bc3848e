"""Every SQL statement of the catalog sync: the read model's rows, the feed position, the
changes it skipped."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.catalog_sync.projection import Row
from services.attribution.models import SyncState
from services.attribution.models.catalog import SkippedCatalogChange
from shared.db import insert_for, insert_unless_present

STATE_KEY = "catalog"


async def current_seq(session: AsyncSession) -> int:
    value = await session.scalar(select(SyncState.catalog_seq).where(SyncState.name == STATE_KEY))
    return int(value or 0)


async def lock_state(session: AsyncSession) -> SyncState:
    """The feed position, locked for the transaction so two replicas never apply overlapping
    pages out of order (created at 0 the first time)."""
    state = await session.scalar(
        select(SyncState).where(SyncState.name == STATE_KEY).with_for_update()
    )
    if state is None:
        state = SyncState(name=STATE_KEY, catalog_seq=0)
        session.add(state)
    return state


async def apply_rows(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Upsert or delete each row, in order."""
    insert = insert_for(session.get_bind().dialect.name)
    for row in rows:
        columns = row.table.c
        if row.values is None:
            await session.execute(
                delete(row.table).where(*[columns[k] == v for k, v in row.key.items()])
            )
            continue
        stmt = insert(row.table).values(**row.key, **row.values)
        stmt = stmt.on_conflict_do_update(index_elements=list(row.key), set_=row.values)
        await session.execute(stmt)


async def record_skipped(
    session: AsyncSession,
    *,
    seq: int,
    tenant_id: str,
    entity: str,
    entity_id: str,
    op: str,
    reason: str,
    change: str,
    at: dt.datetime,
) -> None:
    # A change seen again (a page re-read after a crash) keeps its first record.
    await insert_unless_present(
        session,
        SkippedCatalogChange,
        ("tenant_id", "seq"),
        tenant_id=tenant_id,
        seq=seq,
        entity=entity,
        entity_id=entity_id,
        op=op,
        reason=reason,
        change=change,
        skipped_at=at,
    )


async def skipped_changes(
    session: AsyncSession, tenant_id: str | None = None
) -> list[SkippedCatalogChange]:
    stmt = select(SkippedCatalogChange).order_by(SkippedCatalogChange.seq)
    if tenant_id is not None:
        stmt = stmt.where(SkippedCatalogChange.tenant_id == tenant_id)
    return list(await session.scalars(stmt))


async def count_skipped(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(SkippedCatalogChange)) or 0)
