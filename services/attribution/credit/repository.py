"""Credit storage: the buyer's touches, the catalog links cache, credit rows, buyer stitching.

The only SQL of the credit domain. Order ingest is the hot path, so these are Core
statements built once at import (SQLAlchemy memoises their cache keys) executed on the
session's connection: no ORM objects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.attribution.credit import engine
from services.attribution.credit.fraud import HOUR as FLOOD_HORIZON
from services.attribution.credit.fraud import BuyerActivity, SeenTouch
from services.attribution.models import (
    CatalogContentProduct,
    Credit,
    Event,
    EventDaily,
    Order,
    OrderClick,
    OrderLine,
    TouchVerdict,
)
from shared.db import from_epoch_us, to_epoch_us
from shared.vocabulary import TOUCH_TYPES


def _of_order(table: Table) -> ColumnElement[bool]:
    """The rows of one order, bound as ``tenant_id`` and ``order_id``."""
    return and_(
        table.c.tenant_id == bindparam("tenant_id"), table.c.order_id == bindparam("order_id")
    )


_EVENTS = cast(Table, Event.__table__)
_LINKS = cast(Table, CatalogContentProduct.__table__)
_CREDITS = cast(Table, Credit.__table__)

_TOUCH_COLUMNS = (
    _EVENTS.c.event_id,
    _EVENTS.c.type,
    _EVENTS.c.occurred_at,
    _EVENTS.c.content_id,
    _EVENTS.c.ad_id,
    _EVENTS.c.product_id,
    _EVENTS.c.user_id,
    _EVENTS.c.click_id,
)
# The buyer's events in the lookback (plus the hour before it, which the fraud rules count):
# every type, since the rate cap counts them all; served by the (tenant_id, user_id,
# occurred_at, type) index.
_TOUCHES_BY_USER = select(*_TOUCH_COLUMNS).where(
    _EVENTS.c.tenant_id == bindparam("tenant_id"),
    _EVENTS.c.user_id == bindparam("buyer_id"),
    _EVENTS.c.occurred_at >= bindparam("earliest"),
    _EVENTS.c.occurred_at <= bindparam("order_time"),
)
# A click id has a handful of events: select by it alone so the planner takes the
# (tenant_id, click_id) index, and filter type and time in Python.
_TOUCHES_BY_CLICKS = select(*_TOUCH_COLUMNS).where(
    _EVENTS.c.tenant_id == bindparam("tenant_id"),
    _EVENTS.c.click_id.in_(bindparam("click_ids", expanding=True)),
)
# Both in one round trip; UNION ALL of two indexed selects rather than one select with OR,
# which SQLite would answer by scanning the tenant's events.
_TOUCHES_BOTH = union_all(_TOUCHES_BY_USER, _TOUCHES_BY_CLICKS)

_CONTENT_PRODUCTS = select(_LINKS.c.content_id, _LINKS.c.product_id).where(
    _LINKS.c.tenant_id == bindparam("tenant_id"),
    _LINKS.c.content_id.in_(bindparam("content_ids", expanding=True)),
)

_CLEAR_CREDITS = delete(_CREDITS).where(_of_order(_CREDITS))
_INSERT_CREDITS = insert(_CREDITS)
_VERDICTS = cast(Table, TouchVerdict.__table__)
_INSERT_VERDICTS = insert(_VERDICTS)
_CLEAR_VERDICTS = delete(_VERDICTS).where(_of_order(_VERDICTS))
_ORDER_VERDICTS = (
    select(
        _VERDICTS.c.event_id,
        _VERDICTS.c.reason,
        _VERDICTS.c.mode,
        _VERDICTS.c.touch,
        _VERDICTS.c.touch_at,
        _VERDICTS.c.content_id,
        _VERDICTS.c.ad_id,
    )
    .where(_of_order(_VERDICTS))
    .order_by(_VERDICTS.c.touch_at, _VERDICTS.c.event_id, _VERDICTS.c.reason)
)
# What an order's reply and GET .../attribution show of each credit, in credit order.
_STORED_CREDITS = (
    select(
        _CREDITS.c.product_id,
        _CREDITS.c.content_id,
        _CREDITS.c.ad_id,
        _CREDITS.c.event_id,
        _CREDITS.c.touch,
        _CREDITS.c.touch_at,
        _CREDITS.c.weight,
        _CREDITS.c.amount,
        _CREDITS.c.flags,
    )
    .where(_of_order(_CREDITS), _CREDITS.c.model == bindparam("model"))
    .order_by(_CREDITS.c.position)
)


_DAILY = cast(Table, EventDaily.__table__)
_AD_DAY_CLICKS = select(func.coalesce(func.sum(_DAILY.c.events), 0)).where(
    _DAILY.c.tenant_id == bindparam("tenant_id"),
    _DAILY.c.day == bindparam("day"),
    _DAILY.c.type == "click",
    _DAILY.c.ad_id == bindparam("ad_id"),
)
_AD_DAY_ORDERS = select(func.count(func.distinct(_CREDITS.c.order_id))).where(
    _CREDITS.c.tenant_id == bindparam("tenant_id"),
    _CREDITS.c.model == "last_touch",
    _CREDITS.c.ad_id == bindparam("ad_id"),
    _CREDITS.c.paid_at >= bindparam("paid_from"),
    _CREDITS.c.paid_at < bindparam("paid_to"),
    _CREDITS.c.order_id != bindparam("order_id"),
)

# By click id alone, as ``_TOUCHES_BY_CLICKS``: with ``type = 'click'`` beside it SQLite takes
# the (tenant_id, type, …) index and walks every click of the tenant (each order then cost
# as much as the tenant has clicks). The type is checked in Python.
_CLICK_USERS = select(_EVENTS.c.click_id, _EVENTS.c.user_id, _EVENTS.c.type).where(
    _EVENTS.c.tenant_id == bindparam("tenant_id"),
    _EVENTS.c.click_id.in_(bindparam("click_ids", expanding=True)),
)


@dataclass(frozen=True, slots=True)
class BuyerEvidence:
    """The touches that may earn an order credit, and what the fraud rules look at.

    ``click_users``: click id -> the users a click with that id was reported for, for the
    touches' click ids, when the read that found the touches also found those (else None).
    """

    touches: list[SeenTouch]
    activity: BuyerActivity
    click_users: dict[str, frozenset[str]] | None = None


def _evidence(
    rows: Iterable[Sequence[Any]],
    buyer_id: str | None,
    earliest: dt.datetime,
    order_time: dt.datetime,
    *,
    with_users: bool = False,
    epoch_us: bool = False,
) -> BuyerEvidence:
    """The evidence from touch rows (``_TOUCH_COLUMNS``, then the click's users when
    ``with_users``; times as epoch microseconds when ``epoch_us``)."""
    seen: set[str] = set()
    touches: list[SeenTouch] = []
    event_times: list[dt.datetime] = []
    click_times: list[dt.datetime] = []
    users: dict[str, frozenset[str]] = {}
    for row in rows:
        event_id, type_, occurred_at, content_id, ad_id, product_id, user_id, click_id = row[:8]
        if event_id in seen:
            continue
        seen.add(event_id)
        if epoch_us:
            occurred_at = from_epoch_us(occurred_at)
        if buyer_id is not None and user_id == buyer_id:
            event_times.append(occurred_at)
            if type_ in engine.CLICK_TYPES:
                click_times.append(occurred_at)
        if type_ not in TOUCH_TYPES or not earliest <= occurred_at <= order_time:
            continue
        touch = engine.Touch(event_id, type_, occurred_at, content_id, ad_id, product_id)
        touches.append(SeenTouch(touch, user_id, click_id))
        if with_users and row[8] is not None:
            users[click_id] = frozenset(row[8].split(","))
    event_times.sort()
    click_times.sort()
    return BuyerEvidence(
        touches, BuyerActivity(event_times, click_times), users if with_users else None
    )


async def buyer_evidence(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    buyer_id: str | None,
    click_ids: Sequence[str],
    order_time: dt.datetime,
    lookback_seconds: int,
) -> BuyerEvidence:
    """The buyer's touches that can fall in a window (by user and by the order's click ids),
    with the buyer's event and click times for the rate and flood rules."""
    earliest = order_time - dt.timedelta(seconds=lookback_seconds)
    params: dict[str, Any] = {"tenant_id": tenant_id}
    if buyer_id is not None:
        params.update(buyer_id=buyer_id, earliest=earliest - FLOOD_HORIZON, order_time=order_time)
    if click_ids:
        params["click_ids"] = list(click_ids)
    if buyer_id is not None and click_ids:
        statement: Any = _TOUCHES_BOTH
    elif buyer_id is not None:
        statement = _TOUCHES_BY_USER
    elif click_ids:
        statement = _TOUCHES_BY_CLICKS
    else:
        return BuyerEvidence([], BuyerActivity())
    return _evidence(await conn.execute(statement, params), buyer_id, earliest, order_time)


