"""Order storage: every SQL statement of the orders domain.

Status posts that create an order are the hot path: Core statements built once at import
(SQLAlchemy memoises their cache keys) on the session's connection, no ORM objects. Posts
on existing orders and refunds work on the locked ORM row.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

import orjson
from sqlalchemy import Row, Table, bindparam, delete, insert, literal, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.attribution.catalog_sync.service import STATE_KEY
from services.attribution.models import (
    Credit,
    Order,
    OrderClick,
    OrderLine,
    OrderStatusPost,
    Refund,
    SyncState,
    TouchVerdict,
)
from services.attribution.settings.repository import RULE_COLUMNS, SETTINGS
from shared.currencies import canonical_money
from shared.db import to_epoch_us

_ORDERS = cast(Table, Order.__table__)
_LINES = cast(Table, OrderLine.__table__)
_CLICKS = cast(Table, OrderClick.__table__)
_POSTS = cast(Table, OrderStatusPost.__table__)
_SYNC = cast(Table, SyncState.__table__)
_CREDITS = cast(Table, Credit.__table__)
_VERDICTS = cast(Table, TouchVerdict.__table__)


def _post_key(table: Any) -> Any:
    return (
        (table.c.tenant_id == bindparam("tenant_id"))
        & (table.c.order_id == bindparam("order_id"))
        & (table.c.status == bindparam("status"))
    )


# One round trip before any write: the tenant's rules, whether this post is a replay, whether
# the order exists, and the catalog generation the cached catalog links must belong to. The
# one-row `dual` keeps the row when the tenant has no settings yet.
_DUAL = select(literal(1).label("one")).subquery("dual")
_CONTEXT = select(
    SETTINGS.c.tenant_id.label("settings_tenant_id"),
    *RULE_COLUMNS,
    select(_POSTS.c.body_hash).where(_post_key(_POSTS)).scalar_subquery().label("body_hash"),
    select(_POSTS.c.response).where(_post_key(_POSTS)).scalar_subquery().label("response"),
    select(_ORDERS.c.status)
    .where(_ORDERS.c.tenant_id == bindparam("tenant_id"))
    .where(_ORDERS.c.order_id == bindparam("order_id"))
    .scalar_subquery()
    .label("order_status"),
    select(_SYNC.c.catalog_seq)
    .where(_SYNC.c.name == STATE_KEY)
    .scalar_subquery()
    .label("catalog_seq"),
).select_from(_DUAL.outerjoin(SETTINGS, SETTINGS.c.tenant_id == bindparam("tenant_id")))
_POST_AFTER_LOCK = select(_POSTS.c.body_hash, _POSTS.c.response).where(_post_key(_POSTS))
_INSERT_POST = insert(_POSTS)
# (An UPDATE's bind names must differ from its columns' names.)
_SET_POST_RESPONSE = (
    update(_POSTS)
    .where(
        _POSTS.c.tenant_id == bindparam("key_tenant_id"),
        _POSTS.c.order_id == bindparam("key_order_id"),
        _POSTS.c.status == bindparam("key_status"),
    )
    .values(response=bindparam("new_response"))
)
_INSERT_LINES = insert(_LINES)
_DELETE_LINES = delete(_LINES).where(
    _LINES.c.tenant_id == bindparam("tenant_id"), _LINES.c.order_id == bindparam("order_id")
)
# (An UPDATE's bind names must differ from its columns' names.)
_REFUND_ALL_LINES = (
    update(_LINES)
    .where(
        _LINES.c.tenant_id == bindparam("key_tenant_id"),
        _LINES.c.order_id == bindparam("key_order_id"),
    )
    .values(refunded_quantity=_LINES.c.quantity, revenue=Decimal(0))
)
_INSERT_CLICKS = insert(_CLICKS)
_ORDER_CLICKS = select(_CLICKS.c.click_id).where(
    _CLICKS.c.tenant_id == bindparam("tenant_id"), _CLICKS.c.order_id == bindparam("order_id")
)

# INSERT … ON CONFLICT DO NOTHING RETURNING: a twin that got there first returns nothing.
# Written as text() because SQLAlchemy never caches the dialects' own insert() constructs
# (they would be compiled on every order); the syntax is the same on PostgreSQL and SQLite,
# and the typed binds keep the columns' conversions (timestamps, money, JSON).
_INSERT_NEW_ORDER = (
    text(
        f"INSERT INTO {_ORDERS.name} ({', '.join(c.name for c in _ORDERS.c)}) "
        f"VALUES ({', '.join(':' + c.name for c in _ORDERS.c)}) "
        "ON CONFLICT (tenant_id, order_id) DO NOTHING RETURNING order_id"
    )
    .bindparams(*(bindparam(c.name, type_=c.type) for c in _ORDERS.c))
    .columns(_ORDERS.c.order_id)
)


async def context_row(
    conn: AsyncConnection, tenant_id: str, order_id: str, status: str
) -> Row[Any]:
    params = {"tenant_id": tenant_id, "order_id": order_id, "status": status}
    return (await conn.execute(_CONTEXT, params)).one()


async def insert_new_order(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    """Insert the order; False if a concurrent post created it first."""
    return await conn.scalar(_INSERT_NEW_ORDER, values) is not None


async def insert_post(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(_INSERT_POST, values)


async def post_after_lock(
    conn: AsyncConnection, tenant_id: str, order_id: str, status: str
) -> Row[Any] | None:
    """The (body hash, response) of an accepted post of this status, if any."""
    params = {"tenant_id": tenant_id, "order_id": order_id, "status": status}
    return (await conn.execute(_POST_AFTER_LOCK, params)).first()


async def set_post_response(
    conn: AsyncConnection, tenant_id: str, order_id: str, status: str, body: dict[str, Any]
) -> None:
    await conn.execute(
        _SET_POST_RESPONSE,
        {
            "key_tenant_id": tenant_id,
            "key_order_id": order_id,
            "key_status": status,
            "new_response": body,
        },
    )


async def insert_lines(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await conn.execute(_INSERT_LINES, list(rows))


async def replace_lines(
    conn: AsyncConnection, tenant_id: str, order_id: str, rows: Sequence[dict[str, Any]]
) -> None:
    await conn.execute(_DELETE_LINES, {"tenant_id": tenant_id, "order_id": order_id})
    await conn.execute(_INSERT_LINES, list(rows))


async def refund_all_lines(conn: AsyncConnection, tenant_id: str, order_id: str) -> None:
    await conn.execute(_REFUND_ALL_LINES, {"key_tenant_id": tenant_id, "key_order_id": order_id})


async def add_clicks(
    conn: AsyncConnection, tenant_id: str, order_id: str, click_ids: Sequence[str], *, known: bool
) -> None:
    """Link the order to these click ids; ``known``: some may be linked already, skip those."""
    if not click_ids:
        return
    params = {"tenant_id": tenant_id, "order_id": order_id}
    if known:
        existing = set((await conn.execute(_ORDER_CLICKS, params)).scalars())
        click_ids = [click_id for click_id in click_ids if click_id not in existing]
    if click_ids:
        await conn.execute(_INSERT_CLICKS, [{**params, "click_id": c} for c in click_ids])


_ORDER_KEYS = select(_ORDERS.c.buyer_id, _ORDERS.c.user_id, _ORDERS.c.click_ids).where(
    _ORDERS.c.tenant_id == bindparam("tenant_id"), _ORDERS.c.order_id == bindparam("order_id")
)


async def order_keys(conn: AsyncConnection, tenant_id: str, order_id: str) -> list[str | None]:
    """The buyer, user and click ids an order is attributed by (empty for an unknown order)."""
    row = (await conn.execute(_ORDER_KEYS, {"tenant_id": tenant_id, "order_id": order_id})).first()
    if row is None:
        return []
    return [row.buyer_id, row.user_id, *(row.click_ids or [])]


async def lock_order(session: AsyncSession, tenant_id: str, order_id: str) -> Order | None:
    order: Order | None = await session.scalar(
        select(Order)
        .where(Order.tenant_id == tenant_id, Order.order_id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return order


async def get_order(session: AsyncSession, tenant_id: str, order_id: str) -> Order | None:
    return await session.get(Order, (tenant_id, order_id))


async def load_lines(session: AsyncSession, order: Order) -> list[OrderLine]:
    rows = await session.scalars(
        select(OrderLine)
        .where(OrderLine.tenant_id == order.tenant_id, OrderLine.order_id == order.order_id)
        .order_by(OrderLine.line_no)
    )
    return list(rows)


async def get_refund(session: AsyncSession, tenant_id: str, refund_id: str) -> Refund | None:
    return await session.get(Refund, (tenant_id, refund_id))


async def add_refund(session: AsyncSession, refund: Refund) -> bool:
    """Store a new refund; False if a concurrent post of the same refund id got there first."""
    try:
        async with session.begin_nested():
            session.add(refund)
            await session.flush()
    except IntegrityError:
        return False
    return True


async def refunds_of(session: AsyncSession, tenant_id: str, order_id: str) -> list[Refund]:
    rows = await session.scalars(
        select(Refund)
        .where(Refund.tenant_id == tenant_id, Refund.order_id == order_id)
        .order_by(Refund.occurred_at, Refund.refund_id)
    )
    return list(rows)


# --------------------------------------------------------------------------- on the driver
#
# A status post creating an order (the hot path) talks to the driver in its own terms, as event
# ingest does: one constant statement per dialect for each step, values as the driver takes
# them (PostgreSQL: datetimes, Decimals, arrays; SQLite: epoch microseconds, money as decimal
# text), JSON as text. PostgreSQL: one read (with the buyer's advisory locks), the buyer's
# touches, then one statement writing the order, its status post, lines, click links, credits
# and verdicts; SQLite: the same reads, then one statement per table.

_SETTINGS_NAMES = ", ".join(f"s.{column.name}" for column in RULE_COLUMNS)


def _probe_sql(pg: bool) -> str:
    def p(index: int) -> str:
        return f"${index}" if pg else f"?{index}"

    post = f"p.tenant_id = {p(1)} AND p.order_id = {p(2)} AND p.status = {p(3)}"
    response = "p.response::text" if pg else "p.response"
    lock = (
        ", (SELECT count(pg_advisory_xact_lock(k)) FROM "
        f"(SELECT unnest({p(5)}::bigint[]) AS k ORDER BY 1) AS ordered)"
        if pg
        else ""
    )
    settings = _SETTINGS_NAMES.replace(
        "s.fraud_rules", "s.fraud_rules::text" if pg else "s.fraud_rules"
    )
    return (
        f"SELECT s.tenant_id, {settings}, "
        f"(SELECT p.body_hash FROM {_POSTS.name} p WHERE {post}), "
        f"(SELECT {response} FROM {_POSTS.name} p WHERE {post}), "
        f"(SELECT o.status FROM {_ORDERS.name} o WHERE o.tenant_id = {p(1)} "
        f"AND o.order_id = {p(2)}), "
        f"(SELECT y.catalog_seq FROM {_SYNC.name} y WHERE y.name = {p(4)}){lock} "
        f"FROM (SELECT 1 AS one) AS dual LEFT JOIN {SETTINGS.name} s ON s.tenant_id = {p(1)}"
    )


_PG_PROBE = _probe_sql(pg=True)
_SQLITE_PROBE = _probe_sql(pg=False)


async def probe_on_driver(
    conn: AsyncConnection, tenant_id: str, order_id: str, status: str, lock_keys: list[int]
) -> tuple[Any, ...]:
    """(settings tenant id, the rule columns…, body hash, response JSON text, order status,
    catalog generation) in one statement; on PostgreSQL it also takes ``lock_keys``."""
    if conn.dialect.name == "postgresql":
        params: tuple[Any, ...] = (tenant_id, order_id, status, STATE_KEY, lock_keys)
        row = (await conn.exec_driver_sql(_PG_PROBE, params)).one()
        return tuple(row)[:-1]
    row = (
        await conn.exec_driver_sql(_SQLITE_PROBE, (tenant_id, order_id, status, STATE_KEY))
    ).one()
    return tuple(row)


_ORDER_COLUMNS = tuple(c.name for c in _ORDERS.c)
_POST_COLUMNS = tuple(c.name for c in _POSTS.c)
_LINE_COLUMNS = tuple(c.name for c in _LINES.c)
_CLICK_COLUMNS = tuple(c.name for c in _CLICKS.c)
_CREDIT_COLUMNS = tuple(c.name for c in _CREDITS.c)
_VERDICT_COLUMNS = tuple(c.name for c in _VERDICTS.c)
_KEY = ("tenant_id", "order_id")
#: PostgreSQL type of each column the new-order write sends (the key comes from the order).
_PG_TYPES = {
    "click_ids": "text::jsonb",
    "response": "text::jsonb",
    "ordered_at": "timestamptz",
    "paid_at": "timestamptz",
    "cancelled_at": "timestamptz",
    "attributed_at": "timestamptz",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "occurred_at": "timestamptz",
    "received_at": "timestamptz",
    "touch_at": "timestamptz",
    "gross_revenue": "numeric",
    "revenue": "numeric",
    "refunded": "numeric",
    "unit_price": "numeric",
    "amount": "numeric",
    "line_no": "int",
    "quantity": "int",
    "refunded_quantity": "int",
    "position": "int",
    "weight": "float8",
    "order_share": "float8",
}


def _pg_type(column: str) -> str:
    return _PG_TYPES.get(column, "text")


def _pg_new_order_sql() -> str:
    n = 0

    def bind(type_: str) -> str:
        nonlocal n
        n += 1
        return f"${n}::{type_}"

    values = ", ".join(bind(_pg_type(c)) for c in _ORDER_COLUMNS)
    parts = [
        f"WITH o AS (INSERT INTO {_ORDERS.name} ({', '.join(_ORDER_COLUMNS)}) VALUES ({values}) "
        "ON CONFLICT (tenant_id, order_id) DO NOTHING RETURNING tenant_id, order_id)"
    ]
    post_rest = [c for c in _POST_COLUMNS if c not in _KEY]
    parts.append(
        f"p AS (INSERT INTO {_POSTS.name} (tenant_id, order_id, {', '.join(post_rest)}) "
        f"SELECT o.tenant_id, o.order_id, {', '.join(bind(_pg_type(c)) for c in post_rest)} FROM o)"
    )
    # The rows of each table travel as one JSON array (asyncpg would check every element of
    # one array per column), read back into typed columns by the server.
    for alias, table, columns in (
        ("l", _LINES.name, _LINE_COLUMNS),
        ("k", _CLICKS.name, _CLICK_COLUMNS),
        ("c", _CREDITS.name, _CREDIT_COLUMNS),
        ("v", _VERDICTS.name, _VERDICT_COLUMNS),
    ):
        rest = [c for c in columns if c not in _KEY]
        typed = ", ".join(f"{c} {_pg_type(c).split('::')[0]}" for c in rest)
        parts.append(
            f"{alias} AS (INSERT INTO {table} (tenant_id, order_id, {', '.join(rest)}) "
            f"SELECT o.tenant_id, o.order_id, {', '.join('u.' + c for c in rest)} "
            f"FROM o, jsonb_to_recordset({bind('text')}::jsonb) AS u({typed}))"
        )
    return ", ".join(parts) + " SELECT count(*) FROM o"


_PG_NEW_ORDER = _pg_new_order_sql()


def _sqlite_insert(table: str, columns: Sequence[str], suffix: str = "") -> str:
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){suffix}"


_SQLITE_NEW_ORDER = _sqlite_insert(
    _ORDERS.name,
    _ORDER_COLUMNS,
    " ON CONFLICT (tenant_id, order_id) DO NOTHING RETURNING order_id",
)
_SQLITE_INSERTS = {
    name: _sqlite_insert(table.name, [c.name for c in table.c])
    for name, table in (
        ("posts", _POSTS),
        ("lines", _LINES),
        ("clicks", _CLICKS),
        ("credits", _CREDITS),
        ("verdicts", _VERDICTS),
    )
}
_TIMES = frozenset(
    {
        "ordered_at",
        "paid_at",
        "cancelled_at",
        "attributed_at",
        "created_at",
        "updated_at",
        "occurred_at",
        "received_at",
        "touch_at",
    }
)
_MONEY = frozenset({"gross_revenue", "revenue", "refunded", "unit_price", "amount"})
_JSON = frozenset({"click_ids", "response"})


def _sqlite_value(column: str, value: Any) -> Any:
    if value is not None and column in _TIMES:
        return to_epoch_us(value)
    if value is not None and column in _MONEY:
        return str(canonical_money(value))
    return _pg_value(column, value)


def _money_text(value: Any) -> str:
    """JSON for the one type orjson leaves to us: money, as its stored decimal text."""
    if isinstance(value, Decimal):
        return str(canonical_money(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _pg_value(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in _MONEY:
        return canonical_money(value)
    if column in _JSON:
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    return value


async def write_new_order(
    conn: AsyncConnection,
    order: dict[str, Any],
    post: dict[str, Any],
    lines: Sequence[dict[str, Any]],
    clicks: Sequence[dict[str, Any]],
    credits: Sequence[dict[str, Any]],
    verdicts: Sequence[dict[str, Any]],
) -> bool:
    """Write a new order and everything it comes with; False if a concurrent post created the
    order first (then nothing is written). Rows are dicts by column name."""
    if conn.dialect.name == "postgresql":
        params: list[Any] = [_pg_value(c, order[c]) for c in _ORDER_COLUMNS]
        params += [_pg_value(c, post[c]) for c in _POST_COLUMNS if c not in _KEY]
        params += (
            orjson.dumps(rows, default=_money_text).decode()
            for rows in (lines, clicks, credits, verdicts)
        )
        created = (await conn.exec_driver_sql(_PG_NEW_ORDER, tuple(params))).scalar()
        return bool(created)
    inserted = await conn.exec_driver_sql(
        _SQLITE_NEW_ORDER, tuple(_sqlite_value(c, order[c]) for c in _ORDER_COLUMNS)
    )
    if inserted.first() is None:
        return False
    await conn.exec_driver_sql(
        _SQLITE_INSERTS["posts"], tuple(_sqlite_value(c, post[c]) for c in _POST_COLUMNS)
    )
    for name, rows, columns in (
        ("lines", lines, _LINE_COLUMNS),
        ("clicks", clicks, _CLICK_COLUMNS),
        ("credits", credits, _CREDIT_COLUMNS),
        ("verdicts", verdicts, _VERDICT_COLUMNS),
    ):
        if rows:
            await conn.exec_driver_sql(
                _SQLITE_INSERTS[name],
                [tuple(_sqlite_value(c, row[c]) for c in columns) for row in rows],
            )
    return True
