"""Keyset pagination: `?limit=&cursor=` → `{items, next_cursor}` on every kind of list."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.catalog.factories import Json, Shop, problem_issues


async def walk(shop: Shop, path: str, limit: int, cursor: str | None = None) -> list[list[Json]]:
    """The pages of a list, following next_cursor until it is null."""
    pages: list[list[Json]] = []
    params: dict[str, Any] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    while True:
        response = await shop.request("GET", path, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        pages.append(page["items"])
        if page["next_cursor"] is None:
            return pages
        assert len(pages) <= 100, "next_cursor never ends"
        params["cursor"] = page["next_cursor"]


def cursor_of(value: Any) -> str:
    """A well-formed but forged cursor (base64url JSON), as a tampering client could send."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


async def test_walking_23_accounts_by_5_sees_each_once_in_order(shop: Shop) -> None:
    created = [(await shop.account(f"acc-{n:02d}"))["id"] for n in range(23)]

    pages = await walk(shop, "/v1/accounts", limit=5)

    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    seen = [item["id"] for page in pages for item in page]
    assert seen == sorted(created)
    everything = (await shop.request("GET", "/v1/accounts", params={"limit": 500})).json()
    assert [i["id"] for i in everything["items"]] == seen
    assert everything["next_cursor"] is None


async def test_walking_content_products_by_composite_key(shop: Shop) -> None:
    live = await shop.live()
    products = [(await shop.product(f"prd-{n:02d}"))["id"] for n in range(7)]
    for product_id in products:
        await shop.link(live["id"], product_id)
    # Another content's links are not part of this content's list.
    await shop.link((await shop.video())["id"], products[0])

    pages = await walk(shop, f"/v1/contents/{live['id']}/products", limit=3)

    assert [len(p) for p in pages] == [3, 3, 1]
    seen = [(i["content_id"], i["product_id"]) for page in pages for i in page]
    assert seen == [(live["id"], p) for p in sorted(products)]


async def test_walking_ad_spend_by_day(shop: Shop) -> None:
    ad = await shop.ad()
    days = [f"2024-06-{d:02d}" for d in (9, 10, 11, 1, 30, 2, 20)]
    for day in days:
        await shop.spend(ad["id"], day)

    pages = await walk(shop, f"/v1/ads/{ad['id']}/spend", limit=2)

    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert [i["day"] for page in pages for i in page] == sorted(days)


async def test_objects_deleted_between_pages_are_skipped_and_nothing_else_is_lost(
    shop: Shop,
) -> None:
    created = [(await shop.account(f"acc-{n:02d}"))["id"] for n in range(9)]
    first = (await shop.request("GET", "/v1/accounts", params={"limit": 4})).json()
    await shop.delete(f"/v1/accounts/{created[5]}")
    await shop.delete(f"/v1/accounts/{created[3]}")  # already seen on the first page

    rest = await walk(shop, "/v1/accounts", limit=4, cursor=first["next_cursor"])

    seen = [i["id"] for i in first["items"] + [i for page in rest for i in page]]
    assert seen == [i for n, i in enumerate(created) if n != 5]


async def test_invalid_cursors_and_limits_are_422_problems(shop: Shop) -> None:
    ad = await shop.ad()
    await shop.spend(ad["id"], "2024-06-01")
    cases = [
        ("/v1/accounts", "not a cursor!"),
        ("/v1/accounts", "%%%"),
        ("/v1/accounts", cursor_of({"id": "acc-01"})),
        ("/v1/accounts", cursor_of(["acc-01", "extra"])),
        ("/v1/accounts", cursor_of([123])),
        ("/v1/accounts", cursor_of([None])),
        (f"/v1/ads/{ad['id']}/spend", cursor_of([ad["id"]])),
        (f"/v1/ads/{ad['id']}/spend", cursor_of([ad["id"], "not-a-day"])),
        (f"/v1/ads/{ad['id']}/spend", cursor_of([ad["id"], 20240601])),
        ("/v1/tracking-links", cursor_of([[1, 2]])),
    ]
    failures = []
    for path, cursor in cases:
        response = await shop.request("GET", path, params={"cursor": cursor})
        issues = problem_issues(response, 422, "cursor")
        if issues:
            failures.append(f"{path} cursor={cursor!r}: {issues}")
    for limit in (0, -1, 501, "many"):
        response = await shop.request("GET", "/v1/accounts", params={"limit": limit})
        issues = problem_issues(response, 422, "limit")
        if issues:
            failures.append(f"limit={limit!r}: {issues}")
    assert failures == []
    for limit in (1, 500):
        response = await shop.request("GET", "/v1/accounts", params={"limit": limit})
        assert response.status_code == 200, limit