# The same read on the driver, for the new-order hot path: one constant statement per dialect
# (and, on SQLite, per number of click ids), values as the driver takes them, and with each
# touching click's users (what ``click_users`` reads) in the same round trip.
_TOUCH_NAMES = ", ".join(f"e.{column.name}" for column in _TOUCH_COLUMNS)
_CLICK_IN = ", ".join(f"'{t}'" for t in sorted(engine.CLICK_TYPES))


def _users_column(agg: str, earliest: str, order_time: str) -> str:
    return (
        f"CASE WHEN e.type IN ({_CLICK_IN}) AND e.click_id IS NOT NULL "
        f"AND e.occurred_at >= {earliest} AND e.occurred_at <= {order_time} "
        f"THEN (SELECT {agg} FROM {_EVENTS.name} u WHERE u.tenant_id = e.tenant_id "
        # ``|| ''`` keeps SQLite off the (tenant_id, type, …) index (see ``_CLICK_USERS``).
        "AND u.type || '' = 'click' AND u.click_id = e.click_id) END"
    )


_PG_USERS = _users_column("string_agg(DISTINCT u.user_id, ',')", "$5", "$4")
_PG_TOUCHES = (
    f"SELECT {_TOUCH_NAMES}, {_PG_USERS} FROM {_EVENTS.name} e WHERE e.tenant_id = $1 "
    "AND e.user_id = $2 AND e.occurred_at >= $3 AND e.occurred_at <= $4 "
    f"UNION ALL SELECT {_TOUCH_NAMES}, {_PG_USERS} FROM {_EVENTS.name} e "
    "WHERE e.tenant_id = $1 AND e.click_id = ANY($6::text[])"
)


