"""What the orders endpoints answer: stored replies of status posts, order and refund views."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from services.attribution.models import Order, OrderLine, Refund
from services.attribution.orders.schemas import LineOut, OrderOut, RefundOut
from shared.schemas import from_row, jsonable


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


# What a status post answers about its order, besides the model and the credits.
ANSWER_FIELDS = ("order_id", "status", "buyer_id", "revenue", "currency")


def order_answer(
    order: object, *, model: str, credits: list[dict[str, Any]], **values: Any
) -> dict[str, Any]:
    """A status post's reply: ``ANSWER_FIELDS`` from ``order`` (``values`` replace any)."""
    facts = {
        name: values[name] if name in values else getattr(order, name) for name in ANSWER_FIELDS
    }
    return jsonify({**facts, "model": model, "credits": credits})


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
    return from_row(
        OrderOut,
        order,
        click_ids=order.click_ids or [],
        lines=[from_row(LineOut, line) for line in lines],
        refunds=[RefundOut.model_validate(refund_view(r, order)) for r in refunds],
    )
