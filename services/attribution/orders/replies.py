"""What the orders endpoints answer: stored replies of status posts, order and refund views."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from services.attribution.models import Order, OrderLine, Refund
from services.attribution.orders.schemas import LineOut, OrderOut, RefundOut
from shared.schemas import jsonable


@dataclass(frozen=True)
class Answer:
    """A status post's or refund's reply: its JSON body is stored and replayed verbatim."""

    status_code: int
    body: dict[str, Any]


def body_hash(payload: Any) -> str:
    """Hash of the canonical JSON, so key order and whitespace don't make a 'different body'."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def jsonify(body: dict[str, Any]) -> dict[str, Any]:
    """The body as it goes on the wire (money as strings, times as UTC ISO-8601)."""
    result: dict[str, Any] = orjson.loads(
        orjson.dumps(body, default=jsonable, option=orjson.OPT_PASSTHROUGH_DATETIME)
    )
    return result


def order_answer(
    *,
    order_id: str,
    status: str,
    buyer_id: str | None,
    revenue: Decimal,
    currency: str,
    model: str,
    credits: list[dict[str, Any]],
) -> dict[str, Any]:
    return jsonify(
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


def order_view(order: Order, lines: Sequence[OrderLine], refunds: Sequence[Refund]) -> OrderOut:
    return OrderOut(
        order_id=order.order_id,
        status=order.status,
        buyer_id=order.buyer_id,
        user_id=order.user_id,
        click_ids=order.click_ids or [],
        currency=order.currency,
        ordered_at=order.ordered_at,
        paid_at=order.paid_at,
        cancelled_at=order.cancelled_at,
        gross_revenue=order.gross_revenue,
        refunded=order.refunded,
        revenue=order.revenue,
        lines=[
            LineOut(
                product_id=line.product_id,
                quantity=line.quantity,
                unit_price=line.unit_price,
                refunded_quantity=line.refunded_quantity,
                revenue=line.revenue,
            )
            for line in lines
        ],
        refunds=[RefundOut.model_validate(refund_view(r, order)) for r in refunds],
        created_at=order.created_at,
        updated_at=order.updated_at,
    )
