"""Distinct viewers per content or ad from the analytic store (:class:`ClickHouseViewers`).

Read without ``FINAL``: a row copied twice (a replication retried after a crash) is the same
user, so it cannot change a count of distinct users, and the table's merge state does not
matter. The report takes these counts beside sums and credits read from the system of
record; read-your-writes holds because the store catches up before it is read.
"""

from __future__ import annotations

import datetime as dt

from services.attribution.analytics.replication import EventReplicator
from services.attribution.analytics.store import instant_literal, quote

#: The store's columns a report may count viewers by.
KEYS = frozenset({"content_id", "ad_id"})


def unique_viewers_statement(tenant_id: str, key: str, start: dt.datetime, end: dt.datetime) -> str:
    if key not in KEYS:
        raise ValueError(f"viewers are counted by {sorted(KEYS)}, not {key!r}")
    return f"""
        SELECT {key}, uniqExact(user_id)
        FROM {{db}}.events
        WHERE tenant_id = {quote(tenant_id)} AND type = 'view' AND {key} IS NOT NULL
            AND t >= {instant_literal(start)} AND t < {instant_literal(end)}
        GROUP BY {key}"""


class ClickHouseViewers:
    def __init__(self, replicator: EventReplicator) -> None:
        self._replicator = replicator

    async def unique_viewers(
        self, tenant_id: str, key: str, start: dt.datetime, end: dt.datetime
    ) -> dict[str, int]:
        await self._replicator.catch_up()
        rows = await self._replicator.store.arows(
            unique_viewers_statement(tenant_id, key, start, end)
        )
        return {str(value): int(count) for value, count in rows}
