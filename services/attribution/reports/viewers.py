"""Where a report's distinct viewers are counted: the database, or the analytic store.

Distinct viewers per content do not add up across days, so unlike the other event sums they
cannot come from the daily roll-up: each report counts them over every ``view`` event of its
range, the heaviest read of the contents report. A service that runs an analytic store
counts them there (:class:`~services.attribution.analytics.viewers.ClickHouseViewers`).
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.events.repository import events_in
from services.attribution.models import Event


class ViewerCounter(Protocol):
    async def unique_viewers(
        self, tenant_id: str, key: str, start: dt.datetime, end: dt.datetime
    ) -> dict[str, int]:
        """Distinct ``user_id``s among ``view`` events in ``[start, end)`` per ``key``
        (``content_id`` or ``ad_id``; events without one are left out)."""
        ...


class SqlViewers:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def unique_viewers(
        self, tenant_id: str, key: str, start: dt.datetime, end: dt.datetime
    ) -> dict[str, int]:
        column = getattr(Event, key)
        # COUNT(DISTINCT) beside plain counts would make PostgreSQL sort every event of the
        # range instead of hashing: its own query.
        query = (
            select(column, func.count(distinct(Event.user_id)))
            .where(*events_in(tenant_id, ["view"], start, end), column.is_not(None))
            .group_by(column)
        )
        return {value: int(count) for value, count in await self._session.execute(query)}
