"""Order ingest: idempotent status posts, transitions and refunds, orchestrated.

A status post that creates an order (the common case: `paid` or `created` for an unknown
order) takes a fast path of plain Core statements: one probe (replay? order exists? catalog
generation), the buyer's touches, then the order, its status post, lines, click links and
credits written once each with their final values. Posts on existing orders lock the order
row and fold the change into it. SQL lives in ``repository``, the rules in ``lifecycle``.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.attribution.core.metrics import ATTRIBUTION_SECONDS, ORDERS_RECEIVED
from services.attribution.credit import engine
from services.attribution.credit.engine import MODELS
from services.attribution.credit.repository import (
    lock_touch_keys,
    stitch_buyer,
    stored_credits,
    stored_verdicts,
    touch_lock_keys,
)
from services.attribution.credit.service import (
    Attribution,
    attribute_order,
    compute_credits,
    credits_of_model,
    store_attribution,
)
from services.attribution.models import Order, Refund
from services.attribution.orders import repository
from services.attribution.orders.lifecycle import (
    TRANSITIONS,
    ZERO,
    currency_error,
    line_rows,
    take_refund,
    transition,
    transition_message,
)
from services.attribution.orders.replies import (
    Answer,
    body_hash,
    jsonify,
    order_answer,
    order_view,
    refund_view,
)
from services.attribution.orders.schemas import AttributionOut, OrderIn, OrderOut, RefundIn
from services.attribution.settings.repository import PLAIN_FIELDS
from services.attribution.settings.service import DEFAULTS, Rules, claim_currency, rules_from
from shared.db import utcnow
from shared.errors import Conflict, UnprocessableEntity, found

__all__ = ["Answer", "OrderContext", "body_hash", "ingest_order", "order_context", "post_refund"]


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
    row = await repository.context_row(
        await session.connection(),
        tenant_id,
        payload.order_id if payload is not None else "",
        payload.status if payload is not None else "",
    )
    return OrderContext(
        rules=DEFAULTS if row.settings_tenant_id is None else rules_from(row, secret),
        previous_hash=row.body_hash,
        previous_response=row.response,
        order_status=row.order_status,
        catalog_seq=row.catalog_seq,
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
        raise currency_error(payload.currency, tenant_currency)

    if context.order_status is None and transition(None, payload.status) is not None:
        conn = await session.connection()
        answer = await _ingest_new(conn, tenant_id, payload, rules, digest, context.catalog_seq)
        if answer is not None:
            return answer
        # A concurrent post created the order first (we waited for it): fold into it.
    return await _ingest_existing(session, tenant_id, payload, rules, digest)


# --------------------------------------------------------------------------- the hot path

#: The statuses a post may create an order with (see ``lifecycle.TRANSITIONS``).
CREATING = frozenset(status for status, action in TRANSITIONS[None].items() if action == "apply")


@functools.lru_cache(maxsize=1024)
def _rules_of(secret: str, columns: tuple[Any, ...]) -> Rules:
    """The tenant's ``Rules`` from the probe's setting columns (as the driver returns them);
    cached, as the columns only change with the settings."""
    names = ("currency", *PLAIN_FIELDS, "webhook_secret_encrypted", "fraud_rules")
    row = dict(zip(names, columns, strict=True))
    fraud = row["fraud_rules"]
    row["fraud_rules"] = orjson.loads(fraud) if isinstance(fraud, str | bytes) else fraud
    return rules_from(SimpleNamespace(**row), secret)


async def ingest_new_on_driver(
    session: AsyncSession,
    tenant_id: str,
    secret: str,
    payload: OrderIn,
    admit: Callable[[Rules], None],
) -> Answer | None:
    """A post that may create an order, on the driver: one probe (the tenant's rules, replay,
    existence, catalog generation; on PostgreSQL with the buyer's locks), the buyer's touches,
    then one write. ``admit`` checks the post against the rules (signature, clock) or raises.

    None, with the transaction rolled back, when the post is not a new order's (the order
    exists, the tenant has no currency yet, or a concurrent post created it first): the
    caller then takes the general path.
    """
    conn = await session.connection()
    click_ids = list(dict.fromkeys(payload.click_ids or []))
    pg = conn.dialect.name == "postgresql"
    keys = touch_lock_keys(tenant_id, [payload.user_id, *click_ids]) if pg else []
    probe = await repository.probe_on_driver(
        conn, tenant_id, payload.order_id, payload.status, keys
    )
    settings_tenant, settings = probe[0], probe[1:9]
    previous_hash, previous_response, order_status, catalog_seq = probe[9:13]
    rules = DEFAULTS if settings_tenant is None else _rules_of(secret, tuple(settings))
    admit(rules)
    digest = body_hash(payload.model_dump(mode="json"))
    if previous_hash is not None:
        response = (
            orjson.loads(previous_response)
            if isinstance(previous_response, str | bytes)
            else previous_response
        )
        return _replay(previous_hash, response, digest, payload)
    if order_status is not None or rules.currency is None:
        await session.rollback()
        return None
    if rules.currency != payload.currency:
        ORDERS_RECEIVED.labels(payload.status, "rejected").inc()
        raise currency_error(payload.currency, rules.currency)

    buyer_id = payload.user_id
    lines = line_rows(tenant_id, payload)
    gross = sum((row["revenue"] for row in lines), ZERO)
    paid_at = payload.occurred_at if payload.status == "paid" else None
    attribution = Attribution()
    started = time.perf_counter()
    attributed = paid_at is not None and gross > 0
    if attributed:
        assert paid_at is not None
        attribution = await _credit_new(
            conn, tenant_id, payload, buyer_id, click_ids, paid_at, lines, rules, catalog_seq, True
        )
    now = utcnow()
    body = _new_order_answer(payload, buyer_id, gross, rules, attribution)
    order = _new_order_row(tenant_id, payload, buyer_id, click_ids, gross, now, attributed)
    clicks = [
        {"tenant_id": tenant_id, "order_id": payload.order_id, "click_id": click_id}
        for click_id in click_ids
    ]
    created = await repository.write_new_order(
        conn,
        order,
        _post_row(tenant_id, payload, digest, now, body),
        lines,
        clicks,
        attribution.credits,
        attribution.verdicts,
    )
    if not created:
        await session.rollback()
        return None
    if attributed:
        ATTRIBUTION_SECONDS.observe(time.perf_counter() - started)
    ORDERS_RECEIVED.labels(payload.status, "accepted").inc()
    return Answer(201, body)


def _post_row(
    tenant_id: str,
    payload: OrderIn,
    digest: str,
    received_at: dt.datetime,
    response: dict[str, Any],
) -> dict[str, Any]:
    """A status post as kept for replays (``response`` is set once the post is applied)."""
    return {
        "tenant_id": tenant_id,
        "order_id": payload.order_id,
        "status": payload.status,
        "body_hash": digest,
        "occurred_at": payload.occurred_at,
        "received_at": received_at,
        "response": response,
    }


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


async def _credit_new(
    conn: AsyncConnection,
    tenant_id: str,
    payload: OrderIn,
    buyer_id: str | None,
    click_ids: list[str],
    paid_at: dt.datetime,
    lines: list[dict[str, Any]],
    rules: Rules,
    catalog_generation: int | None,
    on_driver: bool,
) -> Attribution:
    """The credits (every model) of an order its first post creates paid."""
    return await compute_credits(
        conn,
        tenant_id=tenant_id,
        order_id=payload.order_id,
        buyer_id=buyer_id,
        click_ids=click_ids,
        paid_at=paid_at,
        currency=payload.currency,
        lines=[engine.Line(row["product_id"], row["revenue"]) for row in lines],
        rules=rules,
        catalog_generation=catalog_generation,
        on_driver=on_driver,
    )


def _new_order_answer(
    payload: OrderIn, buyer_id: str | None, gross: Decimal, rules: Rules, attribution: Attribution
) -> dict[str, Any]:
    """The answer to the post that created an order: its default model's credits."""
    return order_answer(
        payload,
        buyer_id=buyer_id,
        revenue=gross,
        model=rules.default_model,
        credits=credits_of_model(attribution.credits, rules.default_model),
    )


