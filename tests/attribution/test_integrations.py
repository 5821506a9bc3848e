"""Shop webhooks end to end: the sample bodies posted byte for byte, signed as the shops sign."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine

from tests.conftest import auth

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
VECTORS = json.loads((FIXTURES / "signature_vectors.json").read_text())
SHOPIFY_SECRET = "shpss_test_client_secret"
WOO_SECRET = "wc_test_webhook_secret"
PROBLEM = "application/problem+json"
# The topic each sample body was delivered under.
SAMPLE_TOPICS = {
    "shopify_orders_paid.json": "orders/paid",
    "shopify_orders_cancelled.json": "orders/cancelled",
    "shopify_refunds_create.json": "refunds/create",
    "woocommerce_order_created.json": "order.created",
    "woocommerce_order_created.raw_body.txt": "order.created",
    "woocommerce_order_updated.json": "order.updated",
    "woocommerce_order_updated_with_refunds.json": "order.updated",
}


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def vector(name: str) -> str:
    for platform in ("shopify", "woocommerce"):
        for entry in VECTORS[platform]:
            if entry["file"] == name:
                return str(entry["expected"])
    raise KeyError(name)


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class Shops:
    """A tenant with a Shopify and a WooCommerce connection."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.headers = auth(token)

    async def connect(self, integration_id: str, platform: str, secret: str) -> httpx.Response:
        shop = "dev.myshopify.com" if platform == "shopify" else "https://example.com/"
        return await self.client.put(
            f"/v1/integrations/{integration_id}",
            json={"platform": platform, "shop": shop, "secret": secret, "currency": "USD"},
            headers=self.headers,
        )

    async def shopify(
        self, body: bytes, topic: str, webhook_id: str, signature: str | None = None
    ) -> httpx.Response:
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": "dev.myshopify.com",
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Hmac-Sha256": signature or sign(body, SHOPIFY_SECRET),
        }
        return await self.client.post(
            "/v1/integrations/shop1/webhooks", content=body, headers=headers
        )

    async def woo(self, body: bytes, topic: str, signature: str | None = None) -> httpx.Response:
        headers = {
            "Content-Type": "application/json",
            "X-WC-Webhook-Source": "https://example.com/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Delivery-ID": "same-second-hash",
            "X-WC-Webhook-Signature": signature or sign(body, WOO_SECRET),
        }
        return await self.client.post(
            "/v1/integrations/woo1/webhooks", content=body, headers=headers
        )

    async def recorded_shopify(self, name: str, webhook_id: str) -> httpx.Response:
        """A sample body under its topic, signed with the signature its vector expects."""
        return await self.shopify(raw(name), SAMPLE_TOPICS[name], webhook_id, vector(name))

    async def recorded_woo(self, name: str) -> httpx.Response:
        """A sample body under its topic, signed with the signature its vector expects."""
        return await self.woo(raw(name), SAMPLE_TOPICS[name], vector(name))

    async def order(self, order_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/orders/{order_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def deliveries(self, integration_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"/v1/integrations/{integration_id}/deliveries", headers=self.headers
        )
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["items"]
        return found


@pytest.fixture
async def shops(attribution: httpx.AsyncClient, make_token, tenant) -> Shops:
    shops = Shops(attribution, make_token(tenant, "admin", "orders:write", "reports:read"))
    assert (await shops.connect("shop1", "shopify", SHOPIFY_SECRET)).status_code == 201
    assert (await shops.connect("woo1", "woocommerce", WOO_SECRET)).status_code == 201
    return shops


def outcome(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["outcome"])


def _paid_twin_of_cancelled() -> bytes:
    """Order #1009 as its `orders/paid` body would have been, before the cancellation."""
    body = json.loads(raw("shopify_orders_cancelled.json"))
    body.update(cancelled_at=None, cancel_reason=None, financial_status="paid", refunds=[])
    return json.dumps(body).encode()


# --------------------------------------------------------------------------- connections


async def test_a_connection_keeps_its_secret_write_only(shops: Shops) -> None:
    read = await shops.client.get("/v1/integrations/shop1", headers=shops.headers)
    assert read.status_code == 200
    body = read.json()
    assert body["secret_set"] is True
    assert "secret" not in body
    assert body["webhook_path"] == "/v1/integrations/shop1/webhooks"
    listed = await shops.client.get("/v1/integrations", headers=shops.headers)
    assert [i["integration_id"] for i in listed.json()["integrations"]] == ["shop1", "woo1"]
    again = await shops.connect("shop1", "shopify", SHOPIFY_SECRET)
    assert again.status_code == 200


async def test_an_integration_id_belongs_to_one_tenant(shops: Shops, make_token) -> None:
    other = Shops(shops.client, make_token("other-tenant", "admin"))
    taken = await other.connect("shop1", "shopify", "another")
    assert taken.status_code == 409
    assert taken.headers["content-type"].startswith(PROBLEM)
    assert "choose another id" in taken.json()["detail"]


async def test_connecting_needs_the_admin_scope(shops: Shops, make_token, tenant) -> None:
    reader = Shops(shops.client, make_token(tenant, "reports:read"))
    refused = await reader.connect("shop2", "shopify", "s")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith(PROBLEM)


# --------------------------------------------------------------------------- signatures


async def test_shopify_paid_sample_becomes_a_paid_order(shops: Shops) -> None:
    name = "shopify_orders_paid.json"
    answer = await shops.recorded_shopify(name, "w-1")
    assert outcome(answer) == "applied"
    order = await shops.order("shop1:5324830114101")
    assert order["status"] == "paid"
    assert order["currency"] == "USD"
    assert Decimal(order["revenue"]) == Decimal("2629.95")
    assert [(line["product_id"], line["quantity"]) for line in order["lines"]] == [
        ("8222223204662", 1)
    ]
    (delivery,) = await shops.deliveries("shop1")
    assert delivery["outcome"] == "applied"
    assert delivery["body"].encode() == raw(name)
    assert delivery["headers"]["x-shopify-topic"] == "orders/paid"


async def test_a_reserialised_body_with_the_old_signature_is_refused(shops: Shops) -> None:
    # Same JSON, other bytes: the signature of the pretty file does not sign the compact one.
    refused = await shops.shopify(
        raw("shopify_orders_paid.raw_body.txt"),
        "orders/paid",
        "w-1",
        vector("shopify_orders_paid.json"),
    )
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert "signature" in refused.json()["detail"]
    woo = await shops.woo(
        raw("woocommerce_order_created.raw_body.txt"),
        "order.created",
        VECTORS["negative_example"]["reserialized"],
    )
    assert woo.status_code == 401
    assert await shops.deliveries("shop1") == []
    assert await shops.deliveries("woo1") == []
    missing = await shops.client.get("/v1/orders/shop1:5324830114101", headers=shops.headers)
    assert missing.status_code == 404


async def test_a_missing_signature_is_refused_and_nothing_is_stored(shops: Shops) -> None:
    body = raw("shopify_orders_paid.json")
    response = await shops.client.post(
        "/v1/integrations/shop1/webhooks",
        content=body,
        headers={"X-Shopify-Topic": "orders/paid", "X-Shopify-Webhook-Id": "w-x"},
    )
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    assert await shops.deliveries("shop1") == []


async def test_an_unknown_integration_is_a_problem(shops: Shops) -> None:
    response = await shops.client.post("/v1/integrations/nope/webhooks", content=b"{}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_the_previous_secret_still_verifies_after_a_rotation(shops: Shops) -> None:
    assert (await shops.connect("shop1", "shopify", "the-new-secret")).status_code == 200
    assert outcome(await shops.recorded_shopify("shopify_orders_paid.json", "w-1")) == "applied"
    body = _paid_twin_of_cancelled()
    signed_new = await shops.shopify(body, "orders/paid", "w-2", sign(body, "the-new-secret"))
    assert outcome(signed_new) == "applied"


async def test_the_previous_secret_expires_an_hour_after_the_rotation(shops: Shops) -> None:
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    name = "shopify_orders_paid.json"
    with time_machine.travel(start, tick=True):
        assert (await shops.connect("shop1", "shopify", "the-new-secret")).status_code == 200
    with time_machine.travel(start + dt.timedelta(minutes=61), tick=True):
        refused = await shops.recorded_shopify(name, "w-1")
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith(PROBLEM)
        signed_new = sign(raw(name), "the-new-secret")
        assert outcome(await shops.shopify(raw(name), "orders/paid", "w-1", signed_new)) == (
            "applied"
        )


async def test_the_woocommerce_ping_answers_200_and_stores_nothing(shops: Shops) -> None:
    response = await shops.client.post(
        "/v1/integrations/woo1/webhooks",
        content=b"webhook_id=12",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert response.json()["outcome"] == "ping"
    assert await shops.deliveries("woo1") == []


# --------------------------------------------------------------------------- duplicates, order


async def test_duplicates_count_once(shops: Shops) -> None:
    name = "shopify_orders_paid.json"
    assert outcome(await shops.recorded_shopify(name, "w-1")) == "applied"
    # A retry (same webhook id) is not even kept again; another subscription's copy replays.
    assert outcome(await shops.recorded_shopify(name, "w-1")) == "duplicate"
    assert outcome(await shops.recorded_shopify(name, "w-2")) == "replayed"
    order = await shops.order("shop1:5324830114101")
    assert Decimal(order["revenue"]) == Decimal("2629.95")
    assert len(await shops.deliveries("shop1")) == 2


async def test_a_refund_before_its_order_applies_when_the_order_arrives(shops: Shops) -> None:
    refund = "shopify_refunds_create.json"
    early = await shops.recorded_shopify(refund, "w-r")
    assert outcome(early) == "pending"
    paid = await shops.shopify(_paid_twin_of_cancelled(), "orders/paid", "w-p")
    assert outcome(paid) == "applied"
    order = await shops.order("shop1:5324790137142")
    # Lines net of discounts: 699.95 − 113.50 and 2 × 699.95 − 209.97; all three refunded.
    assert Decimal(order["gross_revenue"]) == Decimal("1776.38")
    assert Decimal(order["refunded"]) == Decimal(
        "1776.38"
    )  # the $30 shipping refund is not product revenue
    assert Decimal(order["revenue"]) == 0
    assert order["status"] == "refunded"
    assert [r["refund_id"] for r in order["refunds"]] == ["shop1:945108681014"]
    by_key = {d["delivery_key"]: d["outcome"] for d in await shops.deliveries("shop1")}
    assert by_key == {"shopify:w-r": "applied", "shopify:w-p": "applied"}
    # The cancellation that follows and a stale paid retried hours later change nothing.
    late = await shops.recorded_shopify("shopify_orders_cancelled.json", "w-c")
    assert outcome(late) == "ignored"
    stale = await shops.shopify(_paid_twin_of_cancelled(), "orders/paid", "w-p2")
    assert outcome(stale) == "replayed"
    after = await shops.order("shop1:5324790137142")
    assert after["status"] == "refunded"
    assert Decimal(after["revenue"]) == 0


async def test_a_paid_after_its_cancellation_does_not_resurrect_the_order(shops: Shops) -> None:
    cancelled = "shopify_orders_cancelled.json"
    first = await shops.recorded_shopify(cancelled, "w-c")
    assert outcome(first) == "pending"
    assert outcome(await shops.shopify(_paid_twin_of_cancelled(), "orders/paid", "w-p")) == (
        "applied"
    )
    order = await shops.order("shop1:5324790137142")
    assert order["status"] == "cancelled"
    assert Decimal(order["revenue"]) == 0
    retry = await shops.shopify(_paid_twin_of_cancelled(), "orders/paid", "w-p-retry")
    assert outcome(retry) == "replayed"
    assert (await shops.order("shop1:5324790137142"))["status"] == "cancelled"


# --------------------------------------------------------------------------- WooCommerce


async def test_woocommerce_created_then_updated_counts_once(shops: Shops) -> None:
    created = "woocommerce_order_created.json"
    answer = await shops.recorded_woo(created)
    assert outcome(answer) == "applied"
    order = await shops.order("woo1:727")
    # 2 × 3.00 + 12.00: shipping and tax are not product revenue.
    assert Decimal(order["revenue"]) == Decimal("18.00")
    assert order["paid_at"] == "2017-03-22T19:28:08Z"
    # The same order again (same date_modified_gmt, same topic) is a duplicate, whatever the
    # delivery id; the completed update replays the payment.
    assert outcome(await shops.recorded_woo(created)) == "duplicate"
    assert outcome(await shops.recorded_woo("woocommerce_order_updated.json")) == "replayed"
    assert Decimal((await shops.order("woo1:727"))["revenue"]) == Decimal("18.00")


async def test_woocommerce_php_encoded_body_verifies(shops: Shops) -> None:
    assert outcome(await shops.recorded_woo("woocommerce_order_created.raw_body.txt")) == "applied"
    assert Decimal((await shops.order("woo1:727"))["revenue"]) == Decimal("18.00")


async def test_woocommerce_refunds_reduce_the_order(shops: Shops) -> None:
    with_refunds = await shops.recorded_woo("woocommerce_order_updated_with_refunds.json")
    assert outcome(with_refunds) == "applied"
    order = await shops.order("woo1:723")
    assert Decimal(order["gross_revenue"]) == Decimal("29.00")
    assert Decimal(order["refunded"]) == Decimal("19.00")
    assert Decimal(order["revenue"]) == Decimal("10.00")
    assert sorted(r["refund_id"] for r in order["refunds"]) == ["woo1:724", "woo1:726"]


async def test_unmatched_products_are_listed(shops: Shops) -> None:
    assert outcome(await shops.recorded_woo("woocommerce_order_created.json")) == "applied"
    response = await shops.client.get(
        "/v1/integrations/woo1/unmatched-products", headers=shops.headers
    )
    assert response.status_code == 200
    assert response.json()["products"] == [
        {"product_id": "22", "lines": 1, "quantity": 1},
        {"product_id": "93", "lines": 1, "quantity": 2},
    ]


async def test_lines_find_catalog_products_by_variant_then_product_then_sku(
    shops: Shops, catalog: httpx.AsyncClient, make_token: Any, tenant: str
) -> None:
    writer = auth(make_token(tenant, "catalog:write", "catalog:read"))
    products = {
        # Order #1009 has two variants of one shop product: the first variant is its own
        # catalog product, the other falls back to the product's.
        "dress-black": {"shopify_variant": "44872881537334"},
        "dress": {"shopify_product": "8222223302966", "sku": "unused"},
        "bar": {"sku": "Bar3", "woocommerce_product": "999"},
    }
    for product_id, external_ids in products.items():
        body = {"title": product_id, "price": "1.00", "currency": "USD"}
        put = await catalog.put(
            f"/v1/products/{product_id}",
            json={**body, "external_ids": external_ids},
            headers=writer,
        )
        assert put.status_code == 201, put.text
        assert put.json()["external_ids"] == external_ids
    synced = await shops.client.post("/v1/sync", headers=auth(make_token(tenant, "admin")))
    assert synced.status_code == 200, synced.text

    refund = "shopify_refunds_create.json"
    assert outcome(await shops.recorded_shopify(refund, "w-r")) == "pending"
    assert outcome(await shops.shopify(_paid_twin_of_cancelled(), "orders/paid", "w-p")) == (
        "applied"
    )
    order = await shops.order("shop1:5324790137142")
    # 699.95 − 113.50 on the black variant; 2 × 699.95 − 209.97 on the other one.
    lines = {line["product_id"]: line for line in order["lines"]}
    assert {
        p: (line["quantity"], line["quantity"] * Decimal(line["unit_price"]))
        for p, line in lines.items()
    } == {"dress-black": (1, Decimal("586.45")), "dress": (2, Decimal("1189.93"))}
    # The refund's lines resolve the same way, so both are refunded in full.
    assert {p: line["refunded_quantity"] for p, line in lines.items()} == {
        "dress-black": 1,
        "dress": 2,
    }
    assert Decimal(order["refunded"]) == Decimal("1776.38")

    # WooCommerce: product 22 (variation 23) is known only by its SKU; product 93 not at all.
    assert outcome(await shops.recorded_woo("woocommerce_order_created.json")) == "applied"
    woo = await shops.order("woo1:727")
    assert sorted((line["product_id"], line["quantity"]) for line in woo["lines"]) == [
        ("93", 2),
        ("bar", 1),
    ]
    unmatched = await shops.client.get(
        "/v1/integrations/woo1/unmatched-products", headers=shops.headers
    )
    assert unmatched.json()["products"] == [{"product_id": "93", "lines": 1, "quantity": 2}]


async def test_a_failed_mapping_is_a_listed_failure(shops: Shops) -> None:
    body = json.loads(raw("woocommerce_order_created.json"))
    body["currency"] = "EUR"
    signed = json.dumps(body).encode()
    answer = await shops.woo(signed, "order.created")
    assert outcome(answer) == "failed"
    (delivery,) = await shops.deliveries("woo1")
    assert delivery["outcome"] == "failed"
    assert "EUR" in delivery["reason"]


# --------------------------------------------------------------------------- attribution


async def test_the_click_id_in_the_landing_url_earns_the_credit(shops: Shops) -> None:
    ttclid = "E.C.P.CskBFtZqY2xXv7example"
    clicked = await shops.client.post(
        "/v1/events",
        json={
            "events": [
                {
                    "event_id": "click-1",
                    "type": "click",
                    "occurred_at": "2023-03-24T15:00:00Z",
                    "user_id": "viewer-1",
                    "content_id": "v1",
                    "product_id": "8222223204662",
                    "click_id": ttclid,
                }
            ]
        },
        headers=shops.headers,
    )
    assert clicked.status_code == 200, clicked.text
    assert clicked.json()["rejected"] == []
    body = json.loads(raw("shopify_orders_paid.attributed_variant.json"))
    del body["_MODIFIED_FIELDS_NOTE"]
    signed = json.dumps(body).encode()
    assert outcome(await shops.shopify(signed, "orders/paid", "w-a")) == "applied"
    response = await shops.client.get(
        "/v1/orders/shop1:5324830114101/attribution", headers=shops.headers
    )
    assert response.status_code == 200, response.text
    (credit,) = response.json()["credits"]
    assert credit["event_id"] == "click-1"
    assert credit["content_id"] == "v1"
    assert Decimal(credit["amount"]) == Decimal("2629.95")
    order = await shops.order("shop1:5324830114101")
    assert order["click_ids"] == [ttclid]
    assert order["user_id"] == hashlib.sha256(b"6972527083830").hexdigest()


def test_every_signature_vector_verifies() -> None:
    from services.attribution.integrations.signature import shopify_valid, woocommerce_valid

    for entry in VECTORS["shopify"]:
        body = raw(entry["file"])
        assert shopify_valid(body, entry["expected"], [entry["secret"]])
        assert not shopify_valid(body, entry["expected"], ["wrong"])
    for entry in VECTORS["woocommerce"]:
        body = raw(entry["file"])
        assert woocommerce_valid(body, entry["expected"], ["other", entry["secret"]])
        assert not woocommerce_valid(body + b" ", entry["expected"], [entry["secret"]])
    assert not shopify_valid(b"{}", None, [""])


async def test_shopify_order_updated_carries_refunds_once(shops: Shops) -> None:
    assert outcome(await shops.shopify(_paid_twin_of_cancelled(), "orders/paid", "w-p")) == (
        "applied"
    )
    # The cancelled body is also what `orders/updated` sends once the order is refunded.
    updated = await shops.shopify(raw("shopify_orders_cancelled.json"), "orders/updated", "w-u")
    assert outcome(updated) == "applied"
    # The refund's own webhook brings the same refund: it counts once.
    refund = "shopify_refunds_create.json"
    again = await shops.recorded_shopify(refund, "w-r")
    assert outcome(again) == "replayed"
    order = await shops.order("shop1:5324790137142")
    assert Decimal(order["refunded"]) == Decimal("1776.38")
    assert len(order["refunds"]) == 1


async def test_outcomes_are_counted_per_integration(shops: Shops) -> None:
    from prometheus_client import REGISTRY

    def count(outcome_: str) -> float:
        value = REGISTRY.get_sample_value(
            "clipfunnel_shop_webhooks_total", {"integration": "woo1", "outcome": outcome_}
        )
        return value or 0.0

    before = count("applied"), count("duplicate"), count("unauthorized")
    name = "woocommerce_order_created.json"
    await shops.recorded_woo(name)
    await shops.recorded_woo(name)
    await shops.woo(raw(name), "order.created", "bm90IGl0")
    after = count("applied"), count("duplicate"), count("unauthorized")
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]


async def test_deliveries_are_keyset_pages_newest_first(shops: Shops) -> None:
    for webhook_id in ("w-1", "w-2", "w-3"):
        await shops.recorded_shopify("shopify_orders_paid.json", webhook_id)
    everything = await shops.deliveries("shop1")
    assert len(everything) == 3
    url = "/v1/integrations/shop1/deliveries"
    first = (await shops.client.get(url, params={"limit": 2}, headers=shops.headers)).json()
    assert first["items"] == everything[:2]
    assert first["next_cursor"]
    params = {"limit": 2, "cursor": first["next_cursor"]}
    second = (await shops.client.get(url, params=params, headers=shops.headers)).json()
    assert second == {"items": everything[2:], "next_cursor": None}
    bad = await shops.client.get(url, params={"cursor": "bm90LWEta2V5"}, headers=shops.headers)
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


async def test_deliveries_are_kept_for_30_days(shops: Shops) -> None:
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    created, updated = "woocommerce_order_created.json", "woocommerce_order_updated.json"
    with time_machine.travel(start, tick=True):
        assert outcome(await shops.recorded_woo(created)) == "applied"
    with time_machine.travel(start + dt.timedelta(days=29, hours=23), tick=True):
        assert [d["topic"] for d in await shops.deliveries("woo1")] == ["order.created"]
    with time_machine.travel(start + dt.timedelta(days=30, minutes=1), tick=True):
        assert await shops.deliveries("woo1") == []
        assert outcome(await shops.recorded_woo(updated)) == "replayed"
    # The old delivery is deleted, not only hidden: seen from before its expiry it is gone.
    with time_machine.travel(start + dt.timedelta(days=29, hours=23), tick=True):
        assert [d["topic"] for d in await shops.deliveries("woo1")] == ["order.updated"]
