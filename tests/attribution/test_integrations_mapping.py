"""Shop bodies → orders and refunds, without a database: figures computed by hand."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.attribution.integrations import mapping
from services.attribution.integrations.signature import is_woocommerce_ping

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return body


def revenue(order: Any) -> Decimal:
    return sum((i.unit_price * i.quantity for i in order.items), Decimal(0))


def test_shopify_lines_are_net_of_their_discount_allocations() -> None:
    mapped = mapping.shopify(
        mapping.Delivery("s", "orders/cancelled", load("shopify_orders_cancelled.json"), None)
    )
    assert mapped.order is not None
    assert mapped.order_id == "s:5324790137142"
    assert mapped.order.status == "cancelled"
    # 699.95 − (10.00 + 103.50) and 2 × 699.95 − 209.97 = subtotal_price 1776.38.
    assert revenue(mapped.order) == Decimal("1776.38")
    assert mapped.order.user_id == hashlib.sha256(b"6972527083830").hexdigest()


def test_a_guest_without_email_or_click_stays_an_anonymous_buyer() -> None:
    mapped = mapping.shopify(
        mapping.Delivery("s", "orders/paid", load("shopify_orders_paid.json"), None)
    )
    assert mapped.order is not None
    assert mapped.order.user_id == hashlib.sha256(b"order:s:5324830114101").hexdigest()
    assert mapped.order.click_ids is None


def test_a_guest_is_known_by_the_normalised_email() -> None:
    body = load("shopify_orders_paid.json")
    body["email"] = "  Guest@Example.COM "
    mapped = mapping.shopify(mapping.Delivery("s", "orders/paid", body, None))
    assert mapped.order is not None
    assert mapped.order.user_id == hashlib.sha256(b"guest@example.com").hexdigest()


def test_click_ids_from_landing_site_and_note_attributes() -> None:
    body = load("shopify_orders_paid.attributed_variant.json")
    body["landing_site"] += "&cf_click_id=ck-9"
    body["note_attributes"].append({"name": "cf_click", "value": "bad id with spaces"})
    mapped = mapping.shopify(mapping.Delivery("s", "orders/paid", body, None))
    assert mapped.order is not None
    assert mapped.order.click_ids == ["E.C.P.CskBFtZqY2xXv7example", "ck-9"]


def test_shopify_refund_counts_product_lines_not_shipping() -> None:
    refund = mapping.shopify_refund("s", load("shopify_refunds_create.json"))
    assert refund is not None
    assert refund.refund_id == "s:945108681014"
    assert [(i.product_id, i.quantity) for i in refund.items or []] == [("8222223302966", 3)]
    shipping_only = load("shopify_refunds_create.json")
    shipping_only["refund_line_items"] = []
    assert mapping.shopify_refund("s", shipping_only) is None


def test_money_from_strings_and_numbers_is_exact() -> None:
    assert mapping.money("699.95", "x") == Decimal("699.95")
    assert mapping.money(586.45, "x") == Decimal("586.45")
    assert mapping.money(12, "x") == Decimal(12)
    with pytest.raises(mapping.MappingError):
        mapping.money("NaN", "x")
    with pytest.raises(mapping.MappingError):
        mapping.money(None, "x")


def test_a_line_that_does_not_divide_is_split_to_keep_its_total() -> None:
    items = mapping.items_of([("p", 3, Decimal("100.00"))])
    assert [(i["quantity"], i["unit_price"]) for i in items] == [
        (2, Decimal("33.3333")),
        (1, Decimal("33.3334")),
    ]
    assert sum(i["quantity"] * i["unit_price"] for i in items) == Decimal("100.00")


def test_woocommerce_status_and_attribution_meta() -> None:
    body = load("woocommerce_order_created.attributed_variant.json")
    mapped = mapping.woocommerce(mapping.Delivery("w", "order.created", body, "USD"))
    assert mapped.order is not None
    assert mapped.order.status == "paid"
    assert revenue(mapped.order) == Decimal("18.00")
    assert mapped.order.click_ids == ["E.C.P.CskBFtZqY2xXv7example"]
    assert mapped.order.user_id == hashlib.sha256(b"26").hexdigest()
    body["status"] = "failed"
    cancelled = mapping.woocommerce(mapping.Delivery("w", "order.updated", body, "USD"))
    assert cancelled.order is not None
    assert cancelled.order.status == "cancelled"
    body["status"] = "draft"
    assert (
        mapping.woocommerce(mapping.Delivery("w", "order.updated", body, "USD")).ignored is not None
    )


def test_woocommerce_refunds_are_positive_amounts() -> None:
    mapped = mapping.woocommerce(
        mapping.Delivery(
            "w", "order.updated", load("woocommerce_order_updated_with_refunds.json"), None
        )
    )
    assert [(r.refund_id, r.amount) for r in mapped.refunds] == [
        ("w:726", Decimal("10.00")),
        ("w:724", Decimal("9.00")),
    ]


def test_another_currency_than_the_integrations_is_a_mapping_error() -> None:
    with pytest.raises(mapping.MappingError, match="EUR"):
        mapping.woocommerce(
            mapping.Delivery("w", "order.created", load("woocommerce_order_created.json"), "EUR")
        )


def test_the_ping_is_only_the_unsigned_form_body() -> None:
    assert is_woocommerce_ping(b"webhook_id=12", None)
    assert not is_woocommerce_ping(b"webhook_id=12", "sig")
    assert not is_woocommerce_ping(b'{"webhook_id":12}', None)


def test_a_refund_line_without_its_line_item_is_found_on_the_order() -> None:
    order = load("shopify_orders_cancelled.json")
    order["financial_status"] = "refunded"
    for refund in order["refunds"]:
        for line in refund["refund_line_items"]:
            del line["line_item"]
    mapped = mapping.shopify(mapping.Delivery("s", "orders/updated", order, None))
    # Line 13924936679734 (1 unit) and 13924936712502 (2 units), both of product 8222223302966.
    [refund] = mapped.refunds
    assert [(i.product_id, i.quantity) for i in refund.items or []] == [("8222223302966", 3)]
    # A refunds/create body has no order lines: a line it cannot place is a listed failure.
    bare = load("shopify_refunds_create.json")
    del bare["refund_line_items"][0]["line_item"]
    with pytest.raises(mapping.MappingError, match="13924936679734"):
        mapping.shopify(mapping.Delivery("s", "refunds/create", bare, None))
