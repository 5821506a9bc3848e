"""Order ingest: idempotent status posts, transitions, refunds, and the answers they give.

A status post that creates an order (the common case: `paid` or `created` for an unknown
order) takes a fast path of plain Core statements: one probe (replay? order exists? catalog
generation), the buyer's touches, then the order, its status post, lines, click links and
credits written once each with their final values. Posts on existing orders lock the order
row and fold the change into it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import orjson
from sqlalchemy import Table, bindparam, delete, insert, literal, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.attribution.catalog_sync.service import STATE_KEY
from services.attribution.core.metrics import ATTRIBUTION_SECONDS, ORDERS_RECEIVED
from services.attribution.credit import engine
from services.attribution.credit.engine import MODELS
from services.attribution.credit.money import allocate
from services.attribution.credit.service import (
    attribute_order,
    compute_credits,
    credits_of_model,
    insert_credits,
    stored_credits,
)
from services.attribution.models import (
    Event,
    Order,
    OrderClick,
    OrderLine,
    OrderStatusPost,
    Refund,
    SyncState,
    TenantSettings,
)
from services.attribution.orders.schemas import OrderIn, RefundIn
from services.attribution.settings.service import DEFAULTS, Rules, claim_currency, rules_from
from shared.currencies import minor_units
from shared.db import utcnow
from shared.errors import Conflict, NotFound, UnprocessableEntity
from shared.schemas import jsonable

ZERO = Decimal("0")

# What a status post may do given the order's current status. "stale" posts are recorded and
# answered but change nothing (a `created` that arrives after `paid`, say).
TRANSITIONS: dict[str | None, dict[str, str]] = {
    None: {"created": "apply", "paid": "apply"},
    "created": {"paid": "apply", "cancelled": "apply"},
    "paid": {"created": "stale", "cancelled": "apply", "refunded": "apply"},
    "cancelled": {"created": "stale"},
    "refunded": {"created": "stale"},
}

_ORDERS = cast(Table, Order.__table__)
_LINES = cast(Table, OrderLine.__table__)
_CLICKS = cast(Table, OrderClick.__table__)
_POSTS = cast(Table, OrderStatusPost.__table__)
_EVENTS = cast(Table, Event.__table__)
_SYNC = cast(Table, SyncState.__table__)
_SETTINGS = cast(Table, TenantSettings.__table__)


def _post_key(table: Any) -> Any:
    return (
        (table.c.tenant_id == bindparam("tenant_id"))
        & (table.c.order_id == bindparam("order_id"))
        & (table.c.status == bindparam("status"))
    )


_RULE_COLUMNS = (
    _SETTINGS.c.currency,
    _SETTINGS.c.timezone,
    _SETTINGS.c.click_window_seconds,
    _SETTINGS.c.view_window_seconds,
    _SETTINGS.c.match,
    _SETTINGS.c.default_model,
    _SETTINGS.c.webhook_secret_encrypted,
)
_RULES = select(*_RULE_COLUMNS).where(_SETTINGS.c.tenant_id == bindparam("tenant_id"))
# One round trip before any write: the tenant's rules, whether this post is a replay, whether
# the order exists, and the catalog generation the cached catalog links must belong to. The
# one-row `dual` keeps the row when the tenant has no settings yet.
_DUAL = select(literal(1).label("one")).subquery("dual")
_CONTEXT = select(
    _SETTINGS.c.tenant_id.label("settings_tenant_id"),
    *_RULE_COLUMNS,
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
).select_from(_DUAL.outerjoin(_SETTINGS, _SETTINGS.c.tenant_id == bindparam("tenant_id")))
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
_INSERT_CLICKS = insert(_CLICKS)
_ORDER_CLICKS = select(_CLICKS.c.click_id).where(
    _CLICKS.c.tenant_id == bindparam("tenant_id"), _CLICKS.c.order_id == bindparam("order_id")
)
_CLICK_USERS = select(_EVENTS.c.click_id, _EVENTS.c.user_id).where(
    _EVENTS.c.tenant_id == bindparam("tenant_id"),
    _EVENTS.c.type == "click",
    _EVENTS.c.click_id.in_(bindparam("click_ids", expanding=True)),
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


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict[str, Any]


def body_hash(payload: Any) -> str:
    """Hash of the canonical JSON, so key order and whitespace don't make a 'different body'."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _currency_error(given: str, tenant_currency: str) -> UnprocessableEntity:
    return UnprocessableEntity(
        f"This order is in {given} but the tenant reports in {tenant_currency}; convert it to "
        f"{tenant_currency} before posting (or change the tenant currency before its first order).",
        errors=[{"loc": ["body", "currency"], "msg": f"must be {tenant_currency}"}],
    )


