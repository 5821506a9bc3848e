"""A content's page and a live room's timeline against the reference data set.

Each test runs on SQLite and PostgreSQL. The expected figures are recomputed from the raw
events and the credits the API gives per order and model (``report_reference``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.attribution import report_reference as ref
from tests.conftest import TokenFactory, auth

RANGE = {"from": ref.RANGE_START.isoformat(), "to": ref.RANGE_END.isoformat()}
UTC = dt.UTC
PIN_START = ref.LIVE_START + dt.timedelta(minutes=30)
PIN_END = ref.LIVE_START + dt.timedelta(minutes=90)


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    with ref.fixed_clock():
        yield


async def get(client: httpx.AsyncClient, token: str, path: str, **params: Any) -> httpx.Response:
    return await client.get(path, params=params, headers=auth(token))


async def shop(
    catalog: httpx.AsyncClient, attribution: httpx.AsyncClient, token: str
) -> ref.DataSet:
    ds = await ref.build_shop(catalog, attribution, token, seed=3, events=160, orders=10)
    # One product of the live room is pinned for an hour of the show.
    response = await catalog.put(
        "/v1/contents/live1/products/p1",
        json={
            "placement": "pinned",
            "starts_at": PIN_START.isoformat(),
            "ends_at": PIN_END.isoformat(),
        },
        headers=auth(token),
    )
    assert response.status_code in (200, 201), response.text
    synced = await attribution.post("/v1/sync", json={}, headers=auth(token))
    assert synced.status_code == 200, synced.text
    return ds


def expected_orders(
    ds: ref.DataSet, model: str, content: str, ad: str | None = None
) -> dict[str, tuple[Decimal, float]]:
    per: dict[str, tuple[Decimal, list[float]]] = {}
    for credit in ds.credits[model]:
        if ad is not None and credit.ad_id != ad:
            continue
        if credit.content_id == content and ref.in_range(
            credit.paid_at, ref.RANGE_START, ref.RANGE_END
        ):
            amount, shares = per.get(credit.order_id, (Decimal(0), []))
            per[credit.order_id] = (amount + credit.amount, [*shares, credit.share])
    return {k: (amount, math.fsum(shares)) for k, (amount, shares) in per.items()}


async def check_content_page(attribution: httpx.AsyncClient, ds: ref.DataSet, token: str) -> None:
    for model in ("last_touch", "linear"):
        for content in ("v1", "live1"):
            response = await get(
                attribution, token, f"/v1/reports/contents/{content}", model=model, **RANGE
            )
            assert response.status_code == 200, response.text
            page = response.json()
            assert page["title"] == ref.title(content)
            assert page["kind"] == ds.contents[content]["kind"]
            account = ds.contents[content]["account_id"]
            assert page["account_id"] == account
            assert page["account_handle"] == ref.handle(account)
            assert page["platform"] == ds.platforms[account]
            assert page["model"] == model
            expected = expected_orders(ds, model, content)
            assert page["orders_total"] == len(expected)
            listed = page["orders"]
            assert {o["order_id"] for o in listed} == set(expected)
            paid = [o["paid_at"] for o in listed]
            assert paid == sorted(paid, reverse=True)
            for order in listed:
                amount, share = expected[order["order_id"]]
                assert order["gmv"] == ref.money(amount, "CNY")
                assert order["orders"] == pytest.approx(share, abs=1.01e-6)
    live = (await get(attribution, token, "/v1/reports/contents/live1", **RANGE)).json()
    assert live["started_at"] == ref.LIVE_START.astimezone(UTC).isoformat().replace("+00:00", "Z")
    products = {p["product_id"]: p for p in live["products"]}
    assert set(products) == {"p1", "p2", "p3"}
    assert products["p1"]["placement"] == "pinned"
    assert products["p1"]["title"] == ref.title("p1")
    assert live["products"][0]["product_id"] == "p1"  # pinned first
    assert products["p2"]["starts_at"] is None
    # ad_id keeps the credits of touches on that ad: the ad's orders.
    for ad, content in (("ad-native-1", "v1"), ("ad-overlay-1", "live1")):
        mine = await get(attribution, token, f"/v1/reports/contents/{content}", ad_id=ad, **RANGE)
        expected = expected_orders(ds, "last_touch", content, ad)
        assert {o["order_id"] for o in mine.json()["orders"]} == set(expected)
        for order in mine.json()["orders"]:
            assert order["gmv"] == ref.money(expected[order["order_id"]][0], "CNY")
    # max_orders keeps the latest paid orders.
    one = (
        await get(attribution, token, "/v1/reports/contents/live1", max_orders=1, **RANGE)
    ).json()
    assert [o["order_id"] for o in one["orders"]] == [live["orders"][0]["order_id"]]
    assert one["orders_total"] == live["orders_total"] >= 2


async def check_timeline(attribution: httpx.AsyncClient, ds: ref.DataSet, token: str) -> None:
    start = ref.LIVE_START.astimezone(UTC)
    end = ref.LIVE_END.astimezone(UTC)
    for model in ("last_touch", "position_based"):
        response = await get(attribution, token, "/v1/reports/live/live1/timeline", model=model)
        assert response.status_code == 200, response.text
        body = response.json()
        minutes = body["minutes"]
        assert len(minutes) == 180
        assert minutes[0]["start"] == "2026-10-12T12:00:00Z"
        assert body["title"] == ref.title("live1")
        counts: dict[tuple[int, str], int] = {}
        for event in ds.events:
            at = event["at"].astimezone(UTC)
            if event.get("content_id") == "live1" and start <= at < end:
                key = (int((at - start).total_seconds() // 60), event["type"])
                counts[key] = counts.get(key, 0) + 1
        gmv: dict[int, Decimal] = {}
        shares: dict[int, list[float]] = {}
        for credit in ds.credits[model]:
            at = credit.paid_at.astimezone(UTC)
            if credit.content_id == "live1" and start <= at < end:
                slot = int((at - start).total_seconds() // 60)
                gmv[slot] = gmv.get(slot, Decimal(0)) + credit.amount
                shares.setdefault(slot, []).append(credit.share)
        for n, minute in enumerate(minutes):
            assert minute["entries"] == counts.get((n, "live_enter"), 0), n
            assert minute["clicks"] == counts.get((n, "click"), 0), n
            assert minute["gmv"] == ref.money(gmv.get(n, Decimal(0)), "CNY"), n
            assert minute["orders"] == pytest.approx(math.fsum(shares.get(n, [])), abs=1.01e-6)
        assert sum(m["entries"] for m in minutes) > 0
        assert any(Decimal(m["gmv"]) > 0 for m in minutes)
        assert [p["product_id"] for p in body["pinned"]] == ["p1"]
        assert body["pinned"][0]["starts_at"] == "2026-10-12T12:30:00Z"
    # An explicit range: minutes of that range only; the pin outside it is not listed.
    later = ref.LIVE_START + dt.timedelta(minutes=100)
    part = await get(
        attribution,
        token,
        "/v1/reports/live/live1/timeline",
        **{"from": later.isoformat(), "to": (later + dt.timedelta(minutes=5)).isoformat()},
    )
    assert part.status_code == 200, part.text
    assert len(part.json()["minutes"]) == 5
    assert part.json()["pinned"] == []


async def check_bad_input(attribution: httpx.AsyncClient, token: str) -> None:
    cases = [
        ("/v1/reports/contents/v1", {"model": "nope"}, "model"),
        ("/v1/reports/contents/v1", {"model": "markov"}, "model"),
        ("/v1/reports/contents/v1", {"max_orders": "0"}, "max_orders"),
        ("/v1/reports/contents/v1", {"ad_id": "no spaces"}, "ad_id"),
        ("/v1/reports/contents/v1", {"from": "yesterday"}, "from"),
        ("/v1/reports/contents/bad id!", {}, "content_id"),
        ("/v1/reports/live/live1/timeline", {"to": "2026-10-12T12:00:00"}, "to"),
        ("/v1/reports/live/live1/timeline", {"from": "2026-10-10T00:00:00Z"}, "to"),
        ("/v1/reports/live/v1/timeline", {}, "content_id"),
        ("/v1/reports/live/live-idle/timeline", {}, "from"),
    ]
    for path, params, field in cases:
        response = await get(attribution, token, path, **params)
        assert response.status_code == 422, (path, params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in response.json()["detail"], response.json()
    for path in ("/v1/reports/contents/nobody", "/v1/reports/live/nobody/timeline"):
        missing = await get(attribution, token, path)
        assert missing.status_code == 404
        assert "POST /v1/sync" in missing.json()["detail"]


async def test_content_page_and_live_timeline_match_the_reference(
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    tenant: str,
    make_token: TokenFactory,
) -> None:
    token = make_token(tenant, "admin")
    ds = await shop(catalog, attribution, token)
    await check_content_page(attribution, ds, token)
    await check_timeline(attribution, ds, token)
    await check_bad_input(attribution, make_token(tenant, "reports:read"))


async def test_another_tenant_sees_none_of_it(
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    tenant: str,
    make_token: TokenFactory,
) -> None:
    await shop(catalog, attribution, make_token(tenant, "admin"))
    other = make_token(tenant + "-b", "reports:read")
    for path in ("/v1/reports/contents/live1", "/v1/reports/live/live1/timeline"):
        response = await get(attribution, other, path, **RANGE)
        assert response.status_code == 404, response.text
    # Without the reports scope, nothing either.
    denied = await get(attribution, make_token(tenant, "events:write"), "/v1/reports/contents/v1")
    assert denied.status_code == 403
