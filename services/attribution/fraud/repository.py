"""Reads of the fraud verdicts stored with each order's credits."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.models import TouchVerdict


async def verdicts_in_range(
    session: AsyncSession, tenant_id: str, touches_from: dt.datetime, touches_to: dt.datetime
) -> list[Row[Any]]:
    """Every verdict on a touch that happened in ``[touches_from, touches_to)``."""
    rows = await session.execute(
        select(
            TouchVerdict.order_id,
            TouchVerdict.event_id,
            TouchVerdict.reason,
            TouchVerdict.mode,
            TouchVerdict.touch_at,
            TouchVerdict.content_id,
            TouchVerdict.ad_id,
        ).where(
            TouchVerdict.tenant_id == tenant_id,
            TouchVerdict.touch_at >= touches_from,
            TouchVerdict.touch_at < touches_to,
        )
    )
    return list(rows)
