"""Where the data-driven models' paths come from: a :class:`PathSource`.

The service's own database (:class:`SqlPathSource`: touches and orders read, paths built in
Python) or any other store that gives the same paths, such as the analytic store, which
groups the journeys of users who never bought inside ClickHouse.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.datadriven import repository
from services.attribution.datadriven.paths import Paths, build_paths
from services.attribution.datadriven.repository import ChannelDimension


class PathSource(Protocol):
    async def paths(
        self,
        tenant_id: str,
        dimension: ChannelDimension,
        range_from: dt.datetime,
        range_to: dt.datetime,
        window: dt.timedelta,
    ) -> Paths: ...


class SqlPathSource:
    """Touches of ``[range_from - window, range_to)`` and the range's paid orders, from SQL."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def paths(
        self,
        tenant_id: str,
        dimension: ChannelDimension,
        range_from: dt.datetime,
        range_to: dt.datetime,
        window: dt.timedelta,
    ) -> Paths:
        touches = await repository.range_touches(
            self.session, tenant_id, dimension, range_from - window, range_to
        )
        orders = await repository.paid_orders(self.session, tenant_id, range_from, range_to)
        return build_paths(touches, orders, range_from=range_from, range_to=range_to, window=window)
