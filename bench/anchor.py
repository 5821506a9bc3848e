"""The ClickHouse anchor: the run's own rows loaded straight into chdb, raw ``windowFunnel``.

After a run's ingest and orders, the rows the funnels read are exported from the system of
record (outside every timed region): each accepted event with its platform resolved (its own,
else its content's account's), and each paid order with a buyer, its paid time and the
content ids and platforms of its last-touch credits. They go into one in-memory chdb table
ordered by ``(user_id, t)``, denormalised as favourably for ClickHouse as it gets, and each
bench funnel is timed there as one ``windowFunnel`` query. The API's time for the same
funnel divided by this is the "API / raw ClickHouse" ratio.

``windowFunnel``'s default mode is not exactly the service's semantics (equal timestamps,
one event matching two steps): the users per step of both are kept beside the figures.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import create_async_engine

from services.attribution.models import CatalogAccount, CatalogContent, Credit, Event, Order
from shared.db import to_epoch_us

ORDER = "order"
LAST_TOUCH = "last_touch"


@dataclass(frozen=True)
class RawFunnel:
    """One bench funnel as the anchor runs it."""

    steps: Sequence[str]
    filters: Mapping[str, str]
    breakdown: str | None = None


@dataclass(frozen=True)
class RawTiming:
    seconds: list[float]
    users: list[int]  # per step (the plain funnel; a breakdown's overall is not asked)
    groups: int  # breakdown values answered (1 without a breakdown)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000


async def export_rows(url: str, tenant: str) -> list[dict[str, Any]]:
    """The tenant's funnel rows from the system of record, as JSON documents."""
    engine = create_async_engine(url)
    e, c, a = Event.__table__, CatalogContent.__table__, CatalogAccount.__table__
    o, cr = Order.__table__, Credit.__table__
    content_join = and_(c.c.tenant_id == e.c.tenant_id, c.c.id == e.c.content_id)
    account_join = and_(a.c.tenant_id == c.c.tenant_id, a.c.id == c.c.account_id)
    docs: list[dict[str, Any]] = []
    try:
        async with engine.connect() as conn:
            events = await conn.stream(
                select(
                    e.c.user_id,
                    e.c.occurred_at,
                    e.c.type,
                    e.c.content_id,
                    func.coalesce(e.c.platform, a.c.platform),
                )
                .select_from(e.outerjoin(c, content_join).outerjoin(a, account_join))
                .where(e.c.tenant_id == tenant)
            )
            async for user, at, kind, content, platform in events:
                docs.append(
                    {
                        "user_id": user,
                        "t": to_epoch_us(at),
                        "type": kind,
                        "contents": [content] if content is not None else [],
                        "platforms": [platform] if platform is not None else [],
                    }
                )
            touch = Event.__table__.alias("touch")
            credit_rows = await conn.execute(
                select(
                    cr.c.order_id, cr.c.content_id, func.coalesce(touch.c.platform, a.c.platform)
                )
                .select_from(
                    cr.outerjoin(
                        touch, and_(touch.c.tenant_id == tenant, touch.c.event_id == cr.c.event_id)
                    )
                    .outerjoin(c, and_(c.c.tenant_id == tenant, c.c.id == cr.c.content_id))
                    .outerjoin(a, account_join)
                )
                .where(cr.c.tenant_id == tenant, cr.c.model == LAST_TOUCH)
            )
            credits: dict[str, tuple[set[str], set[str]]] = {}
            for order_id, content, platform in credit_rows:
                contents, platforms = credits.setdefault(order_id, (set(), set()))
                if content is not None:
                    contents.add(content)
                if platform is not None:
                    platforms.add(platform)
            orders = await conn.execute(
                select(o.c.order_id, o.c.buyer_id, o.c.paid_at).where(
                    o.c.tenant_id == tenant, o.c.paid_at.is_not(None), o.c.buyer_id.is_not(None)
                )
            )
            for order_id, buyer, paid in orders:
                contents, platforms = credits.get(order_id, (set(), set()))
                docs.append(
                    {
                        "user_id": buyer,
                        "t": to_epoch_us(paid),
                        "type": ORDER,
                        "contents": sorted(contents),
                        "platforms": sorted(platforms),
                    }
                )
    finally:
        await engine.dispose()
    return docs


