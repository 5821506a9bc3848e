"""Bad input is refused with a problem+json naming the field, and nothing is stored.

Each test checks one kind of mistake across the entities it applies to; the failures of all its
cases are reported together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.catalog.factories import (
    Json,
    Shop,
    World,
    account_body,
    ad_body,
    campaign_body,
    link_body,
    live_body,
    new_id,
    problem_issues,
    product_body,
    read_feed,
    spend_body,
    tracking_link_body,
    video_body,
)


@dataclass(frozen=True)
class Bad:
    field: str  # the field the answer's errors must name
    method: str
    path: str
    body: Any = None


def new_object(field: str, plural: str, body: Json) -> Bad:
    """A PUT of ``body`` as a new object in ``/v1/{plural}``, to be refused naming ``field``."""
    return Bad(field, "PUT", f"/v1/{plural}/{new_id(plural)}", body)


def new_content(field: str, body: Json) -> Bad:
    """A PUT of ``body`` as a new content, to be refused naming ``field``."""
    return new_object(field, "contents", body)


async def refusals(shop: Shop, cases: list[Bad], status: int = 422) -> list[str]:
    """Sends every case; returns what went wrong (a wrong answer, or something was stored)."""
    failures: list[str] = []
    for case in cases:
        kwargs = {} if case.body is None else {"json": case.body}
        response = await shop.request(case.method, case.path, **kwargs)
        issues = problem_issues(response, status, case.field)
        if case.method == "PUT" and (await shop.request("GET", case.path)).status_code == 200:
            issues.append("the refused object was stored")
        if issues:
            failures.append(f"{case.method} {case.path} [{case.field}]: {issues}")
    return failures


def link_path(world: World) -> str:
    # The world links its live stream; its video has no link yet.
    return f"/v1/contents/{world.video['id']}/products/{world.product['id']}"


async def test_bad_enum_values_are_422_naming_the_field(shop: Shop) -> None:
    w = await shop.world()
    cases = [
        new_object("platform", "accounts", account_body(platform="myspace")),
        new_object("kind", "contents", video_body(w.account["id"], kind="story")),
        Bad("placement", "PUT", link_path(w), link_body(placement="sidebar")),
        new_object(
            "format",
            "ads",
            ad_body(w.campaign["id"], w.video["id"], format="video"),
        ),
    ]
    assert await refusals(shop, cases) == []


async def test_bad_money_and_currencies_are_422_naming_the_field(shop: Shop) -> None:
    # Neither a budget nor a currency is fine.
    await shop.campaign(budget=None, currency=None)
    w = await shop.world()
    spend_path = f"/v1/ads/{w.ad['id']}/spend/2024-06-20"
    budget_only = {k: v for k, v in campaign_body().items() if k != "currency"}
    cases = [
        new_object("currency", "products", product_body(currency="XXQ")),
        new_object("currency", "products", product_body(currency="usd")),
        new_object("currency", "products", product_body(currency="US")),
        new_object("price", "products", product_body(price="-1.00")),
        new_object("price", "products", product_body(price="12,90")),
        new_object("price", "products", product_body(price="abc")),
        new_object("price", "products", product_body(price="NaN")),
        new_object("price", "products", product_body(price="1.23456")),
        new_object("budget", "campaigns", campaign_body(budget="-100")),
        new_object("currency", "campaigns", campaign_body(currency="XXQ")),
        # A budget needs its currency.
        new_object("currency", "campaigns", budget_only),
        new_object("currency", "campaigns", campaign_body(currency=None)),
        Bad("amount", "PUT", spend_path, spend_body(amount="-0.01")),
        Bad("amount", "PUT", spend_path, spend_body(amount="ten")),
        Bad("currency", "PUT", spend_path, spend_body(currency="usd")),
    ]
    assert await refusals(shop, cases) == []


async def test_bad_urls_are_422_naming_the_field(shop: Shop) -> None:
    w = await shop.world()
    links_before = await shop.list_all("/v1/tracking-links")
    long_url = "https://shop.test/" + "a" * (2048 - len("https://shop.test/"))
    # The longest URL stored is fine.
    assert (await shop.product(url=long_url))["url"] == long_url
    cases = [
        new_object("url", "products", product_body(url="not a url")),
        new_object("url", "products", product_body(url="ftp://shop.test/p")),
        new_object("url", "products", product_body(url=long_url + "a")),
        Bad(
            "destination_url",
            "POST",
            "/v1/tracking-links",
            tracking_link_body(w.video["id"], destination_url="shop.test/p"),
        ),
        Bad(
            "destination_url",
            "POST",
            "/v1/tracking-links",
            tracking_link_body(w.video["id"], destination_url="javascript:alert(1)"),
        ),
    ]
    assert await refusals(shop, cases) == []
    assert await shop.list_all("/v1/tracking-links") == links_before


async def test_an_end_not_after_its_start_is_422_naming_the_end(shop: Shop) -> None:
    w = await shop.world()
    cases = [
        new_content(
            "ended_at",
            live_body(
                w.account["id"], started_at="2024-06-18T20:00:00Z", ended_at="2024-06-18T19:59:59Z"
            ),
        ),
        # The same instant written in two offsets: an empty room.
        new_content(
            "ended_at",
            live_body(
                w.account["id"],
                started_at="2024-06-18T20:00:00Z",
                ended_at="2024-06-19T04:00:00+08:00",
            ),
        ),
        Bad(
            "ends_at",
            "PUT",
            link_path(w),
            link_body(starts_at="2024-06-18T20:45:00+08:00", ends_at="2024-06-18T20:15:00+08:00"),
        ),
        new_object(
            "ends_at",
            "campaigns",
            campaign_body(starts_at="2024-06-19T00:00:00Z", ends_at="2024-06-01T00:00:00Z"),
        ),
    ]
    assert await refusals(shop, cases) == []


async def test_timestamps_without_an_offset_or_out_of_range_are_422(shop: Shop) -> None:
    w = await shop.world()
    account_id = w.account["id"]
    cases = [
        new_content(
            "published_at",
            video_body(account_id, published_at="2024-06-01T12:00:00"),
        ),
        new_content(
            "published_at",
            video_body(account_id, published_at="2024-06-01"),
        ),
        new_content(
            "started_at",
            live_body(account_id, started_at="2024-06-18 20:00:00"),
        ),
        Bad("starts_at", "PUT", link_path(w), link_body(starts_at="2024-06-18T20:15:00")),
        # Valid with its offset, but before year 1 or after 9999 in UTC.
        new_content(
            "published_at",
            video_body(account_id, published_at="0001-01-01T00:00:00+01:00"),
        ),
        Bad(
            "ends_at",
            "PUT",
            link_path(w),
            link_body(ends_at="9999-12-31T23:59:59-01:00"),
        ),
        new_object(
            "ends_at",
            "campaigns",
            campaign_body(ends_at="2024-06-19T00:00:00"),
        ),
        # Before the epoch in UTC (1970-01-01T00:00:00+01:00 is an hour before it).
        new_content(
            "published_at",
            video_body(account_id, published_at="1969-12-31T23:59:59Z"),
        ),
        new_object(
            "starts_at",
            "campaigns",
            campaign_body(starts_at="1970-01-01T00:00:00+01:00", ends_at=None),
        ),
    ]
    assert await refusals(shop, cases) == []


async def test_a_two_digit_year_is_422_saying_the_range_and_never_reaches_the_feed(
    shop: Shop, sync_token: str
) -> None:
    w = await shop.world()
    feed_before = await read_feed(shop.client, sync_token)

    # As reported: once taken, the feed carried "70-09-12T19:30:26Z" and stopped every sync.
    body = {"placement": "mention", "ends_at": "0070-09-12T19:30:26Z"}
    response = await shop.request("PUT", link_path(w), json=body)

    assert problem_issues(response, 422, "ends_at") == []
    [error] = response.json()["errors"]
    assert error["msg"] == (
        "0070-09-12T19:30:26Z is before 1970-01-01T00:00:00Z; send an instant from "
        "1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"
    )
    assert (await shop.request("GET", link_path(w))).status_code == 404
    assert await read_feed(shop.client, sync_token) == feed_before


async def test_the_first_and_last_instants_taken_are_fed_with_four_digit_years(
    shop: Shop, sync_token: str
) -> None:
    w = await shop.world()
    body = {
        "placement": "mention",
        "starts_at": "1970-01-01T00:00:00Z",
        "ends_at": "9999-12-31T23:59:59.999999Z",
    }
    stored = await shop.put(link_path(w), body)
    assert (stored["starts_at"], stored["ends_at"]) == (body["starts_at"], body["ends_at"])
    fed = (await read_feed(shop.client, sync_token))[-1]
    assert fed["data"] == stored


async def test_text_the_database_cannot_hold_is_422_naming_the_field(shop: Shop) -> None:
    w = await shop.world()
    account_id = w.account["id"]
    cases = [
        new_object("title", "contents", video_body(account_id, title="a\x00b")),
        new_object("topics", "contents", video_body(account_id, topics=["\x00"])),
        new_object("handle", "accounts", account_body(handle="@\x00")),
        new_object("title", "products", product_body(title="t" * 513)),
        new_object("handle", "accounts", account_body(handle="h" * 257)),
        new_object("title", "contents", video_body(account_id, title="   ")),
    ]
    assert await refusals(shop, cases) == []
    # Any other character is kept as given.
    title = '\u76f4\u64ad \U0001f484 \u2014 "quoted" \\ tab\tend'
    assert (await shop.video(account_id=account_id, title=title))["title"] == title


async def test_bad_external_ids_are_422_and_good_ones_are_fed(shop: Shop, sync_token: str) -> None:
    too_many = {f"k{i}": str(i) for i in range(21)}
    cases = [
        new_object("external_ids", "products", product_body(external_ids=bad))
        for bad in (
            {"Shopify Variant": "1"},  # kinds are lower-case words
            {"sku": ""},
            {"sku": 12},
            {"sku": "x" * 129},
            too_many,
            ["sku"],
        )
    ]
    assert await refusals(shop, cases) == []
    ids = {"shopify_variant": "808950810", "sku": "IPOD2008"}
    stored = await shop.put(f"/v1/products/{new_id('p')}", product_body(external_ids=ids))
    assert stored["external_ids"] == ids
    fed = (await read_feed(shop.client, sync_token))[-1]
    assert fed["data"]["external_ids"] == ids


async def test_bad_ids_and_days_in_the_path_are_422_naming_them(shop: Shop) -> None:
    w = await shop.world()
    too_long = "a" * 129
    ad_id = w.ad["id"]
    cases = [
        Bad("account_id", "PUT", "/v1/accounts/a b", account_body()),
        Bad("account_id", "PUT", f"/v1/accounts/{too_long}", account_body()),
        Bad("account_id", "GET", f"/v1/accounts/{too_long}"),
        Bad("product_id", "PUT", "/v1/products/price$", product_body()),
        Bad("content_id", "DELETE", "/v1/contents/caf\u00e9"),
        Bad("campaign_id", "GET", "/v1/campaigns/a,b"),
        Bad("ad_id", "PUT", f"/v1/ads/{too_long}", ad_body(w.campaign["id"], w.video["id"])),
        Bad("product_id", "PUT", f"/v1/contents/{w.video['id']}/products/p q", link_body()),
        Bad("content_id", "GET", f"/v1/contents/{too_long}/products"),
        Bad("day", "PUT", f"/v1/ads/{ad_id}/spend/2024-02-30", spend_body()),
        Bad("day", "PUT", f"/v1/ads/{ad_id}/spend/18-06-2024", spend_body()),
        Bad("day", "GET", f"/v1/ads/{ad_id}/spend/yesterday"),
        Bad("code", "GET", "/v1/tracking-links/no such code"),
    ]
    # An id of exactly 128 allowed characters is fine.
    await shop.account("A-z_0.9:" + "x" * 120)
    assert await refusals(shop, cases) == []


async def test_unknown_fields_are_422_naming_them(shop: Shop) -> None:
    w = await shop.world()
    cases = [
        new_object("colour", "accounts", account_body(colour="red")),
        new_object("stock", "products", product_body(stock=3)),
        Bad("priority", "PUT", link_path(w), link_body(priority=1)),
        Bad("note", "PUT", f"/v1/ads/{w.ad['id']}/spend/2024-06-21", spend_body(note="x")),
        # The code is minted by the catalog, never chosen by the client.
        Bad("code", "POST", "/v1/tracking-links", tracking_link_body(w.video["id"], code="mine")),
    ]
    assert await refusals(shop, cases) == []


async def test_missing_required_fields_are_422_naming_them(shop: Shop) -> None:
    w = await shop.world()

    def without(body: Json, name: str) -> Json:
        return {k: v for k, v in body.items() if k != name}

    cases = [
        new_object("handle", "accounts", without(account_body(), "handle")),
        new_object("currency", "products", without(product_body(), "currency")),
        new_object(
            "account_id",
            "contents",
            without(video_body(w.account["id"]), "account_id"),
        ),
        Bad("placement", "PUT", link_path(w), without(link_body(), "placement")),
        new_object(
            "format",
            "ads",
            without(ad_body(w.campaign["id"], w.video["id"]), "format"),
        ),
        Bad("amount", "PUT", f"/v1/ads/{w.ad['id']}/spend/2024-06-22", {"currency": "CNY"}),
        Bad("destination_url", "POST", "/v1/tracking-links", {"content_id": w.video["id"]}),
    ]
    assert await refusals(shop, cases) == []


async def test_malformed_or_non_object_json_is_a_problem(shop: Shop) -> None:
    failures = []
    for content in (b'{"platform": "douyin",', b"not json", b"[]", b'"douyin"', b""):
        path = f"/v1/accounts/{new_id('a')}"
        response = await shop.request(
            "PUT",
            path,
            content=content,
            headers={**shop.headers, "content-type": "application/json"},
        )
        expected = 400 if response.status_code == 400 else 422
        issues = problem_issues(response, expected)
        if (await shop.request("GET", path)).status_code == 200:
            issues.append("the refused object was stored")
        if issues:
            failures.append(f"{content!r}: {issues}")
    assert failures == []


async def test_references_to_missing_objects_are_422_naming_the_field(
    shop: Shop, sync_token: str
) -> None:
    w = await shop.world()
    gone = await shop.account()
    await shop.delete(f"/v1/accounts/{gone['id']}")
    feed_before = await read_feed(shop.client, sync_token)
    campaign_id, video_id, product_id = w.campaign["id"], w.video["id"], w.product["id"]
    cases = [
        new_object("account_id", "contents", video_body("no-such-account")),
        # A deleted object is as good as missing.
        new_object("account_id", "contents", video_body(gone["id"])),
        new_object("campaign_id", "ads", ad_body("no-such", video_id)),
        new_object("content_id", "ads", ad_body(campaign_id, "no-such")),
        new_object(
            "product_id",
            "ads",
            ad_body(campaign_id, video_id, product_id="no-such"),
        ),
        Bad("product_id", "PUT", f"/v1/contents/{video_id}/products/no-such", link_body()),
        Bad("content_id", "POST", "/v1/tracking-links", tracking_link_body("no-such")),
        Bad(
            "product_id",
            "POST",
            "/v1/tracking-links",
            tracking_link_body(video_id, product_id="no-such"),
        ),
        Bad("ad_id", "POST", "/v1/tracking-links", tracking_link_body(video_id, ad_id="no-such")),
    ]
    assert await refusals(shop, cases) == []
    # A reference to a real product still works on the same content.
    await shop.link(video_id, product_id)
    assert len(await read_feed(shop.client, sync_token)) == len(feed_before) + 1


async def test_references_to_another_tenants_objects_are_treated_as_missing(
    shop: Shop, other_shop: Shop, sync_token: str
) -> None:
    theirs = await other_shop.world()
    ours = await shop.world()
    feed_before = await read_feed(shop.client, sync_token)
    cases = [
        new_object(
            "account_id",
            "contents",
            video_body(theirs.account["id"]),
        ),
        new_object(
            "campaign_id",
            "ads",
            ad_body(theirs.campaign["id"], ours.video["id"]),
        ),
        new_object(
            "content_id",
            "ads",
            ad_body(ours.campaign["id"], theirs.video["id"]),
        ),
        new_object(
            "product_id",
            "ads",
            ad_body(ours.campaign["id"], ours.video["id"], product_id=theirs.product["id"]),
        ),
        Bad(
            "product_id",
            "PUT",
            f"/v1/contents/{ours.video['id']}/products/{theirs.product['id']}",
            link_body(),
        ),
        Bad(
            "content_id",
            "POST",
            "/v1/tracking-links",
            tracking_link_body(theirs.video["id"]),
        ),
        Bad(
            "ad_id",
            "POST",
            "/v1/tracking-links",
            tracking_link_body(ours.video["id"], ad_id=theirs.ad["id"]),
        ),
    ]
    assert await refusals(shop, cases) == []
    assert await read_feed(shop.client, sync_token) == feed_before
