"""Data-driven paths from the analytic store (:class:`ClickHousePathSource`).

Most users in a range never buy, and each of them gives one non-converting path: their
touches in the range with a channel, in time order (ties by event id). ClickHouse builds
those paths and counts them (``arraySort`` of ``(t, event_id, channel)`` per user, then a
``GROUP BY`` on the path), so only the distinct paths cross into Python. The buyers' touches
(a few per cent of users) come back as rows and go through the same
:func:`~services.attribution.datadriven.paths.build_paths` as the database's, so the click
window, claimed touches and journeys follow one rule. Orders come from the system of record.

The ad ``format`` channel is not in the store: paths are read by ``ad_id`` and mapped to the
ad's format from the catalog read model (a touch whose ad has no known format drops out).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.analytics.replication import EventReplicator
from services.attribution.analytics.store import (
    AnalyticStore,
    instant_literal,
    quote,
    quote_list,
)
from services.attribution.datadriven import repository
from services.attribution.datadriven.paths import PaidOrder, Paths, PathTouch, build_paths
from services.attribution.datadriven.repository import ChannelDimension
from services.attribution.datadriven.source import PathQuery
from services.attribution.models import CatalogAd
from shared.db import from_epoch_us
from shared.vocabulary import TOUCH_TYPES

#: The store's column for each channel dimension (``format`` is mapped from ``ad_id``).
CHANNEL_COLUMNS: Mapping[ChannelDimension, str] = {
    "content": "content_id",
    "ad": "ad_id",
    "platform": "platform",
    "format": "ad_id",
}


def _touch_rows(
    tenant_id: str, column: str, touches_from: dt.datetime, touches_to: dt.datetime
) -> str:
    return f"""
        SELECT user_id, t, event_id, {column} AS channel
        FROM {{db}}.events FINAL
        WHERE tenant_id = {quote(tenant_id)} AND type IN {quote_list(sorted(TOUCH_TYPES))}
            AND t >= {instant_literal(touches_from)} AND t < {instant_literal(touches_to)}"""


def non_buyer_paths_statement(
    tenant_id: str,
    column: str,
    range_from: dt.datetime,
    range_to: dt.datetime,
    buyers: list[str],
) -> str:
    """``(path, users)``: each distinct path of the users outside ``buyers``, counted."""
    return f"""
        SELECT path, count() AS users FROM (
            SELECT arrayMap(x -> x.3, arraySort(groupArray(
                (t, event_id, assumeNotNull(channel))))) AS path
            FROM ({_touch_rows(tenant_id, column, range_from, range_to)})
            WHERE channel IS NOT NULL AND user_id NOT IN {quote_list(buyers)}
            GROUP BY user_id
        )
        GROUP BY path"""


def buyer_touches_statement(
    tenant_id: str,
    column: str,
    touches_from: dt.datetime,
    touches_to: dt.datetime,
    buyers: list[str],
) -> str:
    """The touches of ``buyers`` as rows ``(user_id, microseconds, event_id, channel)``."""
    return f"""
        SELECT user_id, toUnixTimestamp64Micro(t), event_id, channel
        FROM ({_touch_rows(tenant_id, column, touches_from, touches_to)})
        WHERE user_id IN {quote_list(buyers)}"""


class ClickHousePathSource:
    """The same paths as :class:`~services.attribution.datadriven.source.SqlPathSource`."""

    def __init__(self, session: AsyncSession, replicator: EventReplicator) -> None:
        self._session = session
        self._replicator = replicator

    async def paths(self, query: PathQuery) -> Paths:
        q = query
        orders = await repository.paid_orders(self._session, q.tenant_id, q.range_from, q.range_to)
        formats = await self._ad_formats(q.tenant_id) if q.dimension == "format" else None
        # Read-your-writes: whatever the system of record holds is copied before reading.
        await self._replicator.catch_up()
        return await store_paths(
            self._replicator.store,
            q.tenant_id,
            CHANNEL_COLUMNS[q.dimension],
            orders,
            range_from=q.range_from,
            range_to=q.range_to,
            window=q.window,
            formats=formats,
        )

    async def _ad_formats(self, tenant_id: str) -> dict[str, str]:
        rows = await self._session.execute(
            select(CatalogAd.id, CatalogAd.format).where(
                CatalogAd.tenant_id == tenant_id, CatalogAd.format.is_not(None)
            )
        )
        return dict(rows.tuples().all())


async def store_paths(
    store: AnalyticStore,
    tenant_id: str,
    column: str,
    orders: Sequence[PaidOrder],
    *,
    range_from: dt.datetime,
    range_to: dt.datetime,
    window: dt.timedelta,
    formats: Mapping[str, str] | None = None,
) -> Paths:
    """The paths of ``orders`` and of every user's touches in ``store`` by ``column``.

    ``formats`` (ad id → format) maps ad-id channels to formats when given.
    """
    buyers = sorted({order.buyer_id for order in orders})
    touches: list[PathTouch] = []
    if buyers:
        rows = await store.arows(
            buyer_touches_statement(tenant_id, column, range_from - window, range_to, buyers)
        )
        touches = [
            PathTouch(user, from_epoch_us(int(us)), event_id, _mapped(channel, formats))
            for user, us, event_id, channel in rows
        ]
    paths = build_paths(touches, orders, range_from=range_from, range_to=range_to, window=window)
    counted = await store.arows(
        non_buyer_paths_statement(tenant_id, column, range_from, range_to, buyers)
    )
    for path, users in counted:
        channels = tuple(path) if formats is None else _formats_of(path, formats)
        if channels:
            paths.add(channels, converted=False, revenue=Decimal(0), times=int(users))
    return paths


def _mapped(channel: str | None, formats: Mapping[str, str] | None) -> str | None:
    if formats is None or channel is None:
        return channel
    return formats.get(channel)


def _formats_of(path: list[str], formats: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(formats[ad] for ad in path if ad in formats)
