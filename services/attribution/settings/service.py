"""Per-tenant attribution settings."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.models import TenantSettings
from services.attribution.settings import repository
from services.attribution.settings.fraud import DEFAULT_FRAUD_RULES, FraudRules
from services.attribution.settings.repository import PLAIN_FIELDS
from services.attribution.settings.schemas import FraudSettings, SettingsOut, SettingsUpdate
from shared.crypto import decrypt_secret, encrypt_secret
from shared.db import assign, utcnow
from shared.errors import Conflict, UnprocessableEntity


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
    fraud: FraudRules = DEFAULT_FRAUD_RULES


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
    """The tenant's rules (the defaults until it has a settings row), in one Core read."""
    row = await repository.rules_row(await session.connection(), tenant_id)
    if row is None:
        return DEFAULTS
    return rules_from(row, secret, with_webhook_secret=with_webhook_secret)


def rules_from(row: Any, secret: str, *, with_webhook_secret: bool = True) -> Rules:
    """A settings row (ORM object or result row) as ``Rules``."""
    return Rules(
        currency=row.currency,
        **{name: getattr(row, name) for name in PLAIN_FIELDS},
        webhook_secret=(
            _decrypted(secret, row.webhook_secret_encrypted)
            if row.webhook_secret_encrypted and with_webhook_secret
            else None
        ),
        fraud=FraudRules.from_dict(row.fraud_rules),
    )


@functools.lru_cache(maxsize=1024)
def _decrypted(secret: str, ciphertext: str) -> str:
    # Fernet decryption per order is wasted work: the ciphertext only changes with the setting.
    return decrypt_secret(secret, ciphertext)


def to_out(rules: Rules) -> SettingsOut:
    return SettingsOut(
        currency=rules.currency,
        **{name: getattr(rules, name) for name in PLAIN_FIELDS},
        webhook_secret_set=rules.webhook_secret is not None,
        fraud=FraudSettings(**rules.fraud.as_dict()),
    )


_DEFAULT_ROW = {name: getattr(DEFAULTS, name) for name in PLAIN_FIELDS}


async def _row_for_update(session: AsyncSession, tenant_id: str) -> TenantSettings:
    return await repository.row_for_update(session, tenant_id, _DEFAULT_ROW)


def _check_read_only(update: SettingsUpdate, row: TenantSettings) -> bool:
    """Whether the body's ``webhook_secret`` is an echo of a read (so it changes nothing).

    A client that PUTs back what GET gave it sends ``webhook_secret: null`` (GET never shows
    the secret) with ``webhook_secret_set``: that must not clear the secret. A
    ``webhook_secret_set`` that contradicts the stored state without a new secret is refused.
    """
    if "webhook_secret_set" not in update.model_fields_set:
        return False
    stored = row.webhook_secret_encrypted is not None
    claimed = update.webhook_secret_set
    if "webhook_secret" not in update.model_fields_set:
        if claimed is not None and claimed != stored:
            raise UnprocessableEntity(
                f"`webhook_secret_set` is read-only and the secret is {'' if stored else 'not '}"
                "set: send `webhook_secret` (a new secret, or null to clear it) to change it.",
                errors=[{"loc": ["body", "webhook_secret_set"], "msg": "read-only"}],
            )
        return True
    if update.webhook_secret:
        if claimed is False:
            raise UnprocessableEntity(
                "`webhook_secret_set` is false but a `webhook_secret` is given; drop "
                "`webhook_secret_set` (it is read-only) to set the secret.",
                errors=[
                    {"loc": ["body", "webhook_secret_set"], "msg": "contradicts webhook_secret"}
                ],
            )
        return False
    if claimed == stored:
        return True  # an unchanged read echoed back
    if claimed:
        raise UnprocessableEntity(
            "`webhook_secret_set` is read-only: to set a webhook secret, send it in "
            "`webhook_secret` (16–256 characters).",
            errors=[{"loc": ["body", "webhook_secret"], "msg": "missing"}],
        )
    return False  # claims "no secret" while one is stored, with null: clearing it is asked


async def update_settings(
    session: AsyncSession, tenant_id: str, update: SettingsUpdate, secret: str
) -> Rules:
    row = await _row_for_update(session, tenant_id)
    given = update.model_fields_set
    echoed = _check_read_only(update, row)
    if "currency" in given and update.currency is not None and update.currency != row.currency:
        other = await repository.other_order_currency(session, tenant_id, update.currency)
        if other is not None:
            raise Conflict(
                f"This tenant already has orders in {other}; its currency cannot become "
                f"{update.currency} without mixing currencies in reports."
            )
        row.currency = update.currency
    assign(row, update.model_dump(include=set(PLAIN_FIELDS), exclude_unset=True, exclude_none=True))
    if "fraud" in given and update.fraud is not None:
        stored = FraudRules.from_dict(row.fraud_rules).as_dict()
        stored.update(update.fraud.model_dump(exclude_unset=True, exclude_none=True))
        row.fraud_rules = stored
    if "webhook_secret" in given and not echoed:
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