def _new_order_row(
    tenant_id: str,
    payload: OrderIn,
    buyer_id: str | None,
    click_ids: list[str],
    gross: Decimal,
    now: dt.datetime,
    attributed: bool,
) -> dict[str, Any]:
    """The ``orders`` row of an order its first post creates, with its final values."""
    return {
        "tenant_id": tenant_id,
        "order_id": payload.order_id,
        "status": payload.status,
        "user_id": payload.user_id,
        "buyer_id": buyer_id,
        "click_ids": click_ids,
        "currency": payload.currency,
        "ordered_at": payload.occurred_at if payload.status == "created" else None,
        "paid_at": payload.occurred_at if payload.status == "paid" else None,
        "cancelled_at": None,
        "gross_revenue": gross,
        "revenue": gross,
        "refunded": ZERO,
        "attributed_at": now if attributed else None,
        "created_at": now,
        "updated_at": now,
    }


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
    await lock_touch_keys(conn, tenant_id, [payload.user_id, *click_ids])
    buyer_id = await stitch_buyer(conn, tenant_id, payload.user_id, click_ids)
    lines = line_rows(tenant_id, payload)
    gross = sum((row["revenue"] for row in lines), ZERO)
    paid_at = payload.occurred_at if payload.status == "paid" else None
    attribution = Attribution()
    attribution_seconds: float | None = None
    if paid_at is not None and gross > 0:
        started = time.perf_counter()
        attribution = await _credit_new(
            conn,
            tenant_id,
            payload,
            buyer_id,
            click_ids,
            paid_at,
            lines,
            rules,
            catalog_generation,
            False,
        )
        attribution_seconds = time.perf_counter() - started

    now = utcnow()
    created = await repository.insert_new_order(
        conn,
        _new_order_row(
            tenant_id, payload, buyer_id, click_ids, gross, now, attribution_seconds is not None
        ),
    )
    if not created:
        return None
    body = _new_order_answer(payload, buyer_id, gross, rules, attribution)
    await repository.insert_post(conn, _post_row(tenant_id, payload, digest, now, body))
    await repository.insert_lines(conn, lines)
    await repository.add_clicks(conn, tenant_id, payload.order_id, click_ids, known=False)
    if attribution_seconds is not None:
        started = time.perf_counter()
        await store_attribution(conn, attribution)
        ATTRIBUTION_SECONDS.observe(attribution_seconds + time.perf_counter() - started)
    ORDERS_RECEIVED.labels(payload.status, "accepted").inc()
    return Answer(201, body)


