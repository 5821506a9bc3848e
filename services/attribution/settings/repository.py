"""Settings storage: the tenant_settings table, read in one Core statement on the hot path."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.attribution.models import Order, TenantSettings
from shared.db import insert_for, utcnow

SETTINGS = cast(Table, TenantSettings.__table__)

# The settings kept as given: the currency, the fraud rules and the webhook secret have rules
# of their own.
PLAIN_FIELDS = ("timezone", "click_window_seconds", "view_window_seconds", "match", "default_model")
# The columns ``Rules`` is made of; other domains' one-round-trip reads select these too.
RULE_COLUMNS = (
    SETTINGS.c.currency,
    *(SETTINGS.c[name] for name in PLAIN_FIELDS),
    SETTINGS.c.webhook_secret_encrypted,
    SETTINGS.c.fraud_rules,
)
_RULES = select(*RULE_COLUMNS).where(SETTINGS.c.tenant_id == bindparam("tenant_id"))


async def rules_row(conn: AsyncConnection, tenant_id: str) -> Row[Any] | None:
    return (await conn.execute(_RULES, {"tenant_id": tenant_id})).first()


async def row_for_update(
    session: AsyncSession, tenant_id: str, defaults: dict[str, Any]
) -> TenantSettings:
    """The tenant's settings row, created from ``defaults`` if missing, locked for update.

    INSERT … ON CONFLICT DO NOTHING first, so two first requests of a new tenant racing
    each other both end up locking the one row instead of one failing on the key.
    """
    now = utcnow()
    insert = insert_for(session.get_bind().dialect.name)
    await session.execute(
        insert(TenantSettings)
        .values(tenant_id=tenant_id, currency=None, created_at=now, updated_at=now, **defaults)
        .on_conflict_do_nothing(index_elements=["tenant_id"])
    )
    row = await session.scalar(
        select(TenantSettings)
        .where(TenantSettings.tenant_id == tenant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def other_order_currency(session: AsyncSession, tenant_id: str, currency: str) -> str | None:
    """A currency other than ``currency`` that this tenant already has orders in, if any."""
    other: str | None = await session.scalar(
        select(Order.currency)
        .where(Order.tenant_id == tenant_id, Order.currency != currency)
        .limit(1)
    )
    return other
