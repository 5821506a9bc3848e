"""Shop bodies → ClipFunnel orders and refunds, pure.

A delivery maps to at most one order status post and any number of refunds. Order ids are
``<integration_id>:<shop order id>`` strings (Shopify ids exceed 2^53), refund ids likewise.

Buyer: SHA-256 of the shop's customer id; a guest's normalised (trimmed, lower-case) email;
neither: an id unique to the order, so it stays organic unless a click id is present.
Products: a line names the shop's variant, product and SKU; ``resolve`` turns them into the
catalog product whose ``external_ids`` carry them (variant first, then product, then SKU), or
else keeps the shop's product id, listed as unmatched while the catalog does not know it.
Click ids are read from the landing URL's ``cf_click_id``, ``cf_click`` and ``ttclid``
query parameters (Shopify ``landing_site``, WooCommerce ``_wc_order_attribution_session_entry``
meta), and from Shopify ``note_attributes`` / WooCommerce meta with those names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from services.attribution.orders.schemas import OrderIn, RefundIn

CLICK_PARAMS = ("cf_click_id", "cf_click", "ttclid")
WOO_SESSION_ENTRY = "_wc_order_attribution_session_entry"
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
ZERO = Decimal(0)
UNIT = Decimal("0.0001")  # stored money has four decimals


class MappingError(ValueError):
    """The body cannot become an order: the delivery is kept as a failure with this reason."""


@dataclass(frozen=True)
class Mapped:
    order_id: str | None
    order: OrderIn | None = None
    refunds: list[RefundIn] = field(default_factory=list)
    ignored: str | None = None  # why nothing is done, for a topic or status not tracked


@dataclass(frozen=True)
class ShopProduct:
    """What a shop line says about its product; ids as strings, None when absent."""

    platform: str
    variant: str | None
    product: str | None
    sku: str | None

    def match_keys(self) -> list[tuple[str, str]]:
        """(external id kind, value) in the order a line is matched by."""
        pairs = (
            (f"{self.platform}_variant", self.variant),
            (f"{self.platform}_product", self.product),
            ("sku", self.sku),
        )
        return [(kind, value) for kind, value in pairs if value]

    def shop_id(self) -> str | None:
        return self.product or self.variant or self.sku


Resolver = Callable[[ShopProduct], str | None]


def unresolved(product: ShopProduct) -> str | None:
    """The shop's own id, for a catalog that has no external ids."""
    return product.shop_id()


def _opt_id(value: Any) -> str | None:
    if value in (None, 0, "0", "") or isinstance(value, bool):
        return None
    return str(value) if isinstance(value, (int, str)) else None


def shop_product(platform: str, line: Any, variant_field: str) -> ShopProduct:
    line = line if isinstance(line, dict) else {}
    return ShopProduct(
        platform,
        _opt_id(line.get(variant_field)),
        _opt_id(line.get("product_id")),
        _opt_id(line.get("sku")),
    )


# --------------------------------------------------------------------------- helpers


def money(value: Any, what: str) -> Decimal:
    """Shops send money as strings or JSON numbers; both become exact Decimals."""
    if isinstance(value, bool) or value is None:
        raise MappingError(f"{what} is missing")
    try:
        # str() first: a float becomes its shortest repr ("699.95"), not its binary value.
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise MappingError(f"{what} is not a number: {value!r}") from exc
    if not amount.is_finite():
        raise MappingError(f"{what} is not a finite number: {value!r}")
    return amount


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _time(value: Any, what: str, *, naive_is_utc: bool = False) -> dt.datetime:
    if not isinstance(value, str) or not value:
        raise MappingError(f"{what} is missing")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MappingError(f"{what} is not an ISO-8601 time: {value!r}") from exc
    if parsed.tzinfo is None:
        if not naive_is_utc:
            raise MappingError(f"{what} has no UTC offset: {value!r}")
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _shop_id(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value) == "":
        raise MappingError(f"{what} is missing")
    return str(value)


def click_ids_of_url(url: Any) -> list[str]:
    if not isinstance(url, str) or not url:
        return []
    query = urlsplit(url).query
    return [v for k, v in parse_qsl(query) if k in CLICK_PARAMS and _ID.match(v)]


def _named(pairs: Any, name_key: str, value_key: str) -> list[str]:
    if not isinstance(pairs, list):
        return []
    return [
        str(p[value_key])
        for p in pairs
        if isinstance(p, dict)
        and p.get(name_key) in CLICK_PARAMS
        and isinstance(p.get(value_key), str)
        and _ID.match(p[value_key])
    ]


def buyer(customer_id: Any, email: Any, fallback: str) -> str:
    if customer_id not in (None, 0, "0", "") and not isinstance(customer_id, bool):
        return _hash(str(customer_id))
    if isinstance(email, str) and email.strip():
        return _hash(email.strip().lower())
    return _hash(f"order:{fallback}")