async def _ingest_existing(
    session: AsyncSession, tenant_id: str, payload: OrderIn, rules: Rules, digest: str
) -> Answer:
    """A post on an order that exists: lock it, then apply, record or refuse the post."""
    await _serialise_with_touches(
        session, tenant_id, payload.order_id, [payload.user_id, *(payload.click_ids or [])]
    )
    order = await repository.lock_order(session, tenant_id, payload.order_id)
    conn = await session.connection()
    # A twin of this post may have committed while we waited for the lock.
    previous = await repository.post_after_lock(conn, tenant_id, payload.order_id, payload.status)
    if previous is not None:
        return _replay(previous.body_hash, previous.response, digest, payload)
    current = order.status if order is not None else None
    action = transition(current, payload.status)
    if order is None or action is None:
        # (An unknown order reaches here only with a status that cannot create it.)
        ORDERS_RECEIVED.labels(payload.status, "conflict").inc()
        raise Conflict(transition_message(payload.order_id, current, payload.status))
    if order.currency != payload.currency:
        ORDERS_RECEIVED.labels(payload.status, "rejected").inc()
        raise currency_error(payload.currency, order.currency)

    # The locked order row serialises posts on this order, so the key cannot be taken now.
    await repository.insert_post(conn, _post_row(tenant_id, payload, digest, utcnow(), {}))
    if action == "apply":
        credits = credits_of_model(
            await _apply(session, order, payload, rules), rules.default_model
        )
    else:
        credits = await stored_credits(conn, tenant_id, payload.order_id, rules.default_model)
    order.updated_at = utcnow()
    await session.flush()
    body = order_answer(order, model=rules.default_model, credits=credits)
    await repository.set_post_response(conn, tenant_id, payload.order_id, payload.status, body)
    ORDERS_RECEIVED.labels(payload.status, "accepted" if action == "apply" else "stale").inc()
    return Answer(201, body)


