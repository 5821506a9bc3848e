"""Order ingest: idempotent status posts, transitions, refunds, and the answers they give."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.attribution.engine import MODELS
from services.attribution.attribution.money import allocate
from services.attribution.attribution.service import (
    attribute_order,
    credit_view,
    stored_credits,
)
from services.attribution.core.metrics import ORDERS_RECEIVED
from services.attribution.events.models import Event
from services.attribution.orders.models import (
    Order,
    OrderClick,
    OrderLine,
    OrderStatusPost,
    Refund,
)
from services.attribution.orders.schemas import OrderIn, RefundIn
from services.attribution.settings.service import Rules, claim_currency
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
    session: AsyncSession, tenant_id: str, user_id: str | None, click_ids: Sequence[str]
) -> str | None:
    """The order's buyer: its user_id, else the user of the first known click among click_ids."""
    if user_id is not None or not click_ids:
        return user_id
    rows = await session.execute(
        select(Event.click_id, Event.user_id).where(
            Event.tenant_id == tenant_id,
            Event.type == "click",
            Event.click_id.in_(list(click_ids)),
        )
    )
    users: dict[str, str] = {str(click_id): str(user) for click_id, user in rows}
    for click_id in click_ids:
        if click_id in users:
            return users[click_id]
    return None


async def _replace_lines(session: AsyncSession, order: Order, payload: OrderIn) -> None:
    for line in await load_lines(session, order):
        await session.delete(line)
    await session.flush()
    for line_no, item in enumerate(payload.items):
        session.add(
            OrderLine(
                tenant_id=order.tenant_id,
                order_id=order.order_id,
                line_no=line_no,
                product_id=item.product_id,
                quantity=item.quantity,
                unit_price=item.unit_price,
                revenue=item.unit_price * item.quantity,
                refunded_quantity=0,
            )
        )
    order.gross_revenue = sum((i.unit_price * i.quantity for i in payload.items), ZERO)
    order.refunded = ZERO
    order.revenue = order.gross_revenue


async def _remember_clicks(session: AsyncSession, order: Order) -> None:
    existing = set(
        await session.scalars(
            select(OrderClick.click_id).where(
                OrderClick.tenant_id == order.tenant_id, OrderClick.order_id == order.order_id
            )
        )
    )
    for click_id in order.click_ids or []:
        if click_id not in existing:
            session.add(
                OrderClick(tenant_id=order.tenant_id, click_id=click_id, order_id=order.order_id)
            )
            existing.add(click_id)


async def answer_for(session: AsyncSession, order: Order, model: str) -> dict[str, Any]:
    credits = await stored_credits(session, order.tenant_id, order.order_id, model)
    return {
        "order_id": order.order_id,
        "status": order.status,
        "buyer_id": order.buyer_id,
        "revenue": order.revenue,
        "currency": order.currency,
        "model": model,
        "credits": [credit_view(c) for c in credits],
    }