class Anchor:
    """An in-memory chdb holding one run's rows."""

    def __init__(self, docs: Sequence[dict[str, Any]]) -> None:
        from chdb import session as chdb_session

        # chdb ships no type hints.
        self._session = chdb_session.Session()  # type: ignore[no-untyped-call]
        self._run("CREATE DATABASE IF NOT EXISTS anchor")
        self._run(
            "CREATE TABLE anchor.rows (user_id String, t UInt64, type LowCardinality(String), "
            "contents Array(String), platforms Array(LowCardinality(String))) "
            "ENGINE = MergeTree ORDER BY (user_id, t)"
        )
        for start in range(0, len(docs), 200_000):
            body = b"\n".join(orjson.dumps(d) for d in docs[start : start + 200_000]).decode()
            self._run(f"INSERT INTO anchor.rows FORMAT JSONEachRow\n{body}")
        self._run("OPTIMIZE TABLE anchor.rows FINAL")
        self.rows = len(docs)
        found = self._run(
            "SELECT arraySort(groupUniqArray(p)) FROM anchor.rows ARRAY JOIN platforms AS p "
            "FORMAT JSONCompact"
        )
        self.platforms: list[str] = orjson.loads(found)["data"][0][0]

    def _run(self, statement: str) -> bytes:
        # chdb ships no type hints.
        return bytes(self._session.query(statement).bytes() or b"")  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self._session.cleanup()  # type: ignore[no-untyped-call]  # chdb ships no type hints

    def time_funnel(
        self, funnel: RawFunnel, start: dt.datetime, end: dt.datetime, window_s: int, reps: int
    ) -> RawTiming:
        statement = raw_statement(
            funnel, to_epoch_us(start), to_epoch_us(end), window_s, self.platforms
        )
        seconds: list[float] = []
        data: list[list[Any]] = []
        for _ in range(reps):
            started = time.perf_counter()
            data = orjson.loads(self._run(statement + " FORMAT JSONCompact"))["data"]
            seconds.append(time.perf_counter() - started)
        if funnel.breakdown is None:
            users = [int(v) for v in data[0]] if data else []
            return RawTiming(seconds, users, 1)
        return RawTiming(seconds, [], len(data))


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _condition(key: str, value: str) -> str:
    literal = _quote(value)
    if key == "platform":
        return f"has(platforms, {literal})"
    if key == "content_id":
        return f"has(contents, {literal})"
    raise ValueError(f"the anchor filters on platform or content_id, not {key}")


def raw_statement(
    funnel: RawFunnel, start_us: int, end_us: int, window_s: int, values: Sequence[str]
) -> str:
    """One ``windowFunnel`` query: users per step, or per breakdown value."""
    window_us = window_s * 1_000_000
    common = " AND ".join(_condition(k, v) for k, v in funnel.filters.items()) or "1"
    steps = [f"type = '{s}'" for s in funnel.steps]
    steps[0] += f" AND t < {end_us}"
    levels = ", ".join(f"countIf(level >= {k + 1})" for k in range(len(steps)))
    types = ", ".join(f"'{s}'" for s in sorted(set(funnel.steps)))
    where = f"t >= {start_us} AND t < {end_us + window_us} AND type IN ({types}) AND {common}"
    if funnel.breakdown is None:
        return (
            f"SELECT {levels} FROM (SELECT user_id, windowFunnel({window_us})(t, "
            f"{', '.join(steps)}) AS level FROM anchor.rows WHERE {where} GROUP BY user_id)"
        )
    if funnel.breakdown != "platform":
        raise ValueError("the anchor breaks down by platform only")
    # Each value its own funnel: step 1 restricted to rows having the value.
    steps[0] += " AND has(platforms, v)"
    return (
        f"SELECT v, {levels} FROM (SELECT user_id, v, windowFunnel({window_us})(t, "
        f"{', '.join(steps)}) AS level FROM anchor.rows "
        f"ARRAY JOIN [{', '.join(_quote(v) for v in values)}] AS v "
        f"WHERE {where} GROUP BY user_id, v) WHERE level > 0 GROUP BY v ORDER BY v"
    )