@lru_cache(maxsize=64)
def _sqlite_touches(clicks: int) -> str:
    users = _users_column("group_concat(DISTINCT u.user_id)", "?5", "?4")
    sql = (
        f"SELECT {_TOUCH_NAMES}, {users} FROM {_EVENTS.name} e WHERE e.tenant_id = ?1 "
        "AND e.user_id = ?2 AND e.occurred_at >= ?3 AND e.occurred_at <= ?4"
    )
    if clicks:
        marks = ", ".join(f"?{6 + i}" for i in range(clicks))
        sql += (
            f" UNION ALL SELECT {_TOUCH_NAMES}, {users} FROM {_EVENTS.name} e "
            f"WHERE e.tenant_id = ?1 AND e.click_id IN ({marks})"
        )
    return sql


async def buyer_evidence_on_driver(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    buyer_id: str,
    click_ids: Sequence[str],
    order_time: dt.datetime,
    lookback_seconds: int,
) -> BuyerEvidence:
    """``buyer_evidence`` of a known buyer, and the touching clicks' users, in one statement."""
    earliest = order_time - dt.timedelta(seconds=lookback_seconds)
    horizon = earliest - FLOOD_HORIZON
    if conn.dialect.name == "postgresql":
        params: tuple[Any, ...] = (
            tenant_id,
            buyer_id,
            horizon,
            order_time,
            earliest,
            list(click_ids),
        )
        rows = await conn.exec_driver_sql(_PG_TOUCHES, params)
        return _evidence(rows, buyer_id, earliest, order_time, with_users=True)
    params = (
        tenant_id,
        buyer_id,
        to_epoch_us(horizon),
        to_epoch_us(order_time),
        to_epoch_us(earliest),
        *click_ids,
    )
    rows = await conn.exec_driver_sql(_sqlite_touches(len(click_ids)), params)
    return _evidence(rows, buyer_id, earliest, order_time, with_users=True, epoch_us=True)