def items_of(lines: list[tuple[str, int, Decimal]]) -> list[dict[str, Any]]:
    """(product, quantity, net revenue) lines → order items whose sum is exactly the revenue.

    A net revenue that does not divide into four-decimal unit prices is split into one item
    of (quantity − 1) units and one carrying the remainder.
    """
    items: list[dict[str, Any]] = []
    for product_id, quantity, net in lines:
        if quantity <= 0:
            continue
        if net < 0:
            raise MappingError(f"line of product {product_id} has a negative total ({net})")
        unit = (net / quantity).quantize(UNIT, rounding="ROUND_DOWN")
        if unit * quantity == net or quantity == 1:
            items.append(
                {"product_id": product_id, "quantity": quantity, "unit_price": net / quantity}
            )
            continue
        items.append({"product_id": product_id, "quantity": quantity - 1, "unit_price": unit})
        items.append(
            {"product_id": product_id, "quantity": 1, "unit_price": net - unit * (quantity - 1)}
        )
    if not items:
        raise MappingError("the order has no line with a quantity")
    return items


def _order(
    order_id: str,
    status: str,
    occurred_at: dt.datetime,
    user_id: str,
    click_ids: list[str],
    currency: str,
    items: list[dict[str, Any]],
) -> OrderIn:
    try:
        return OrderIn.model_validate(
            {
                "order_id": order_id,
                "status": status,
                "occurred_at": occurred_at,
                "user_id": user_id,
                "click_ids": list(dict.fromkeys(click_ids))[:50] or None,
                "currency": currency,
                "items": items,
            }
        )
    except ValueError as exc:
        raise MappingError(f"the order does not fit ClipFunnel's order format: {exc}") from exc


def _refund(refund_id: str, occurred_at: dt.datetime, **rest: Any) -> RefundIn:
    try:
        return RefundIn.model_validate({"refund_id": refund_id, "occurred_at": occurred_at, **rest})
    except ValueError as exc:
        raise MappingError(f"the refund does not fit ClipFunnel's refund format: {exc}") from exc


def _currency(body: dict[str, Any], configured: str | None) -> str:
    currency = body.get("currency")
    if not isinstance(currency, str):
        raise MappingError("the shop currency (`currency`) is missing")
    if configured is not None and currency != configured:
        raise MappingError(
            f"the order is in {currency} but this integration is set to {configured}; fix the "
            "integration's currency or the shop's"
        )
    return currency


# --------------------------------------------------------------------------- Shopify


class Delivery(NamedTuple):
    """One shop webhook to map: the integration it came to, its topic, its JSON body, and the
    integration's currency (None: the body's own)."""

    integration_id: str
    topic: str
    body: dict[str, Any]
    currency: str | None


SHOPIFY_STATUS = {
    "orders/create": "created",
    "orders/paid": "paid",
    "orders/cancelled": "cancelled",
}


def shopify(delivery: Delivery, resolve: Resolver = unresolved) -> Mapped:
    integration_id, topic, body, currency = delivery
    if topic == "refunds/create":
        order_id = f"{integration_id}:{_shop_id(body.get('order_id'), 'order_id')}"
        refund = shopify_refund(integration_id, body, resolve)
        if refund is None:
            return Mapped(order_id, ignored="the refund returns no product line (shipping only)")
        return Mapped(order_id, refunds=[refund])
    if topic not in (*SHOPIFY_STATUS, "orders/updated"):
        return Mapped(None, ignored=f"topic {topic!r} is not tracked")
    shop_order = _shop_id(body.get("id"), "id")
    order_id = f"{integration_id}:{shop_order}"
    if topic == "orders/updated":
        # Refunds arrive embedded here when no refunds/create was subscribed.
        if body.get("financial_status") not in ("refunded", "partially_refunded"):
            return Mapped(order_id, ignored="an update that is neither a payment nor a refund")
        refunds = [
            r
            for r in (
                shopify_refund(integration_id, raw, resolve, body.get("line_items"))
                for raw in body.get("refunds") or []
            )
            if r is not None
        ]
        return Mapped(order_id, refunds=refunds)

    status = SHOPIFY_STATUS[topic]
    when_field = {"created": "created_at", "paid": "processed_at", "cancelled": "cancelled_at"}
    occurred_at = _time(body.get(when_field[status]) or body.get("updated_at"), when_field[status])
    lines: list[tuple[str, int, Decimal]] = []
    for index, line in enumerate(body.get("line_items") or []):
        what = f"line_items[{index}]"
        quantity = int(line.get("quantity") or 0)
        gross = money(line.get("price"), f"{what}.price") * quantity
        allocations = line.get("discount_allocations") or []
        discount = (
            sum((money(a.get("amount"), f"{what} discount") for a in allocations), ZERO)
            if allocations
            else money(line.get("total_discount") or 0, f"{what}.total_discount")
        )
        product = resolve(shop_product("shopify", line, "variant_id"))
        lines.append((_shop_id(product, f"{what}.product_id"), quantity, gross - discount))
    customer = body.get("customer") or {}
    click_ids = [
        *click_ids_of_url(body.get("landing_site")),
        *_named(body.get("note_attributes"), "name", "value"),
    ]
    return Mapped(
        order_id,
        order=_order(
            order_id,
            status,
            occurred_at,
            buyer(customer.get("id"), body.get("email") or body.get("contact_email"), order_id),
            click_ids,
            _currency(body, currency),
            items_of(lines),
        ),
    )