async def _serialise_with_touches(
    session: AsyncSession, tenant_id: str, order_id: str, posted_keys: list[str | None]
) -> None:
    """Take the order's buyer and click locks (see lock_touch_keys) before its row lock.

    Always advisory locks first, then rows, in every transaction: the events ingest does the
    same, so the two can never wait on each other in opposite orders.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    known = await repository.order_keys(await session.connection(), tenant_id, order_id)
    await lock_touch_keys(await session.connection(), tenant_id, [*known, *posted_keys])


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
        await repository.add_clicks(
            conn, order.tenant_id, order.order_id, order.click_ids or [], known=True
        )
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
        await repository.refund_all_lines(conn, order.tenant_id, order.order_id)
        order.refunded = order.gross_revenue
        order.revenue = ZERO
        order.status = "refunded"
    # Cancelled and refunded orders carry no credits: attribute_order only clears them.
    return await attribute_order(session, order, lines, rules)


async def _replace_lines(
    conn: AsyncConnection, order: Order, payload: OrderIn
) -> list[engine.Line]:
    rows = line_rows(order.tenant_id, payload)
    await repository.replace_lines(conn, order.tenant_id, order.order_id, rows)
    order.gross_revenue = sum((row["revenue"] for row in rows), ZERO)
    order.refunded = ZERO
    order.revenue = order.gross_revenue
    return [engine.Line(row["product_id"], row["revenue"]) for row in rows]


# --------------------------------------------------------------------------- refunds


async def post_refund(
    session: AsyncSession, tenant_id: str, order_id: str, payload: RefundIn, rules: Rules
) -> Answer:
    digest = body_hash({"order_id": order_id, **payload.model_dump(mode="json")})
    previous = await repository.get_refund(session, tenant_id, payload.refund_id)
    if previous is not None:
        if previous.body_hash != digest:
            raise Conflict(
                f"Refund {payload.refund_id!r} was already posted with a different body; a "
                "retry must send the same body."
            )
        return Answer(200, previous.response)
    await _serialise_with_touches(session, tenant_id, order_id, [])
    order = found(await repository.lock_order(session, tenant_id, order_id), _no_order(order_id))
    if order.status != "paid" or order.paid_at is None:
        raise Conflict(
            f"Order {order_id!r} is {order.status!r}; only a paid order with revenue left can be "
            "refunded."
        )
    lines = await repository.load_lines(session, order)
    amount = take_refund(order.currency, order.revenue, lines, payload)
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
    if not await repository.add_refund(session, refund):
        raise Conflict(f"Refund {payload.refund_id!r} is being posted concurrently; retry it.")
    order.refunded = order.refunded + amount
    order.revenue = order.gross_revenue - order.refunded
    if order.revenue <= ZERO:
        order.revenue = ZERO
        order.status = "refunded"
    order.updated_at = utcnow()
    await session.flush()
    await attribute_order(session, order, lines, rules)
    body = jsonify(refund_view(refund, order))
    refund.response = body
    await session.flush()
    return Answer(201, body)


# --------------------------------------------------------------------------- reads


def _no_order(order_id: str) -> str:
    return f"No order {order_id!r} in this tenant."


async def get_order(session: AsyncSession, tenant_id: str, order_id: str) -> OrderOut:
    order = found(await repository.get_order(session, tenant_id, order_id), _no_order(order_id))
    lines = await repository.load_lines(session, order)
    refunds = await repository.refunds_of(session, tenant_id, order_id)
    return order_view(order, lines, refunds)


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
) -> AttributionOut:
    order = found(await repository.get_order(session, tenant_id, order_id), _no_order(order_id))
    conn = await session.connection()
    credits = await stored_credits(conn, tenant_id, order_id, model)
    verdicts = await stored_verdicts(conn, tenant_id, order_id)
    return AttributionOut.model_validate(
        {
            "order_id": order_id,
            "model": model,
            "currency": order.currency,
            "revenue": order.revenue,
            "credits": credits,
            "suspicious_touches": verdicts,
        }
    )
