"""PUT creates (201) or replaces (200); an identical PUT changes nothing; DELETE is soft.

Each test walks every PUT-able entity (accounts, products, contents, links, campaigns, ads, ad
spend) through one scenario.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import httpx
import time_machine

from tests.catalog.factories import (
    Json,
    Shop,
    account_body,
    ad_body,
    assert_object,
    assert_problem,
    campaign_body,
    link_body,
    new_id,
    parse_ts,
    product_body,
    read_feed,
    spend_body,
    tenant_changes,
    video_body,
)
from tests.conftest import TokenFactory


@dataclass(frozen=True)
class PutCase:
    entity: str  # its name in the change feed
    path: str
    list_path: str
    key: Json
    body: Json
    changed: Json  # a different body for the same object


async def put_cases(shop: Shop) -> list[PutCase]:
    """One not-yet-existing object of every PUT-able entity, its prerequisites created."""
    account = await shop.account()
    product = await shop.product()
    video = await shop.video(account_id=account["id"])
    campaign = await shop.campaign()
    ad = await shop.ad(campaign_id=campaign["id"], content_id=video["id"])
    account_id, product_id, content_id = new_id("acc"), new_id("prd"), new_id("vid")
    campaign_id, ad_id = new_id("cmp"), new_id("ad")
    link = {"content_id": video["id"], "product_id": product["id"]}
    spend = {"ad_id": ad["id"], "day": "2024-06-19"}
    return [
        PutCase(
            "account",
            f"/v1/accounts/{account_id}",
            "/v1/accounts",
            {"id": account_id},
            account_body(),
            account_body(handle="@glowlab_official", display_name=None),
        ),
        PutCase(
            "product",
            f"/v1/products/{product_id}",
            "/v1/products",
            {"id": product_id},
            product_body(),
            product_body(price="119.00", category=None),
        ),
        PutCase(
            "content",
            f"/v1/contents/{content_id}",
            "/v1/contents",
            {"id": content_id},
            video_body(account["id"]),
            video_body(account["id"], title="Three looks", topics=["beauty"]),
        ),
        PutCase(
            "content_product",
            f"/v1/contents/{video['id']}/products/{product['id']}",
            f"/v1/contents/{video['id']}/products",
            link,
            link_body(),
            link_body(placement="product_card", ends_at=None),
        ),
        PutCase(
            "campaign",
            f"/v1/campaigns/{campaign_id}",
            "/v1/campaigns",
            {"id": campaign_id},
            campaign_body(),
            campaign_body(budget="8000.00"),
        ),
        PutCase(
            "ad",
            f"/v1/ads/{ad_id}",
            "/v1/ads",
            {"id": ad_id},
            ad_body(campaign["id"], video["id"]),
            ad_body(campaign["id"], video["id"], format="overlay", product_id=product["id"]),
        ),
        PutCase(
            "ad_spend",
            f"/v1/ads/{ad['id']}/spend/2024-06-19",
            f"/v1/ads/{ad['id']}/spend",
            spend,
            spend_body(),
            spend_body(amount="300.00"),
        ),
    ]


def _is(item: Json, key: Json) -> bool:
    return all(item.get(name) == value for name, value in key.items())


def changes_of(changes: list[Json], case: PutCase) -> list[Json]:
    return [c for c in changes if c["entity"] == case.entity and _is(c["data"], case.key)]


CREATED_AT = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


async def test_put_creates_with_201_then_replaces_with_200(
    catalog: httpx.AsyncClient, make_token: TokenFactory, tenant: str
) -> None:
    # The catalog's clock is set and moved a second between the two PUTs of each object.
    second = dt.timedelta(seconds=1)
    with time_machine.travel(CREATED_AT, tick=False) as clock:
        shop = Shop(catalog, tenant, make_token(tenant, "catalog:read", "catalog:write"))
        for shifts, case in enumerate(await put_cases(shop)):
            created_at = CREATED_AT + shifts * second
            created = await shop.put(case.path, case.body, expect=(201,))
            clock.shift(second)
            response = await shop.request("PUT", case.path, json=case.changed)
            assert response.status_code == 200, f"{case.entity}: {response.text}"
            replaced = response.json()
            assert_object(replaced, case.changed, case.key)
            stamps = [parse_ts(created["created_at"]), parse_ts(created["updated_at"])]
            stamps += [parse_ts(replaced["created_at"]), parse_ts(replaced["updated_at"])]
            assert stamps == [created_at] * 3 + [created_at + second], case.entity
            assert await shop.get(case.path) == replaced, case.entity


async def test_identical_put_is_200_and_changes_nothing(shop: Shop, sync_token: str) -> None:
    for case in await put_cases(shop):
        created = await shop.put(case.path, case.body, expect=(201,))
        feed_before = await read_feed(shop.client, sync_token)

        response = await shop.request("PUT", case.path, json=case.body)
        assert response.status_code == 200, f"{case.entity}: {response.text}"
        assert response.json() == created, case.entity
        assert await shop.get(case.path) == created, case.entity
        assert await read_feed(shop.client, sync_token) == feed_before, case.entity


async def test_same_values_written_differently_are_an_identical_put(
    shop: Shop, sync_token: str
) -> None:
    product = await shop.product(price="129.90")
    video = await shop.video(published_at="2024-06-01T12:00:00+08:00")
    feed_before = await read_feed(shop.client, sync_token)

    same_price = await shop.put(
        f"/v1/products/{product['id']}", product_body(price="129.9000"), expect=(200,)
    )
    same_instant = await shop.put(
        f"/v1/contents/{video['id']}",
        video_body(video["account_id"], published_at="2024-06-01T04:00:00Z"),
        expect=(200,),
    )

    assert same_price == product
    assert same_instant == video
    assert await read_feed(shop.client, sync_token) == feed_before


async def test_delete_is_204_then_404_unlisted_and_fed_as_a_delete(
    shop: Shop, sync_token: str
) -> None:
    for case in await put_cases(shop):
        await shop.put(case.path, case.body, expect=(201,))

        assert (await shop.request("DELETE", case.path)).status_code == 204, case.entity
        assert_problem(await shop.request("GET", case.path), 404)
        assert [i for i in await shop.list_all(case.list_path) if _is(i, case.key)] == []
        feed = changes_of(
            tenant_changes(await read_feed(shop.client, sync_token), shop.tenant_id), case
        )
        assert [c["op"] for c in feed] == ["upsert", "delete"], case.entity
        assert_problem(await shop.request("DELETE", case.path), 404)


async def test_put_after_delete_revives_with_201(shop: Shop, sync_token: str) -> None:
    for case in await put_cases(shop):
        await shop.put(case.path, case.body, expect=(201,))
        await shop.delete(case.path)

        revived = await shop.put(case.path, case.changed, expect=(201,))
        assert_object(revived, case.changed, case.key)
        assert await shop.get(case.path) == revived, case.entity
        assert [i for i in await shop.list_all(case.list_path) if _is(i, case.key)] == [revived]
        feed = changes_of(
            tenant_changes(await read_feed(shop.client, sync_token), shop.tenant_id), case
        )
        assert [c["op"] for c in feed] == ["upsert", "delete", "upsert"], case.entity
        assert feed[-1]["data"] == revived, case.entity
