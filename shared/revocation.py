"""Revoked tokens: each service's ``revoked_tokens`` table, and the queries over it.

A revoked token is remembered by its tenant and id (``jti``) alone. Each service declares the
table on its own declarative base with :class:`RevokedTokenColumns`; the functions here take
that table, so both services share one set of queries.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import UTCDateTime, insert_for, make_engine, utcnow


class RevokedTokenColumns:
    """The columns of a service's ``revoked_tokens`` table (mixed into its model)."""

    __tablename__ = "revoked_tokens"

    # sort_order keeps tenant_id the first column, and so first in the primary key.
    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True, sort_order=-100)
    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


RevokedTable = type[RevokedTokenColumns]


async def revoked_token_ids(conn: AsyncConnection, table: RevokedTable) -> set[tuple[str, str]]:
    """Every revoked ``(tenant, token id)``. Deliberately not scoped to one tenant: each
    replica caches the whole (small) list and checks every request's token against it."""
    rows = await conn.execute(select(table.tenant_id, table.token_id))
    return {(tenant_id, token_id) for tenant_id, token_id in rows}


async def revoke(conn: AsyncConnection, table: RevokedTable, tenant_id: str, token_id: str) -> None:
    """Remember a token as revoked; revoking it again keeps the first ``revoked_at``."""
    statement = (
        insert_for(conn.dialect.name)(table)
        .values(tenant_id=tenant_id, token_id=token_id, revoked_at=utcnow())
        .on_conflict_do_nothing(index_elements=["tenant_id", "token_id"])
    )
    await conn.execute(statement)


async def revoke_token_id(
    database_url: str, table: RevokedTable, tenant_id: str, token_id: str
) -> None:
    """Revoke a token in the service database at ``database_url`` (the command line's path)."""
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await revoke(conn, table, tenant_id, token_id)
    finally:
        await engine.dispose()