async def _lock_order(session: AsyncSession, tenant_id: str, order_id: str) -> Order | None:
    order: Order | None = await session.scalar(
        select(Order)
        .where(Order.tenant_id == tenant_id, Order.order_id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return order


async def load_lines(session: AsyncSession, order: Order) -> list[OrderLine]:
    rows = await session.scalars(
        select(OrderLine)
        .where(OrderLine.tenant_id == order.tenant_id, OrderLine.order_id == order.order_id)
        .order_by(OrderLine.line_no)
    )
    return list(rows)


async def stitch_buyer(
    conn: AsyncConnection, tenant_id: str, user_id: str | None, click_ids: Sequence[str]
) -> str | None:
    """The order's buyer: its user_id, else the user of the first known click among click_ids."""
    if user_id is not None or not click_ids:
        return user_id
    rows = await conn.execute(_CLICK_USERS, {"tenant_id": tenant_id, "click_ids": list(click_ids)})
    users: dict[str, str] = {str(click_id): str(user) for click_id, user in rows}
    for click_id in click_ids:
        if click_id in users:
            return users[click_id]
    return None


async def order_rules(session: AsyncSession, tenant_id: str, secret: str) -> Rules:
    """The tenant's rules, as ``settings.service.load_rules`` gives them, in one Core read."""
    conn = await session.connection()
    row = (await conn.execute(_RULES, {"tenant_id": tenant_id})).first()
    return DEFAULTS if row is None else rules_from(row, secret)


@dataclass(frozen=True)
class OrderContext:
    """What a status post needs to know before it writes anything."""

    rules: Rules
    previous_hash: str | None  # of this (order, status) post, if one was accepted before
    previous_response: dict[str, Any] | None
    order_status: str | None  # None: no such order (yet)
    catalog_seq: int | None


async def order_context(
    session: AsyncSession, tenant_id: str, secret: str, payload: OrderIn | None
) -> OrderContext:
    """The tenant's rules and the posted order's state, in one statement.

    Without a payload (the body did not parse) only the rules are meaningful.
    """
    conn = await session.connection()
    row = (
        await conn.execute(
            _CONTEXT,
            {
                "tenant_id": tenant_id,
                "order_id": payload.order_id if payload is not None else "",
                "status": payload.status if payload is not None else "",
            },
        )
    ).one()
    return OrderContext(
        rules=DEFAULTS if row.settings_tenant_id is None else rules_from(row, secret),
        previous_hash=row.body_hash,
        previous_response=row.response,
        order_status=row.order_status,
        catalog_seq=row.catalog_seq,
    )


def _jsonify(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(
        orjson.dumps(body, default=jsonable, option=orjson.OPT_PASSTHROUGH_DATETIME)
    )
    return result


def _answer(
    *,
    order_id: str,
    status: str,
    buyer_id: str | None,
    revenue: Decimal,
    currency: str,
    model: str,
    credits: list[dict[str, Any]],
) -> dict[str, Any]:
    return _jsonify(
        {
            "order_id": order_id,
            "status": status,
            "buyer_id": buyer_id,
            "revenue": revenue,
            "currency": currency,
            "model": model,
            "credits": credits,
        }
    )


async def ingest_order(
    session: AsyncSession, tenant_id: str, payload: OrderIn, context: OrderContext
) -> Answer:
    """Apply one status post. Idempotent on (tenant, order_id, status)."""
    digest = body_hash(payload.model_dump(mode="json"))
    if context.previous_hash is not None:
        assert context.previous_response is not None
        return _replay(context.previous_hash, context.previous_response, digest, payload)

    rules = context.rules
    # Only the tenant's first order takes the settings row lock (to set the currency).
    tenant_currency = rules.currency or await claim_currency(session, tenant_id, payload.currency)
    if tenant_currency != payload.currency:
        ORDERS_RECEIVED.labels(payload.status, "rejected").inc()
        raise _currency_error(payload.currency, tenant_currency)

    if context.order_status is None and payload.status in TRANSITIONS[None]:
        conn = await session.connection()
        answer = await _ingest_new(conn, tenant_id, payload, rules, digest, context.catalog_seq)
        if answer is not None:
            return answer
        # A concurrent post created the order first (we waited for it): fold into it.
    return await _ingest_existing(session, tenant_id, payload, rules, digest)


def _replay(
    previous_hash: str, previous_response: dict[str, Any], digest: str, payload: OrderIn
) -> Answer:
    if previous_hash != digest:
        ORDERS_RECEIVED.labels(payload.status, "conflict").inc()
        raise Conflict(
            f"Order {payload.order_id!r} was already posted with status {payload.status!r} and a "
            "different body; a retry must send the same body (use a new status or order_id)."
        )
    ORDERS_RECEIVED.labels(payload.status, "duplicate").inc()
    return Answer(200, previous_response)


def _transition_message(order_id: str, current: str | None, wanted: str) -> str:
    if current is None:
        return (
            f"Order {order_id!r} is unknown, so it cannot become {wanted!r}; post its "
            "`created` or `paid` status first."
        )
    allowed = ", ".join(sorted(TRANSITIONS.get(current, {}))) or "nothing"
    return f"Order {order_id!r} is {current!r} and cannot become {wanted!r} (allowed: {allowed})."


def _line_rows(tenant_id: str, payload: OrderIn) -> list[dict[str, Any]]:
    return [
        {
            "tenant_id": tenant_id,
            "order_id": payload.order_id,
            "line_no": line_no,
            "product_id": item.product_id,
            "quantity": item.quantity,
            "unit_price": item.unit_price,
            "revenue": item.unit_price * item.quantity,
            "refunded_quantity": 0,
        }
        for line_no, item in enumerate(payload.items)
    ]


async def _ingest_new(
    conn: AsyncConnection,
    tenant_id: str,
    payload: OrderIn,
    rules: Rules,
    digest: str,
    catalog_generation: int | None,
) -> Answer | None:
    """Create the order with its final values; None if a concurrent post created it first.

    Everything is read and computed before the first write; then each table gets one
    statement (the order, its status post, its lines, its click links, its credits).
    """
    click_ids = list(dict.fromkeys(payload.click_ids or []))
    buyer_id = await stitch_buyer(conn, tenant_id, payload.user_id, click_ids)
    line_rows = _line_rows(tenant_id, payload)
    gross = sum((row["revenue"] for row in line_rows), ZERO)
    paid_at = payload.occurred_at if payload.status == "paid" else None
    credits: list[dict[str, Any]] = []
    attribution_seconds: float | None = None
    if paid_at is not None and gross > 0:
        started = time.perf_counter()
        credits = await compute_credits(
            conn,
            tenant_id=tenant_id,
            order_id=payload.order_id,
            buyer_id=buyer_id,
            click_ids=click_ids,
            paid_at=paid_at,
            currency=payload.currency,
            lines=[engine.Line(row["product_id"], row["revenue"]) for row in line_rows],
            rules=rules,
            catalog_generation=catalog_generation,
        )
        attribution_seconds = time.perf_counter() - started

    now = utcnow()
    created = await conn.scalar(
        _INSERT_NEW_ORDER,
        {
            "tenant_id": tenant_id,
            "order_id": payload.order_id,
            "status": payload.status,
            "user_id": payload.user_id,
            "buyer_id": buyer_id,
            "click_ids": click_ids,
            "currency": payload.currency,
            "ordered_at": payload.occurred_at if payload.status == "created" else None,
            "paid_at": paid_at,
            "cancelled_at": None,
            "gross_revenue": gross,
            "revenue": gross,
            "refunded": ZERO,
            "attributed_at": now if attribution_seconds is not None else None,
            "created_at": now,
            "updated_at": now,
        },
    )
    if created is None:
        return None
    body = _answer(
        order_id=payload.order_id,
        status=payload.status,
        buyer_id=buyer_id,
        revenue=gross,
        currency=payload.currency,
        model=rules.default_model,
        credits=credits_of_model(credits, rules.default_model),
    )
    await conn.execute(
        _INSERT_POST,
        {
            "tenant_id": tenant_id,
            "order_id": payload.order_id,
            "status": payload.status,
            "body_hash": digest,
            "occurred_at": payload.occurred_at,
            "received_at": now,
            "response": body,
        },
    )
    await conn.execute(_INSERT_LINES, line_rows)
    if click_ids:
        await conn.execute(
            _INSERT_CLICKS,
            [
                {"tenant_id": tenant_id, "click_id": click_id, "order_id": payload.order_id}
                for click_id in click_ids
            ],
        )
    if attribution_seconds is not None:
        started = time.perf_counter()
        await insert_credits(conn, credits)
        ATTRIBUTION_SECONDS.observe(attribution_seconds + time.perf_counter() - started)
    ORDERS_RECEIVED.labels(payload.status, "accepted").inc()
    return Answer(201, body)


async def _ingest_existing(
    session: AsyncSession, tenant_id: str, payload: OrderIn, rules: Rules, digest: str
) -> Answer:
    """A post on an order that exists: lock it, then apply, record or refuse the post."""
    order = await _lock_order(session, tenant_id, payload.order_id)
    conn = await session.connection()
    key = {"tenant_id": tenant_id, "order_id": payload.order_id, "status": payload.status}
    # A twin of this post may have committed while we waited for the lock.
    previous = (await conn.execute(_POST_AFTER_LOCK, key)).first()
    if previous is not None:
        return _replay(previous.body_hash, previous.response, digest, payload)
    current = order.status if order is not None else None
    action = TRANSITIONS.get(current, {}).get(payload.status)
    if order is None or action is None:
        # (An unknown order reaches here only with a status that cannot create it.)
        ORDERS_RECEIVED.labels(payload.status, "conflict").inc()
        raise Conflict(_transition_message(payload.order_id, current, payload.status))
    if order.currency != payload.currency:
        ORDERS_RECEIVED.labels(payload.status, "rejected").inc()
        raise _currency_error(payload.currency, order.currency)

    # The locked order row serialises posts on this order, so the key cannot be taken now.
    await conn.execute(
        _INSERT_POST,
        {
            **key,
            "body_hash": digest,
            "occurred_at": payload.occurred_at,
            "received_at": utcnow(),
            "response": {},
        },
    )
    if action == "apply":
        credits = credits_of_model(
            await _apply(session, order, payload, rules), rules.default_model
        )
    else:
        credits = await stored_credits(conn, tenant_id, payload.order_id, rules.default_model)
    order.updated_at = utcnow()
    await session.flush()
    body = _answer(
        order_id=order.order_id,
        status=order.status,
        buyer_id=order.buyer_id,
        revenue=order.revenue,
        currency=order.currency,
        model=rules.default_model,
        credits=credits,
    )
    await conn.execute(
        _SET_POST_RESPONSE,
        {
            "key_tenant_id": tenant_id,
            "key_order_id": payload.order_id,
            "key_status": payload.status,
            "new_response": body,
        },
    )
    ORDERS_RECEIVED.labels(payload.status, "accepted" if action == "apply" else "stale").inc()
    return Answer(201, body)


async def _apply(
    session: AsyncSession, order: Order, payload: OrderIn, rules: Rules
) -> list[dict[str, Any]]:
    """Fold a status post into an existing order; returns its new credits (every model)."""
    conn = await session.connection()
    status = payload.status
    lines: Sequence[engine.Line] = []
    if status in ("created", "paid"):
        if payload.user_id is not None:
            order.user_id = payload.user_id
        if payload.click_ids:
            order.click_ids = list(dict.fromkeys([*(order.click_ids or []), *payload.click_ids]))
        order.buyer_id = await stitch_buyer(
            conn, order.tenant_id, order.user_id, order.click_ids or []
        )
        lines = await _replace_lines(conn, order, payload)
        await _remember_clicks(conn, order)
    if status == "created":
        order.status = "created"
        order.ordered_at = payload.occurred_at
        return []
    if status == "paid":
        order.status = "paid"
        order.paid_at = payload.occurred_at
    elif status == "cancelled":
        order.status = "cancelled"
        order.cancelled_at = payload.occurred_at
        order.refunded = order.gross_revenue
        order.revenue = ZERO
    elif status == "refunded":
        await _refund_everything(session, order)
    # Cancelled and refunded orders carry no credits: attribute_order only clears them.
    return await attribute_order(session, order, lines, rules)


async def _replace_lines(
    conn: AsyncConnection, order: Order, payload: OrderIn
) -> list[engine.Line]:
    rows = _line_rows(order.tenant_id, payload)
    await conn.execute(_DELETE_LINES, {"tenant_id": order.tenant_id, "order_id": order.order_id})
    await conn.execute(_INSERT_LINES, rows)
    order.gross_revenue = sum((row["revenue"] for row in rows), ZERO)
    order.refunded = ZERO
    order.revenue = order.gross_revenue
    return [engine.Line(row["product_id"], row["revenue"]) for row in rows]


async def _remember_clicks(conn: AsyncConnection, order: Order) -> None:
    if not order.click_ids:
        return
    params = {"tenant_id": order.tenant_id, "order_id": order.order_id}
    existing = set((await conn.execute(_ORDER_CLICKS, params)).scalars())
    new = [click_id for click_id in order.click_ids if click_id not in existing]
    if new:
        await conn.execute(_INSERT_CLICKS, [{**params, "click_id": click_id} for click_id in new])


async def _refund_everything(session: AsyncSession, order: Order) -> None:
    conn = await session.connection()
    await conn.execute(
        update(_LINES)
        .where(_LINES.c.tenant_id == order.tenant_id, _LINES.c.order_id == order.order_id)
        .values(refunded_quantity=_LINES.c.quantity, revenue=ZERO)
    )
    order.refunded = order.gross_revenue
    order.revenue = ZERO
    order.status = "refunded"


# --------------------------------------------------------------------------- refunds


async def post_refund(
    session: AsyncSession, tenant_id: str, order_id: str, payload: RefundIn, rules: Rules
) -> Answer:
    digest = body_hash({"order_id": order_id, **payload.model_dump(mode="json")})
    previous = await session.get(Refund, (tenant_id, payload.refund_id))
    if previous is not None:
        if previous.body_hash != digest:
            raise Conflict(
                f"Refund {payload.refund_id!r} was already posted with a different body; a "
                "retry must send the same body."
            )
        return Answer(200, previous.response)
    order = await _lock_order(session, tenant_id, order_id)
    if order is None:
        raise NotFound(f"No order {order_id!r} in this tenant.")
    if order.status != "paid" or order.paid_at is None:
        raise Conflict(
            f"Order {order_id!r} is {order.status!r}; only a paid order with revenue left can be "
            "refunded."
        )
    lines = await load_lines(session, order)
    amount = _take_refund(order, lines, payload)
    refund = Refund(
        tenant_id=tenant_id,
        refund_id=payload.refund_id,
        order_id=order_id,
        occurred_at=payload.occurred_at,
        amount=amount,
        items=[i.model_dump() for i in payload.items] if payload.items else None,
        body_hash=digest,
        response={},
    )
    try:
        async with session.begin_nested():
            session.add(refund)
            await session.flush()
    except IntegrityError:
        raise Conflict(
            f"Refund {payload.refund_id!r} is being posted concurrently; retry it."
        ) from None
    order.refunded = order.refunded + amount
    order.revenue = order.gross_revenue - order.refunded
    if order.revenue <= ZERO:
        order.revenue = ZERO
        order.status = "refunded"
    order.updated_at = utcnow()
    await session.flush()
    await attribute_order(session, order, lines, rules)
    body = _jsonify(refund_view(refund, order))
    refund.response = body
    await session.flush()
    return Answer(201, body)


def _take_refund(order: Order, lines: list[OrderLine], payload: RefundIn) -> Decimal:
    """Reduce the lines' revenue by the refund and return the refunded amount."""
    if payload.items is not None:
        total = ZERO
        for index, item in enumerate(payload.items):
            remaining = item.quantity
            for line in lines:
                if line.product_id != item.product_id or remaining == 0:
                    continue
                take = min(remaining, line.quantity - line.refunded_quantity)
                if take <= 0:
                    continue
                value = min(line.unit_price * take, line.revenue)
                line.refunded_quantity += take
                line.revenue -= value
                total += value
                remaining -= take
            if remaining:
                raise UnprocessableEntity(
                    f"Cannot refund {item.quantity} × {item.product_id!r}: the order has fewer "
                    "of it left to refund.",
                    errors=[{"loc": ["body", "items", index, "quantity"], "msg": "too many"}],
                )
        return total
    assert payload.amount is not None
    amount = payload.amount
    exponent = minor_units(order.currency)
    if amount != amount.quantize(Decimal(1).scaleb(-exponent)):
        raise UnprocessableEntity(
            f"amount has more decimals than {order.currency} allows ({exponent}).",
            errors=[{"loc": ["body", "amount"], "msg": "too many decimal places"}],
        )
    if amount > order.revenue:
        raise UnprocessableEntity(
            f"Cannot refund {amount} {order.currency}: only {order.revenue} is left on the order.",
            errors=[{"loc": ["body", "amount"], "msg": "exceeds the order's remaining revenue"}],
        )
    # Spread the amount over the lines in proportion to what is left on each.
    scale = 10**exponent
    shares = [int(line.revenue * scale) for line in lines]
    for line, part in zip(lines, allocate(amount, shares, order.currency), strict=True):
        line.revenue -= part
    return amount


def refund_view(refund: Refund, order: Order) -> dict[str, Any]:
    return {
        "refund_id": refund.refund_id,
        "order_id": refund.order_id,
        "occurred_at": refund.occurred_at,
        "amount": refund.amount,
        "items": refund.items,
        "currency": order.currency,
        "order_revenue": order.revenue,
        "order_status": order.status,
    }


# --------------------------------------------------------------------------- reads


async def get_order(session: AsyncSession, tenant_id: str, order_id: str) -> dict[str, Any]:
    order = await session.get(Order, (tenant_id, order_id))
    if order is None:
        raise NotFound(f"No order {order_id!r} in this tenant.")
    lines = await load_lines(session, order)
    refunds = await session.scalars(
        select(Refund)
        .where(Refund.tenant_id == tenant_id, Refund.order_id == order_id)
        .order_by(Refund.occurred_at, Refund.refund_id)
    )
    return {
        "order_id": order.order_id,
        "status": order.status,
        "buyer_id": order.buyer_id,
        "user_id": order.user_id,
        "click_ids": order.click_ids or [],
        "currency": order.currency,
        "ordered_at": order.ordered_at,
        "paid_at": order.paid_at,
        "cancelled_at": order.cancelled_at,
        "gross_revenue": order.gross_revenue,
        "refunded": order.refunded,
        "revenue": order.revenue,
        "lines": [
            {
                "product_id": line.product_id,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "refunded_quantity": line.refunded_quantity,
                "revenue": line.revenue,
            }
            for line in lines
        ],
        "refunds": [refund_view(r, order) for r in refunds],
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def check_model(model: str | None, rules: Rules) -> str:
    chosen = model or rules.default_model
    if chosen not in MODELS:
        raise UnprocessableEntity(
            f"Unknown attribution model {chosen!r}; allowed: {', '.join(MODELS)}.",
            errors=[{"loc": ["query", "model"], "msg": f"must be one of {', '.join(MODELS)}"}],
        )
    return chosen


async def get_attribution(
    session: AsyncSession, tenant_id: str, order_id: str, model: str
) -> dict[str, Any]:
    order = await session.get(Order, (tenant_id, order_id))
    if order is None:
        raise NotFound(f"No order {order_id!r} in this tenant.")
    credits = await stored_credits(await session.connection(), tenant_id, order_id, model)
    return {
        "order_id": order_id,
        "model": model,
        "currency": order.currency,
        "revenue": order.revenue,
        "credits": credits,
    }
