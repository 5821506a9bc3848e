"""Funnels answered from the analytic store (:class:`ClickHouseFunnelSource`).

For an ordered funnel over event steps, ClickHouse selects the tenant's rows in range,
computes each row's step bitmask (type, global and per-step filters) and groups them by user
into the two sorted lists the exact engine's ``FunnelAccumulator.add_split`` takes (times of
rows matching step 1 only; ``t << MASK_BITS | mask`` of rows matching a later step), with
their breakdown values. The chain search itself (distinct events, equal times allowed, the
window) stays the engine's, so the answer is the same as the system of record's, to the user.

Filters on catalog dimensions (account, content kind, platform) become ``content_id IN (…)``
of the tenant's matching contents, read from the attribution database's catalog read model;
a breakdown by one of them maps content ids to values the same way.

Funnels with an ``order`` step, and the other modes (strict, unordered, exclusions, time to
convert, users per level), are not replicated yet and are answered by the SQL source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.analytics.replication import EventReplicator
from services.attribution.analytics.store import instant_literal, quote, quote_list
from services.attribution.funnels.engine import MASK_BITS, FunnelAccumulator, FunnelResult
from services.attribution.funnels.planner import CONTENT_KEYS, CONTENT_MARK, FunnelPlan
from services.attribution.funnels.source import SqlFunnelSource
from services.attribution.models import CatalogAccount, CatalogContent
from shared.db import to_epoch_us

#: Users handed to the engine per chunk of the result.
_CHUNK = 20_000


class ClickHouseFunnelSource:
    """Ordered funnels over events from ClickHouse; the rest from the SQL source."""

    def __init__(self, session: AsyncSession, replicator: EventReplicator) -> None:
        self._session = session
        self._replicator = replicator
        self._sql = SqlFunnelSource(session)

    @staticmethod
    def covers(plan: FunnelPlan) -> bool:
        return plan.plain and not plan.has_orders

    async def step_counts(self, plan: FunnelPlan) -> FunnelResult:
        if not self.covers(plan):
            return await self._sql.step_counts(plan)
        # Read-your-writes: whatever the system of record holds is copied before reading.
        await self._replicator.catch_up()
        contents = await self._content_filters(plan)
        values = await self._content_values(plan)
        statement = funnel_users_statement(plan, contents)
        acc = FunnelAccumulator(
            len(plan.steps),
            plan.window_us,
            to_epoch_us(plan.start),
            to_epoch_us(plan.end),
            breakdown=plan.breakdown is not None,
        )
        rows = await self._replicator.store.arows(statement)
        if plan.breakdown is None:
            for _, starts, later in rows:
                acc.add_split(starts, later)
            return acc.result()
        translate = partial(_translate, plan.breakdown, values)
        for _, starts, later in rows:
            acc.add_split(
                [t for t, _ in starts],
                [x for x, _ in later],
                translate([v for _, v in starts]),
                translate([v for _, v in later]),
            )
        return acc.result()

    async def conversion_times(self, plan: FunnelPlan, from_step: int, to_step: int) -> list[int]:
        return await self._sql.conversion_times(plan, from_step, to_step)

    async def user_levels(self, plan: FunnelPlan) -> dict[str, int]:
        return await self._sql.user_levels(plan)

    async def _content_filters(self, plan: FunnelPlan) -> dict[tuple[str, str], list[str]]:
        """For each catalog filter ``(key, value)`` used: the tenant's matching content ids."""
        wanted = {
            (key, value)
            for filters in (plan.filters, *(s.filters for s in plan.steps))
            for key, value in filters.items()
            if key in CONTENT_KEYS
        }
        c = CatalogContent.__table__
        a = CatalogAccount.__table__
        out: dict[tuple[str, str], list[str]] = {}
        for key, value in sorted(wanted):
            if key == "account_id":
                q = select(c.c.id).where(c.c.tenant_id == plan.tenant_id, c.c.account_id == value)
            elif key == "content_kind":
                q = select(c.c.id).where(c.c.tenant_id == plan.tenant_id, c.c.kind == value)
            else:
                q = (
                    select(c.c.id)
                    .join(a, and_(a.c.tenant_id == plan.tenant_id, a.c.id == c.c.account_id))
                    .where(c.c.tenant_id == plan.tenant_id, a.c.platform == value)
                )
            out[key, value] = list((await self._session.execute(q)).scalars())
        return out

    async def _content_values(self, plan: FunnelPlan) -> dict[str, str] | None:
        """Content id → the breakdown's catalog value (a breakdown by one of those only)."""
        if plan.breakdown not in CONTENT_KEYS:
            return None
        c = CatalogContent.__table__
        a = CatalogAccount.__table__
        q: Any
        if plan.breakdown == "platform":
            q = (
                select(c.c.id, a.c.platform)
                .join(a, and_(a.c.tenant_id == plan.tenant_id, a.c.id == c.c.account_id))
                .where(c.c.tenant_id == plan.tenant_id)
            )
        else:
            column = c.c.account_id if plan.breakdown == "account_id" else c.c.kind
            q = select(c.c.id, column).where(c.c.tenant_id == plan.tenant_id)
        return {str(k): str(v) for k, v in (await self._session.execute(q)).tuples()}


