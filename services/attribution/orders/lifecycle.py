"""An order's lifecycle, pure: which status posts apply, line rows, how a refund is taken."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from services.attribution.credit.money import allocate
from services.attribution.models import OrderLine
from services.attribution.orders.schemas import OrderIn, RefundIn
from shared.currencies import minor_units
from shared.errors import UnprocessableEntity

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


def transition(current: str | None, wanted: str) -> str | None:
    """ "apply", "stale", or None when ``wanted`` cannot follow ``current``."""
    return TRANSITIONS.get(current, {}).get(wanted)


def transition_message(order_id: str, current: str | None, wanted: str) -> str:
    if current is None:
        return (
            f"Order {order_id!r} is unknown, so it cannot become {wanted!r}; post its "
            "`created` or `paid` status first."
        )
    allowed = ", ".join(sorted(TRANSITIONS.get(current, {}))) or "nothing"
    return f"Order {order_id!r} is {current!r} and cannot become {wanted!r} (allowed: {allowed})."


def currency_error(given: str, tenant_currency: str) -> UnprocessableEntity:
    return UnprocessableEntity(
        f"This order is in {given} but the tenant reports in {tenant_currency}; convert it to "
        f"{tenant_currency} before posting (or change the tenant currency before its first order).",
        errors=[{"loc": ["body", "currency"], "msg": f"must be {tenant_currency}"}],
    )


def check_not_ahead(occurred_at: dt.datetime, *, now: dt.datetime, max_future_seconds: int) -> None:
    """Shops' clocks may run a little fast, not years: the same bound events have."""
    ahead = (occurred_at - now).total_seconds()
    if ahead > max_future_seconds:
        raise UnprocessableEntity(
            f"`occurred_at` is {ahead:.0f} s in the future; at most {max_future_seconds} s of "
            "clock skew is accepted. Send the time the shop recorded this status, in UTC or "
            "with its offset.",
            errors=[{"loc": ["body", "occurred_at"], "msg": "too far in the future"}],
        )


def line_rows(tenant_id: str, payload: OrderIn) -> list[dict[str, Any]]:
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


def take_refund(
    currency: str, revenue_left: Decimal, lines: Sequence[OrderLine], payload: RefundIn
) -> Decimal:
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
    exponent = minor_units(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-exponent)):
        raise UnprocessableEntity(
            f"amount has more decimals than {currency} allows ({exponent}).",
            errors=[{"loc": ["body", "amount"], "msg": "too many decimal places"}],
        )
    if amount > revenue_left:
        raise UnprocessableEntity(
            f"Cannot refund {amount} {currency}: only {revenue_left} is left on the order.",
            errors=[{"loc": ["body", "amount"], "msg": "exceeds the order's remaining revenue"}],
        )
    # Spread the amount over the lines in proportion to what is left on each.
    scale = 10**exponent
    shares = [int(line.revenue * scale) for line in lines]
    for line, part in zip(lines, allocate(amount, shares, currency), strict=True):
        line.revenue -= part
    return amount
