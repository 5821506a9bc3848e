"""The change feed `GET /v1/changes?after=&limit=`: complete, ordered, pageable, cross-tenant."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import fields
from typing import Any

import httpx

from tests.catalog.factories import (
    Json,
    Shop,
    World,
    account_body,
    ad_body,
    assert_problem,
    campaign_body,
    link_body,
    new_id,
    product_body,
    read_feed,
    spend_body,
    tenant_changes,
    tracking_link_body,
    video_body,
)
from tests.conftest import TokenFactory, auth

ENTITIES = {
    "account",
    "product",
    "content",
    "content_product",
    "campaign",
    "ad",
    "ad_spend",
    "tracking_link",
}
ITEM_PATHS = {
    "account": "/v1/accounts/{id}",
    "product": "/v1/products/{id}",
    "content": "/v1/contents/{id}",
    "content_product": "/v1/contents/{content_id}/products/{product_id}",
    "campaign": "/v1/campaigns/{id}",
    "ad": "/v1/ads/{id}",
    "ad_spend": "/v1/ads/{ad_id}/spend/{day}",
    "tracking_link": "/v1/tracking-links/{code}",
}


def seqs_increase(changes: list[Json]) -> bool:
    seqs = [c["seq"] for c in changes]
    return all(a < b for a, b in itertools.pairwise(seqs))


class Recorder:
    """Writes through the API and notes the change each effective write must add to the feed."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.expected: list[tuple[str, str, Json]] = []  # (entity, op, data)

    async def put(self, entity: str, path: str, body: Json, *, changes: bool = True) -> Json:
        response = await self.shop.request("PUT", path, json=body)
        assert response.status_code in (200, 201), response.text
        answer: Json = response.json()
        if changes:
            self.expected.append((entity, "upsert", answer))
        return answer

    async def post_link(self, body: Json) -> Json:
        response = await self.shop.request("POST", "/v1/tracking-links", json=body)
        assert response.status_code == 201, response.text
        answer: Json = response.json()
        self.expected.append(("tracking_link", "upsert", answer))
        return answer

    async def delete(self, entity: str, path: str, key: Json) -> None:
        response = await self.shop.request("DELETE", path)
        assert response.status_code == 204, response.text
        self.expected.append((entity, "delete", key))


async def test_the_feed_has_every_effective_write_once_in_seq_order(
    shop: Shop, sync_token: str
) -> None:
    rec = Recorder(shop)
    acc, prd, vid, cmp, ad = (new_id(p) for p in ("acc", "prd", "vid", "cmp", "ad"))
    await rec.put("account", f"/v1/accounts/{acc}", account_body())
    await rec.put("account", f"/v1/accounts/{acc}", account_body(), changes=False)  # identical
    await rec.put("account", f"/v1/accounts/{acc}", account_body(handle="@glow2"))
    await rec.put("product", f"/v1/products/{prd}", product_body())
    await rec.put("content", f"/v1/contents/{vid}", video_body(acc))
    link = f"/v1/contents/{vid}/products/{prd}"
    await rec.put("content_product", link, link_body())
    await rec.put("campaign", f"/v1/campaigns/{cmp}", campaign_body())
    await rec.put("ad", f"/v1/ads/{ad}", ad_body(cmp, vid, product_id=prd))
    spend = f"/v1/ads/{ad}/spend/2024-06-18"
    await rec.put("ad_spend", spend, spend_body())
    await rec.put("ad_spend", spend, spend_body(), changes=False)  # identical
    tracking = await rec.post_link(tracking_link_body(vid, ad_id=ad))
    code = tracking["code"]
    await rec.delete("tracking_link", f"/v1/tracking-links/{code}", {"id": code})
    await rec.delete("ad_spend", spend, {"ad_id": ad, "day": "2024-06-18"})
    await rec.delete("content_product", link, {"content_id": vid, "product_id": prd})
    await rec.put("content_product", link, link_body(placement="mention"))  # revived
    # Refused writes add nothing.
    assert (await shop.request("DELETE", spend)).status_code == 404
    bad = await shop.request("PUT", f"/v1/accounts/{acc}", json=account_body(platform="myspace"))
    assert bad.status_code == 422

    feed = tenant_changes(await read_feed(shop.client, sync_token), shop.tenant_id)

    assert seqs_increase(feed)
    assert [(c["entity"], c["op"]) for c in feed] == [(e, op) for e, op, _ in rec.expected]
    assert {c["entity"] for c in feed} == ENTITIES
    for change, (_, op, data) in zip(feed, rec.expected, strict=True):
        if op == "upsert":
            assert change["data"] == data
        else:
            assert change["data"].items() >= data.items(), change
            assert change["id"]


async def test_feed_data_is_the_object_as_get_answers_it(shop: Shop, sync_token: str) -> None:
    await shop.world()
    feed = tenant_changes(await read_feed(shop.client, sync_token), shop.tenant_id)

    assert {c["entity"] for c in feed} == ENTITIES
    for change in feed:
        assert change["op"] == "upsert"
        path = ITEM_PATHS[change["entity"]].format(**change["data"])
        assert await shop.get(path) == change["data"], change["entity"]