def _translate(
    breakdown: str, values: Mapping[str, str] | None, raw: Sequence[str | None]
) -> list[str | None]:
    """Raw breakdown values as ClickHouse gives them → the values (see :func:`_value`)."""
    if values is None:
        return list(raw)
    if breakdown == "platform":
        return [v if v is None or v[0] != CONTENT_MARK else values.get(v[1:]) for v in raw]
    return [None if v is None else values.get(v) for v in raw]


# --------------------------------------------------------------------------- statements


def _matches(filters: Mapping[str, str], contents: Mapping[tuple[str, str], list[str]]) -> str:
    """Conditions of ``filters`` on an event row, ANDed ("1" when there is none).

    NULL never equals a value: an event lacking the dimension does not match.
    """
    terms = []
    for key, value in filters.items():
        if key not in CONTENT_KEYS:
            terms.append(f"ifNull({key} = {quote(value)}, 0)")
        elif key == "platform":
            ids = quote_list(contents[key, value])
            terms.append(
                f"(ifNull(platform = {quote(value)}, 0)"
                f" OR (platform IS NULL AND ifNull(content_id IN {ids}, 0)))"
            )
        else:
            terms.append(f"ifNull(content_id IN {quote_list(contents[key, value])}, 0)")
    return " AND ".join(terms) if terms else "1"


def _value(plan: FunnelPlan) -> str:
    """The row's raw breakdown value: a column, or a content id to map (catalog values)."""
    key = plan.breakdown
    if key is None:
        return "NULL"
    if key == "platform":
        return f"coalesce(platform, concat({quote(CONTENT_MARK)}, content_id))"
    if key in CONTENT_KEYS:
        return "content_id"
    return key


def funnel_users_statement(plan: FunnelPlan, contents: Mapping[tuple[str, str], list[str]]) -> str:
    """``(user_id, starts, later)`` per user who can start a chain, each list sorted.

    With a breakdown each list holds ``(t, value)`` / ``(packed, value)`` pairs.
    """
    steps = [f"(type = {quote(s.type)} AND {_matches(s.filters, contents)})" for s in plan.steps]
    mask = " + ".join(f"if({cond}, {1 << k}, 0)" for k, cond in enumerate(steps))
    until = plan.until
    time_bounds = f"t >= {instant_literal(plan.start)}" + (
        f" AND t < {instant_literal(until)}" if until is not None else ""
    )
    start = f"({steps[0]} AND t < {instant_literal(plan.end)})"
    types = quote_list(plan.event_types)
    breakdown = plan.breakdown is not None
    starts = "(ts, value)" if breakdown else "ts"
    later = (
        f"(ts * {1 << MASK_BITS} + mask, value)" if breakdown else f"ts * {1 << MASK_BITS} + mask"
    )
    return f"""
        SELECT user_id,
            arraySort(groupArrayIf({starts}, mask = 1 AND start)) AS starts,
            arraySort(groupArrayIf({later}, mask > 1)) AS later
        FROM (
            SELECT user_id, toUnixTimestamp64Micro(t) AS ts, {mask} AS mask,
                {_value(plan)} AS value, {start} AS start
            FROM {{db}}.events FINAL
            WHERE tenant_id = {quote(plan.tenant_id)} AND type IN {types}
                AND {time_bounds} AND {_matches(plan.filters, contents)}
        )
        WHERE mask > 0
        GROUP BY user_id
        HAVING max(start) = 1
    """