async def ad_day_activity(
    conn: AsyncConnection, tenant_id: str, order_id: str, keys: Iterable[tuple[str, dt.date]]
) -> dict[tuple[str, dt.date], tuple[int, int]]:
    """(ad, UTC day) -> clicks on the ad that day and other orders credited to it that day."""
    found: dict[tuple[str, dt.date], tuple[int, int]] = {}
    for ad_id, day in sorted(set(keys)):
        start = dt.datetime.combine(day, dt.time(), dt.UTC)
        clicks = await conn.scalar(
            _AD_DAY_CLICKS, {"tenant_id": tenant_id, "ad_id": ad_id, "day": start}
        )
        orders = await conn.scalar(
            _AD_DAY_ORDERS,
            {
                "tenant_id": tenant_id,
                "ad_id": ad_id,
                "order_id": order_id,
                "paid_from": start,
                "paid_to": start + dt.timedelta(days=1),
            },
        )
        found[(ad_id, day)] = (int(clicks or 0), int(orders or 0))
    return found


async def click_users(
    conn: AsyncConnection, tenant_id: str, click_ids: Iterable[str]
) -> dict[str, frozenset[str]]:
    """Click id -> every user a click with that id was reported for."""
    ids = sorted(set(click_ids))
    if not ids:
        return {}
    users: dict[str, set[str]] = {}
    for click_id, user_id, event_type in await conn.execute(
        _CLICK_USERS, {"tenant_id": tenant_id, "click_ids": ids}
    ):
        if event_type == "click":
            users.setdefault(click_id, set()).add(user_id)
    return {click_id: frozenset(found) for click_id, found in users.items()}


async def stitch_buyer(
    conn: AsyncConnection, tenant_id: str, user_id: str | None, click_ids: Sequence[str]
) -> str | None:
    """The order's buyer: its user_id, else the user of the first known click among click_ids."""
    if user_id is not None or not click_ids:
        return user_id
    rows = await conn.execute(_CLICK_USERS, {"tenant_id": tenant_id, "click_ids": list(click_ids)})
    users = {str(click_id): str(user) for click_id, user, kind in rows if kind == "click"}
    for click_id in click_ids:
        if click_id in users:
            return users[click_id]
    return None


# --------------------------------------------------------------------------- catalog links


@dataclass
class _TenantLinks:
    generation: int
    products: dict[str, frozenset[str]] = field(default_factory=dict)


# Per engine (so two databases in one process never share entries), per tenant: content →
# linked products, as of one catalog sequence. The catalog sync writes the links and bumps
# the sequence in one transaction, so a cached entry is valid exactly while the sequence it
# was read under is still current; callers read the sequence in a statement they need anyway.
_LINK_CACHE: weakref.WeakKeyDictionary[Engine, dict[str, _TenantLinks]] = (
    weakref.WeakKeyDictionary()
)
_LINK_CACHE_MAX_CONTENTS = 100_000  # per tenant; past it, start over rather than grow