async def test_paging_the_feed_with_next_after_loses_nothing(
    shop: Shop, other_shop: Shop, sync_token: str, catalog: httpx.AsyncClient
) -> None:
    await shop.world()
    await other_shop.world()
    whole = await read_feed(catalog, sync_token)
    assert len(whole) == 2 * len(fields(World))  # each world object was written once

    paged = await read_feed(catalog, sync_token, limit=3)
    middle = await read_feed(catalog, sync_token, after=whole[6]["seq"], limit=4)

    assert paged == whole
    assert middle == whole[7:]
    assert seqs_increase(whole)
    last = whole[-1]["seq"]
    tail = (
        await catalog.get("/v1/changes", params={"after": last}, headers=auth(sync_token))
    ).json()
    assert tail == {"changes": [], "next_after": last}


async def test_the_star_token_sees_every_tenant_and_a_tenant_token_only_its_own(
    shop: Shop, other_shop: Shop, sync_token: str, make_token: TokenFactory
) -> None:
    await shop.account()
    await other_shop.account()
    await shop.product()

    everything = await read_feed(shop.client, sync_token)
    own = await read_feed(shop.client, make_token(shop.tenant_id, "catalog:sync"))

    assert [c["tenant_id"] for c in everything] == [
        shop.tenant_id,
        other_shop.tenant_id,
        shop.tenant_id,
    ]
    assert own == tenant_changes(everything, shop.tenant_id)


async def test_the_feed_refuses_tenant_tokens_and_bad_parameters(
    catalog: httpx.AsyncClient, make_token: TokenFactory, tenant: str, sync_token: str
) -> None:
    for scopes in (("catalog:read",), ("admin",), ("catalog:read", "catalog:write")):
        response = await catalog.get("/v1/changes", headers=auth(make_token(tenant, *scopes)))
        assert_problem(response, 403)
    assert_problem(await catalog.get("/v1/changes"), 401)
    bad: list[tuple[str, dict[str, Any]]] = [
        ("after", {"after": -1}),
        ("after", {"after": "latest"}),
        ("after", {"after": 2**63}),
        ("limit", {"limit": 0}),
        ("limit", {"limit": 5001}),
    ]
    for field, params in bad:
        response = await catalog.get("/v1/changes", params=params, headers=auth(sync_token))
        assert_problem(response, 422, field)


async def test_30_concurrent_puts_get_30_distinct_increasing_seqs(
    shop: Shop, sync_token: str
) -> None:
    ids = [new_id("acc") for _ in range(30)]

    responses = await asyncio.gather(
        *(shop.request("PUT", f"/v1/accounts/{i}", json=account_body()) for i in ids)
    )

    assert [r.status_code for r in responses] == [201] * 30
    feed = tenant_changes(await read_feed(shop.client, sync_token), shop.tenant_id)
    assert len({c["seq"] for c in feed}) == 30
    assert seqs_increase(feed)
    assert sorted(c["id"] for c in feed) == sorted(ids)
    by_id = {r.json()["id"]: r.json() for r in responses}
    assert all(c["data"] == by_id[c["id"]] for c in feed)


async def test_concurrent_creates_of_one_id_all_succeed_and_are_all_fed(
    shop: Shop, sync_token: str
) -> None:
    ad = await shop.ad()
    path = f"/v1/ads/{ad['id']}/spend/2024-06-18"
    amounts = [f"{n}.00" for n in range(1, 11)]

    responses = await asyncio.gather(
        *(shop.request("PUT", path, json=spend_body(amount=a)) for a in amounts)
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 9 + [201], [r.text for r in responses if r.status_code >= 300]
    feed = tenant_changes(await read_feed(shop.client, sync_token), shop.tenant_id)
    spend_changes = [c for c in feed if c["entity"] == "ad_spend"]
    assert len(spend_changes) == 10
    assert sorted(c["data"]["amount"] for c in spend_changes) == sorted(amounts)
    # The last change in the feed is what the object now is.
    assert await shop.get(path) == spend_changes[-1]["data"]


async def test_concurrent_puts_and_deletes_of_one_object_never_fail(
    shop: Shop, sync_token: str
) -> None:
    product = await shop.product()
    path = f"/v1/products/{product['id']}"
    writes = [
        shop.request("PUT", path, json=product_body(price=f"{n}.00"))
        if n % 2
        else shop.request("DELETE", path)
        for n in range(20)
    ]

    responses = await asyncio.gather(*writes)

    assert {r.status_code for r in responses} <= {200, 201, 204, 404}, [
        r.text for r in responses if r.status_code >= 500
    ]
    feed = tenant_changes(await read_feed(shop.client, sync_token), shop.tenant_id)
    effective = [r for r in responses if r.status_code in (200, 201, 204)]
    assert len(feed) == 1 + len(effective)
    final = await shop.request("GET", path)
    if feed[-1]["op"] == "delete":
        assert final.status_code == 404
    else:
        assert final.json() == feed[-1]["data"]
