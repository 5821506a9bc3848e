"""Create, read, list and delete round trips for every catalog entity."""

from __future__ import annotations

import pytest

from tests.catalog.factories import (
    Json,
    Shop,
    assert_object,
    assert_problem,
    link_body,
    new_id,
    spend_body,
    tracking_link_body,
)


def _is(item: Json, key: Json) -> bool:
    return all(item.get(name) == value for name, value in key.items())


async def round_trip(shop: Shop, item_path: str, list_path: str, body: Json, key: Json) -> None:
    """PUT creates (201) what GET and the list then answer; DELETE (204) makes it 404."""
    response = await shop.request("PUT", item_path, json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert_object(created, body, key)
    assert created["created_at"] == created["updated_at"]

    assert await shop.get(item_path) == created
    assert [i for i in await shop.list_all(list_path) if _is(i, key)] == [created]

    assert (await shop.request("DELETE", item_path)).status_code == 204
    assert_problem(await shop.request("GET", item_path), 404)
    assert [i for i in await shop.list_all(list_path) if _is(i, key)] == []


@pytest.mark.parametrize(
    ("kind", "plural"),
    [
        ("account", "accounts"),
        ("product", "products"),
        ("campaign", "campaigns"),
        ("video", "contents"),
        ("live", "contents"),
        ("ad", "ads"),
    ],
)
async def test_top_level_round_trip(shop: Shop, kind: str, plural: str) -> None:
    object_id = new_id(kind)
    body = await shop.new_body(kind)
    await round_trip(shop, f"/v1/{plural}/{object_id}", f"/v1/{plural}", body, {"id": object_id})


async def test_content_product_link_round_trip(shop: Shop) -> None:
    live = await shop.live()
    product = await shop.product()
    key = {"content_id": live["id"], "product_id": product["id"]}
    await round_trip(
        shop,
        f"/v1/contents/{live['id']}/products/{product['id']}",
        f"/v1/contents/{live['id']}/products",
        link_body(),
        key,
    )


async def test_ad_spend_round_trip(shop: Shop) -> None:
    ad = await shop.ad()
    key = {"ad_id": ad["id"], "day": "2024-06-18"}
    await round_trip(
        shop, f"/v1/ads/{ad['id']}/spend/2024-06-18", f"/v1/ads/{ad['id']}/spend", spend_body(), key
    )


async def test_tracking_link_round_trip(shop: Shop) -> None:
    ad = await shop.ad(product_id=(await shop.product())["id"])
    body = tracking_link_body(ad["content_id"], product_id=ad["product_id"], ad_id=ad["id"])

    response = await shop.request("POST", "/v1/tracking-links", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    code = created["code"]
    assert created["url"] == f"http://attribution.test/r/{code}"
    assert_object(created, body, {"id": code})

    # Every link gets a code of its own, even for the same content and destination.
    twin = await shop.tracking_link(ad["content_id"], product_id=ad["product_id"], ad_id=ad["id"])
    assert twin["code"] != code
    assert twin["url"] == f"http://attribution.test/r/{twin['code']}"

    item_path = f"/v1/tracking-links/{code}"
    assert await shop.get(item_path) == created
    listed = [i for i in await shop.list_all("/v1/tracking-links") if i["code"] == code]
    assert listed == [created]

    assert (await shop.request("DELETE", item_path)).status_code == 204
    assert_problem(await shop.request("GET", item_path), 404)
    assert [i for i in await shop.list_all("/v1/tracking-links") if i["code"] == code] == []
