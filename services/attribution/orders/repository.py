"""Order storage: every SQL statement of the orders domain.

Status posts that create an order are the hot path: Core statements built once at import
(SQLAlchemy memoises their cache keys) on the session's connection, no ORM objects. Posts
on existing orders and refunds work on the locked ORM row.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, delete, insert, literal, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.attribution.catalog_sync.service import STATE_KEY
from services.attribution.models import (
    Order,
    OrderClick,
    OrderLine,
    OrderStatusPost,
    Refund,
    SyncState,
)
from services.attribution.settings.repository import RULE_COLUMNS, SETTINGS

_ORDERS = cast(Table, Order.__table__)
_LINES = cast(Table, OrderLine.__table__)
_CLICKS = cast(Table, OrderClick.__table__)
_POSTS = cast(Table, OrderStatusPost.__table__)
_SYNC = cast(Table, SyncState.__table__)


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
