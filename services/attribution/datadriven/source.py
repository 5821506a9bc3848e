"""Where the data-driven models' paths come from: a :class:`PathSource`.

The service's own database (:class:`SqlPathSource`: touches and orders read, paths built in
Python) or any other store that gives the same paths, such as the analytic store, which
groups the journeys of users who never bought inside ClickHouse.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.datadriven import repository
from services.attribution.datadriven.paths import Paths, build_paths
from services.attribution.datadriven.repository import ChannelDimension


@dataclass(frozen=True, slots=True)
class PathQuery:
    """Whose paths, by which channel: the range's paid orders and the touches of
    ``[range_from - window, range_to)``."""

    tenant_id: str
    dimension: ChannelDimension
    range_from: dt.datetime
    range_to: dt.datetime
    window: dt.timedelta


class PathSource(Protocol):
    async def paths(self, query: PathQuery) -> Paths: ...


class SqlPathSource:
    """Touches and paid orders read from SQL, paths built in Python."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def paths(self, query: PathQuery) -> Paths:
        q = query
        touches = await repository.range_touches(
            self.session, q.tenant_id, q.dimension, q.range_from - q.window, q.range_to
        )
        orders = await repository.paid_orders(self.session, q.tenant_id, q.range_from, q.range_to)
        return build_paths(
            touches, orders, range_from=q.range_from, range_to=q.range_to, window=q.window
        )