async def _query_links(
    conn: AsyncConnection, tenant_id: str, content_ids: Sequence[str]
) -> dict[str, set[str]]:
    links: dict[str, set[str]] = {}
    rows = await conn.execute(
        _CONTENT_PRODUCTS, {"tenant_id": tenant_id, "content_ids": list(content_ids)}
    )
    for content_id, product_id in rows:
        links.setdefault(content_id, set()).add(product_id)
    return links


async def content_products(
    conn: AsyncConnection,
    tenant_id: str,
    content_ids: Iterable[str],
    *,
    generation: int | None = None,
) -> dict[str, frozenset[str]]:
    """Catalog links of these contents; cached when the catalog ``generation`` is known."""
    ids = sorted(set(content_ids))
    if not ids:
        return {}
    if generation is None:
        found = await _query_links(conn, tenant_id, ids)
        return {content: frozenset(products) for content, products in found.items()}
    per_tenant = _LINK_CACHE.setdefault(conn.sync_engine, {})
    cached = per_tenant.get(tenant_id)
    if (
        cached is None
        or cached.generation != generation
        or len(cached.products) > _LINK_CACHE_MAX_CONTENTS
    ):
        cached = per_tenant[tenant_id] = _TenantLinks(generation)
    missing = [content for content in ids if content not in cached.products]
    if missing:
        found = await _query_links(conn, tenant_id, missing)
        for content in missing:
            cached.products[content] = frozenset(found.get(content, ()))
    return {content: cached.products[content] for content in ids if cached.products[content]}


# --------------------------------------------------------------------------- credits


async def insert_credits(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_INSERT_CREDITS, list(rows))


async def insert_verdicts(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_INSERT_VERDICTS, list(rows))


async def clear_credits(conn: AsyncConnection, tenant_id: str, order_id: str) -> None:
    """Drop an order's credits and fraud verdicts (they are always rewritten together)."""
    key = {"tenant_id": tenant_id, "order_id": order_id}
    await conn.execute(_CLEAR_CREDITS, key)
    await conn.execute(_CLEAR_VERDICTS, key)


async def stored_credits(
    conn: AsyncConnection, tenant_id: str, order_id: str, model: str
) -> list[dict[str, Any]]:
    """An order's stored credits under one model, as the API shows them."""
    rows = await conn.execute(
        _STORED_CREDITS, {"tenant_id": tenant_id, "order_id": order_id, "model": model}
    )
    return [
        {
            "product_id": row.product_id,
            "content_id": row.content_id,
            "ad_id": row.ad_id,
            "event_id": row.event_id,
            "touch": row.touch,
            "occurred_at": row.touch_at,
            "weight": row.weight,
            "amount": row.amount,
            "flags": row.flags.split(",") if row.flags else [],
        }
        for row in rows
    ]


async def stored_verdicts(
    conn: AsyncConnection, tenant_id: str, order_id: str
) -> list[dict[str, Any]]:
    """The fraud rules an order's touches broke when it was last attributed."""
    rows = await conn.execute(_ORDER_VERDICTS, {"tenant_id": tenant_id, "order_id": order_id})
    return [dict(row._mapping) for row in rows]


# --------------------------------------------------------------------------- late touches


async def paid_orders_of_buyers(
    session: AsyncSession,
    tenant_id: str,
    buyer_ids: Sequence[str],
    paid_from: dt.datetime,
    paid_to: dt.datetime,
) -> list[Order]:
    """These buyers' orders paid in [paid_from, paid_to], locked by the session's identity map."""
    found: list[Order] = []
    for chunk_start in range(0, len(buyer_ids), 500):  # keep the IN list well under bind limits
        chunk = buyer_ids[chunk_start : chunk_start + 500]
        found.extend(
            await session.scalars(
                select(Order).where(
                    Order.tenant_id == tenant_id,
                    Order.buyer_id.in_(chunk),
                    Order.paid_at >= paid_from,
                    Order.paid_at <= paid_to,
                )
            )
        )
    return found


