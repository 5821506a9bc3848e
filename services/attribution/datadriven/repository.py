"""The reads behind the data-driven models: a range's touches (with their channel) and orders."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.datadriven.paths import PaidOrder, PathTouch
from services.attribution.models import CatalogAd, Event, Order
from shared.vocabulary import TOUCH_TYPES

ChannelDimension = Literal["content", "ad", "platform", "format"]
_TOUCH_TYPES = sorted(TOUCH_TYPES)
_STREAM_ROWS = 20_000


async def range_touches(
    session: AsyncSession,
    tenant_id: str,
    dimension: ChannelDimension,
    touches_from: dt.datetime,
    touches_to: dt.datetime,
) -> list[PathTouch]:
    """Every touch in ``[touches_from, touches_to)`` with its channel under ``dimension``."""
    channel = {
        "content": Event.content_id,
        "ad": Event.ad_id,
        "platform": Event.platform,
        "format": CatalogAd.format,
    }[dimension]
    statement = select(Event.user_id, Event.occurred_at, Event.event_id, channel).where(
        Event.tenant_id == tenant_id,
        Event.type.in_(_TOUCH_TYPES),
        Event.occurred_at >= touches_from,
        Event.occurred_at < touches_to,
    )
    if dimension == "format":
        statement = statement.outerjoin(
            CatalogAd, (CatalogAd.tenant_id == Event.tenant_id) & (CatalogAd.id == Event.ad_id)
        )
    result = await session.stream(statement.execution_options(yield_per=_STREAM_ROWS))
    return [PathTouch(*row) async for row in result]


async def paid_orders(
    session: AsyncSession, tenant_id: str, paid_from: dt.datetime, paid_to: dt.datetime
) -> list[PaidOrder]:
    """Orders paid in the range that still carry revenue (not cancelled, not fully refunded)."""
    rows = await session.execute(
        select(Order.order_id, Order.buyer_id, Order.paid_at, Order.revenue).where(
            Order.tenant_id == tenant_id,
            Order.paid_at >= paid_from,
            Order.paid_at < paid_to,
            Order.status != "cancelled",
            Order.buyer_id.is_not(None),
        )
    )
    # Revenue is filtered here: SQLite stores money as decimal text, not comparable in SQL.
    return [PaidOrder(*row) for row in rows if row.revenue > 0]
