"""Create, read, list and delete round trips for every catalog entity."""

from __future__ import annotations

from tests.catalog.factories import (
    Json,
    Shop,
    account_body,
    ad_body,
    assert_object,
    assert_problem,
    campaign_body,
    link_body,
    live_body,
    new_id,
    product_body,
    spend_body,
    tracking_link_body,
    video_body,
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


async def test_account_round_trip(shop: Shop) -> None:
    account_id = new_id("acc")
    await round_trip(
        shop, f"/v1/accounts/{account_id}", "/v1/accounts", account_body(), {"id": account_id}
    )


async def test_product_round_trip(shop: Shop) -> None:
    product_id = new_id("prd")
    await round_trip(
        shop, f"/v1/products/{product_id}", "/v1/products", product_body(), {"id": product_id}
    )


async def test_video_content_round_trip(shop: Shop) -> None:
    account = await shop.account()
    content_id = new_id("vid")
    body = video_body(account["id"])
    await round_trip(shop, f"/v1/contents/{content_id}", "/v1/contents", body, {"id": content_id})


async def test_live_content_round_trip(shop: Shop) -> None:
    account = await shop.account()
    content_id = new_id("live")
    body = live_body(account["id"])
    await round_trip(shop, f"/v1/contents/{content_id}", "/v1/contents", body, {"id": content_id})


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


async def test_campaign_round_trip(shop: Shop) -> None:
    campaign_id = new_id("cmp")
    await round_trip(
        shop, f"/v1/campaigns/{campaign_id}", "/v1/campaigns", campaign_body(), {"id": campaign_id}
    )


async def test_ad_round_trip(shop: Shop) -> None:
    campaign = await shop.campaign()
    video = await shop.video()
    product = await shop.product()
    ad_id = new_id("ad")
    body = ad_body(campaign["id"], video["id"], product_id=product["id"], format="pre_roll")
    await round_trip(shop, f"/v1/ads/{ad_id}", "/v1/ads", body, {"id": ad_id})


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