def shopify_refund(
    integration_id: str,
    body: dict[str, Any],
    resolve: Resolver = unresolved,
    order_lines: list[Any] | None = None,
) -> RefundIn | None:
    """The refunded product lines by quantity; shipping adjustments move no product revenue.

    A refund line names its order line by ``line_item_id`` and carries it as ``line_item``;
    when it does not, the order's ``line_items`` (of an ``orders/updated`` body) are looked up.
    """
    by_id = {str(line.get("id")): line for line in order_lines or [] if isinstance(line, dict)}
    quantities: dict[str, int] = {}
    for index, line in enumerate(body.get("refund_line_items") or []):
        quantity = int(line.get("quantity") or 0)
        if quantity <= 0:
            continue
        item = line.get("line_item") or by_id.get(str(line.get("line_item_id")))
        product = resolve(shop_product("shopify", item, "variant_id"))
        if not product:
            raise MappingError(
                f"refund_line_items[{index}] (line item {line.get('line_item_id')}) names no "
                "product: neither its `line_item` nor the order's lines say which"
            )
        quantities[str(product)] = quantities.get(str(product), 0) + quantity
    if not quantities:
        return None
    refund_id = f"{integration_id}:{_shop_id(body.get('id'), 'refund id')}"
    occurred_at = _time(body.get("processed_at") or body.get("created_at"), "processed_at")
    items = [{"product_id": p, "quantity": q} for p, q in quantities.items()]
    return _refund(refund_id, occurred_at, items=items)


# --------------------------------------------------------------------------- WooCommerce

WOO_STATUS = {
    "pending": "created",
    "on-hold": "created",
    "processing": "paid",
    "completed": "paid",
    "cancelled": "cancelled",
    "failed": "cancelled",
}


def woocommerce(delivery: Delivery, resolve: Resolver = unresolved) -> Mapped:
    integration_id, topic, body, currency = delivery
    if topic not in ("order.created", "order.updated"):
        return Mapped(None, ignored=f"topic {topic!r} is not tracked")
    order_id = f"{integration_id}:{_shop_id(body.get('id'), 'id')}"
    modified = _time(body.get("date_modified_gmt"), "date_modified_gmt", naive_is_utc=True)
    shop_currency = _currency(body, currency)
    refunds = [
        _refund(
            f"{integration_id}:{_shop_id(r.get('id'), 'refunds[].id')}",
            modified,
            # WooCommerce lists refunds as negative totals.
            amount=abs(money(r.get("total"), f"refunds[{i}].total")),
        )
        for i, r in enumerate(body.get("refunds") or [])
    ]
    status = WOO_STATUS.get(str(body.get("status")))
    if status is None:
        if refunds:
            return Mapped(order_id, refunds=refunds)
        return Mapped(order_id, ignored=f"order status {body.get('status')!r} is not tracked")
    when = body.get("date_paid_gmt") if status == "paid" else None
    occurred_at = _time(when, "date_paid_gmt", naive_is_utc=True) if when else modified
    lines = [
        (
            _shop_id(
                resolve(shop_product("woocommerce", line, "variation_id")),
                f"line_items[{i}].product_id",
            ),
            int(line.get("quantity") or 0),
            money(line.get("total"), f"line_items[{i}].total"),
        )
        for i, line in enumerate(body.get("line_items") or [])
    ]
    meta = body.get("meta_data") or []
    entries = [
        m.get("value") for m in meta if isinstance(m, dict) and m.get("key") == WOO_SESSION_ENTRY
    ]
    click_ids = [id_ for url in entries for id_ in click_ids_of_url(url)]
    click_ids += _named(meta, "key", "value")
    billing = body.get("billing") or {}
    order = _order(
        order_id,
        status,
        occurred_at,
        buyer(body.get("customer_id"), billing.get("email"), order_id),
        click_ids,
        shop_currency,
        items_of(lines),
    )
    return Mapped(order_id, order=order, refunds=refunds if status == "paid" else [])