def _jsonify(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(
        orjson.dumps(body, default=jsonable, option=orjson.OPT_PASSTHROUGH_DATETIME)
    )
    return result


async def ingest_order(
    session: AsyncSession, tenant_id: str, payload: OrderIn, rules: Rules
) -> Answer:
    """Apply one status post. Idempotent on (tenant, order_id, status)."""
    digest = body_hash(payload.model_dump(mode="json"))
    previous = await session.get(OrderStatusPost, (tenant_id, payload.order_id, payload.status))
    if previous is not None:
        return _replay(previous, digest, payload)

    # Only the tenant's first order takes the settings row lock (to set the currency).
    tenant_currency = rules.currency or await claim_currency(session, tenant_id, payload.currency)
    if tenant_currency != payload.currency:
        ORDERS_RECEIVED.labels(payload.status, "rejected").inc()
        raise _currency_error(payload.currency, tenant_currency)

    order = await _lock_order(session, tenant_id, payload.order_id)
    # A twin of this post may have committed while we waited for the locks above.
    previous = await session.get(
        OrderStatusPost, (tenant_id, payload.order_id, payload.status), populate_existing=True
    )
    if previous is not None:
        return _replay(previous, digest, payload)
    current = order.status if order is not None else None
    action = TRANSITIONS.get(current, {}).get(payload.status)
    if action is None:
        ORDERS_RECEIVED.labels(payload.status, "conflict").inc()
        raise Conflict(_transition_message(payload.order_id, current, payload.status))
    if order is not None and order.currency != payload.currency:
        ORDERS_RECEIVED.labels(payload.status, "rejected").inc()
        raise _currency_error(payload.currency, order.currency)

    # Claim the idempotency key first: a concurrent twin blocks here, then sees our row.
    post = OrderStatusPost(
        tenant_id=tenant_id,
        order_id=payload.order_id,
        status=payload.status,
        body_hash=digest,
        occurred_at=payload.occurred_at,
        response={},
    )
    try:
        async with session.begin_nested():
            session.add(post)
            await session.flush()
    except IntegrityError:
        twin = await session.get(
            OrderStatusPost, (tenant_id, payload.order_id, payload.status), populate_existing=True
        )
        if twin is None:
            raise
        return _replay(twin, digest, payload)

    if order is None:
        order = await _new_order(session, tenant_id, payload)
    if action == "apply":
        await _apply(session, order, payload, rules)
    order.updated_at = utcnow()
    await session.flush()
    body = _jsonify(await answer_for(session, order, rules.default_model))
    post.response = body
    await session.flush()
    ORDERS_RECEIVED.labels(payload.status, "accepted" if action == "apply" else "stale").inc()
    return Answer(201, body)


def _replay(previous: OrderStatusPost, digest: str, payload: OrderIn) -> Answer:
    if previous.body_hash != digest:
        ORDERS_RECEIVED.labels(payload.status, "conflict").inc()
        raise Conflict(
            f"Order {payload.order_id!r} was already posted with status {payload.status!r} and a "
            "different body; a retry must send the same body (use a new status or order_id)."
        )
    ORDERS_RECEIVED.labels(payload.status, "duplicate").inc()
    return Answer(200, previous.response)


def _transition_message(order_id: str, current: str | None, wanted: str) -> str:
    if current is None:
        return (
            f"Order {order_id!r} is unknown, so it cannot become {wanted!r}; post its "
            "`created` or `paid` status first."
        )
    allowed = ", ".join(sorted(TRANSITIONS.get(current, {}))) or "nothing"
    return f"Order {order_id!r} is {current!r} and cannot become {wanted!r} (allowed: {allowed})."


async def _new_order(session: AsyncSession, tenant_id: str, payload: OrderIn) -> Order:
    now = utcnow()
    order = Order(
        tenant_id=tenant_id,
        order_id=payload.order_id,
        status=payload.status,
        user_id=payload.user_id,
        buyer_id=None,
        click_ids=list(payload.click_ids or []),
        currency=payload.currency,
        gross_revenue=ZERO,
        revenue=ZERO,
        refunded=ZERO,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    await session.flush()
    return order


async def _apply(session: AsyncSession, order: Order, payload: OrderIn, rules: Rules) -> None:
    status = payload.status
    if status in ("created", "paid"):
        if payload.user_id is not None:
            order.user_id = payload.user_id
        if payload.click_ids:
            order.click_ids = list(dict.fromkeys([*(order.click_ids or []), *payload.click_ids]))
        order.buyer_id = await stitch_buyer(
            session, order.tenant_id, order.user_id, order.click_ids or []
        )
        await _replace_lines(session, order, payload)
        await _remember_clicks(session, order)
    if status == "created":
        order.status = "created"
        order.ordered_at = payload.occurred_at
        await session.flush()
        return
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
    await session.flush()
    await attribute_order(session, order, await load_lines(session, order), rules)


async def _refund_everything(session: AsyncSession, order: Order) -> None:
    for line in await load_lines(session, order):
        line.refunded_quantity = line.quantity
        line.revenue = ZERO
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
    credits = await stored_credits(session, tenant_id, order_id, model)
    return {
        "order_id": order_id,
        "model": model,
        "currency": order.currency,
        "revenue": order.revenue,
        "credits": [credit_view(c) for c in credits],
    }
