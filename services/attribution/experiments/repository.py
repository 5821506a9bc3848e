"""Reads and writes of experiments, and the per-viewer facts their results need."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.events.repository import events_in
from services.attribution.models import Credit, Event, Experiment, Order

EXPOSURE_TYPES = ("impression", "view")
CONVERSION_TYPES = {
    "click_rate": ("click",),
    "completion_rate": ("view_complete",),
    "engagement_rate": ("like", "comment", "share"),
}
CREDIT_MODEL = "last_touch"


async def get(session: AsyncSession, tenant_id: str, experiment_id: str) -> Experiment | None:
    return await session.get(Experiment, (tenant_id, experiment_id))


async def latest(session: AsyncSession, tenant_id: str, limit: int) -> list[Experiment]:
    """The tenant's experiments, the latest start first (then by id)."""
    rows = await session.scalars(
        select(Experiment)
        .where(Experiment.tenant_id == tenant_id)
        .order_by(Experiment.starts_at.desc(), Experiment.experiment_id)
        .limit(limit)
    )
    return list(rows.all())


async def add(session: AsyncSession, row: Experiment) -> None:
    session.add(row)
    await session.flush()


async def user_contents(
    session: AsyncSession,
    tenant_id: str,
    types: Collection[str],
    content_ids: Collection[str],
    start: dt.datetime,
    end: dt.datetime,
) -> list[tuple[str, str]]:
    """Distinct ``(user_id, content_id)`` with an event of ``types`` on those contents."""
    rows = await session.execute(
        select(Event.user_id, Event.content_id)
        .where(*events_in(tenant_id, types, start, end), Event.content_id.in_(list(content_ids)))
        .distinct()
    )
    return [(user, content) for user, content in rows if content is not None]


async def buyer_credits(
    session: AsyncSession,
    tenant_id: str,
    content_ids: Collection[str],
    start: dt.datetime,
    end: dt.datetime,
) -> list[tuple[str, str, Decimal, str]]:
    """``(buyer_id, content_id, amount, currency)`` per last-touch credit paid in range."""
    rows = await session.execute(
        select(Order.buyer_id, Credit.content_id, Credit.amount, Credit.currency)
        .join(
            Order,
            (Order.tenant_id == Credit.tenant_id) & (Order.order_id == Credit.order_id),
        )
        .where(
            Credit.tenant_id == tenant_id,
            Credit.model == CREDIT_MODEL,
            Credit.content_id.in_(list(content_ids)),
            Credit.paid_at >= start,
            Credit.paid_at < end,
            Order.buyer_id.is_not(None),
        )
    )
    return [
        (buyer, content, Decimal(amount), currency)
        for buyer, content, amount, currency in rows
        if buyer is not None and content is not None
    ]
