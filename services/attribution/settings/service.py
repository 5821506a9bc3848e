"""Per-tenant attribution settings."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.models import Order, TenantSettings
from services.attribution.settings.schemas import SettingsOut, SettingsUpdate
from shared.crypto import decrypt_secret, encrypt_secret
from shared.db import insert_for, utcnow
from shared.errors import Conflict


@dataclass(frozen=True, slots=True)
class Rules:
    """A tenant's settings as the engine and reports use them."""

    currency: str | None
    timezone: str
    click_window_seconds: int
    view_window_seconds: int
    match: str
    default_model: str
    webhook_secret: str | None


DEFAULTS = Rules(
    currency=None,
    timezone="UTC",
    click_window_seconds=7 * 86400,
    view_window_seconds=86400,
    match="product",
    default_model="last_touch",
    webhook_secret=None,
)


async def load_rules(
    session: AsyncSession, tenant_id: str, secret: str, *, with_webhook_secret: bool = True
) -> Rules:
    row = await session.get(TenantSettings, tenant_id)
    if row is None:
        return DEFAULTS
    return rules_from(row, secret, with_webhook_secret=with_webhook_secret)


def rules_from(row: Any, secret: str, *, with_webhook_secret: bool = True) -> Rules:
    """A settings row (ORM object or result row) as ``Rules``."""
    return Rules(
        currency=row.currency,
        timezone=row.timezone,
        click_window_seconds=row.click_window_seconds,
        view_window_seconds=row.view_window_seconds,
        match=row.match,
        default_model=row.default_model,
        webhook_secret=(
            _decrypted(secret, row.webhook_secret_encrypted)
            if row.webhook_secret_encrypted and with_webhook_secret
            else None
        ),
    )


@functools.lru_cache(maxsize=1024)
def _decrypted(secret: str, ciphertext: str) -> str:
    # Fernet decryption per order is wasted work: the ciphertext only changes with the setting.
    return decrypt_secret(secret, ciphertext)


def to_out(rules: Rules) -> SettingsOut:
    return SettingsOut(
        currency=rules.currency,
        timezone=rules.timezone,
        click_window_seconds=rules.click_window_seconds,
        view_window_seconds=rules.view_window_seconds,
        match=rules.match,
        default_model=rules.default_model,
        webhook_secret_set=rules.webhook_secret is not None,
    )


async def _row_for_update(session: AsyncSession, tenant_id: str) -> TenantSettings:
    """The tenant's settings row, created with the defaults if missing, locked for update.

    INSERT … ON CONFLICT DO NOTHING first, so two first requests of a new tenant racing
    each other both end up locking the one row instead of one failing on the key.
    """
    now = utcnow()
    insert = insert_for(session.get_bind().dialect.name)
    await session.execute(
        insert(TenantSettings)
        .values(
            tenant_id=tenant_id,
            currency=None,
            timezone=DEFAULTS.timezone,
            click_window_seconds=DEFAULTS.click_window_seconds,
            view_window_seconds=DEFAULTS.view_window_seconds,
            match=DEFAULTS.match,
            default_model=DEFAULTS.default_model,
            created_at=now,
            updated_at=now,
        )
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


async def update_settings(
    session: AsyncSession, tenant_id: str, update: SettingsUpdate, secret: str
) -> Rules:
    row = await _row_for_update(session, tenant_id)
    given = update.model_fields_set
    if "currency" in given and update.currency is not None and update.currency != row.currency:
        other = await session.scalar(
            select(Order.currency)
            .where(Order.tenant_id == tenant_id, Order.currency != update.currency)
            .limit(1)
        )
        if other is not None:
            raise Conflict(
                f"This tenant already has orders in {other}; its currency cannot become "
                f"{update.currency} without mixing currencies in reports."
            )
        row.currency = update.currency
    for name in (
        "timezone",
        "click_window_seconds",
        "view_window_seconds",
        "match",
        "default_model",
    ):
        value = getattr(update, name)
        if name in given and value is not None:
            setattr(row, name, value)
    if "webhook_secret" in given:
        row.webhook_secret_encrypted = (
            encrypt_secret(secret, update.webhook_secret) if update.webhook_secret else None
        )
    row.updated_at = utcnow()
    await session.flush()
    return await load_rules(session, tenant_id, secret)


async def claim_currency(session: AsyncSession, tenant_id: str, currency: str) -> str:
    """The tenant's currency, set to ``currency`` if it has none yet (the first order's)."""
    row = await _row_for_update(session, tenant_id)
    if row.currency is None:
        row.currency = currency
        row.updated_at = utcnow()
        await session.flush()
    return row.currency
