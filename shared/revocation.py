"""Revoking a token: remembered by its id in each service's `revoked_tokens` table."""

from __future__ import annotations

from sqlalchemy import text

from shared.db import make_engine


async def revoke_token_id(database_url: str, tenant_id: str, token_id: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            exists = await conn.execute(
                text("SELECT 1 FROM revoked_tokens WHERE tenant_id = :t AND token_id = :j"),
                {"t": tenant_id, "j": token_id},
            )
            if exists.first() is None:
                await conn.execute(
                    text(
                        "INSERT INTO revoked_tokens (tenant_id, token_id, revoked_at) "
                        "VALUES (:t, :j, :at)"
                    ),
                    {"t": tenant_id, "j": token_id, "at": _now_for(engine.dialect.name)},
                )
    finally:
        await engine.dispose()


def _now_for(dialect: str) -> object:
    from shared.db import to_epoch_us, utcnow

    now = utcnow()
    return now if dialect == "postgresql" else to_epoch_us(now)