async def orders_naming_clicks(
    session: AsyncSession, tenant_id: str, click_ids: Sequence[str], *, besides: set[str]
) -> list[Order]:
    """Orders that name one of these click ids, other than the ``besides`` order ids."""
    if not click_ids:
        return []
    naming = select(OrderClick.order_id).where(
        OrderClick.tenant_id == tenant_id, OrderClick.click_id.in_(click_ids)
    )
    return await _orders_among(session, tenant_id, naming, besides)


async def orders_credited_by_clicks(
    session: AsyncSession, tenant_id: str, click_ids: Sequence[str], *, besides: set[str]
) -> list[Order]:
    """Orders credited to a touch with one of these click ids (another user reporting the
    same click id makes that touch suspicious), other than the ``besides`` order ids."""
    if not click_ids:
        return []
    credited = (
        select(Credit.order_id)
        .join(Event, (Event.tenant_id == Credit.tenant_id) & (Event.event_id == Credit.event_id))
        .where(Credit.tenant_id == tenant_id, Event.click_id.in_(click_ids))
        .distinct()
    )
    return await _orders_among(session, tenant_id, credited, besides)


async def _orders_among(
    session: AsyncSession, tenant_id: str, order_ids: Select[tuple[str]], besides: set[str]
) -> list[Order]:
    """The tenant's orders whose ids ``order_ids`` selects, other than the ``besides`` ids."""
    wanted = set(await session.scalars(order_ids)) - besides
    if not wanted:
        return []
    return list(
        await session.scalars(
            select(Order).where(Order.tenant_id == tenant_id, Order.order_id.in_(wanted))
        )
    )


async def lines_of_orders(
    conn: AsyncConnection, tenant_id: str, order_ids: Sequence[str]
) -> dict[str, list[engine.Line]]:
    """Every listed order's lines in one query, in line order."""
    lines: dict[str, list[engine.Line]] = {}
    for order_id, product_id, revenue in await conn.execute(
        select(OrderLine.order_id, OrderLine.product_id, OrderLine.revenue)
        .where(OrderLine.tenant_id == tenant_id, OrderLine.order_id.in_(order_ids))
        .order_by(OrderLine.order_id, OrderLine.line_no)
    ):
        lines.setdefault(order_id, []).append(engine.Line(product_id, revenue))
    return lines


# --------------------------------------------------------------------------- serialising buyers


def touch_lock_keys(tenant_id: str, keys: Iterable[str | None]) -> list[int]:
    """Advisory-lock keys (signed 64-bit) for these buyers and click ids of one tenant, sorted.

    Sorted, so every transaction takes its locks in one order and two can never deadlock.
    """
    found = set()
    for key in keys:
        if key:
            digest = hashlib.blake2b(f"{tenant_id}\x1f{key}".encode(), digest_size=8).digest()
            found.add(int.from_bytes(digest, "big", signed=True))
    return sorted(found)


_LOCK_KEYS = text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest(CAST(:keys AS bigint[])) AS k "
    "ORDER BY 1) AS ordered"
)


async def lock_touch_keys(
    conn: AsyncConnection, tenant_id: str, keys: Iterable[str | None]
) -> None:
    """Serialise, per buyer and click id, attributing an order with storing its late touches.

    Under READ COMMITTED an order attributed while a late event of its buyer commits could
    miss that touch (neither transaction sees the other's rows). Both sides take these
    transaction-scoped locks before they read, so whichever runs second sees the first's
    commit. SQLite runs one writer at a time and needs none.
    """
    if conn.dialect.name != "postgresql":
        return
    lock_keys = touch_lock_keys(tenant_id, keys)
    if lock_keys:
        await conn.execute(_LOCK_KEYS, {"keys": lock_keys})
