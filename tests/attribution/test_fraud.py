"""Fraud rules one by one, in flag and reject mode, with their reason codes and late events."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.attribution.order_setup import Shop, at, make_shop, touch


@pytest.fixture
async def shop(catalog, attribution, make_token, tenant) -> Shop:
    return await make_shop(catalog, attribution, tenant, make_token(tenant, "admin"))


async def set_fraud(shop: Shop, **rules: Any) -> dict[str, Any]:
    response = await shop.attribution.put(
        "/v1/settings", json={"fraud": rules}, headers=shop.headers
    )
    assert response.status_code == 200, response.text
    fraud: dict[str, Any] = response.json()["fraud"]
    return fraud


async def attribution_of(shop: Shop, order_id: str = "o1") -> dict[str, Any]:
    response = await shop.attribution.get(
        f"/v1/orders/{order_id}/attribution", params={"model": "last_touch"}, headers=shop.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def suspicious(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(s["event_id"], s["reason"], s["mode"]) for s in body["suspicious_touches"]]


ORDER_AT = at(hours=4)


async def test_defaults_flag_and_are_shown_in_settings(shop: Shop) -> None:
    fraud = (await shop.attribution.get("/v1/settings", headers=shop.headers)).json()["fraud"]
    assert fraud == {
        "click_injection": "flag",
        "min_click_to_order_seconds": 10,
        "click_flood": "flag",
        "max_clicks_per_user_hour": 20,
        "max_clicks_per_order": 10,
        "rate_cap": "flag",
        "max_events_per_user_minute": 120,
        "duplicate_click_id": "flag",
    }
    # A partial update keeps the other rules.
    fraud = await set_fraud(shop, click_injection="reject")
    assert fraud["click_injection"] == "reject"
    assert fraud["min_click_to_order_seconds"] == 10


@pytest.mark.parametrize("mode", ["flag", "reject"])
async def test_click_injection(shop: Shop, mode: str) -> None:
    await set_fraud(shop, click_injection=mode)
    await shop.events(
        touch("click", at(hours=1), product="p1", click_id="c-early", event_id="early"),
        touch("click", ORDER_AT - dt.timedelta(seconds=5), product="p1", event_id="injected"),
    )
    await shop.order(when=ORDER_AT)
    body = await attribution_of(shop)
    assert suspicious(body) == [("injected", "click_injection", mode)]
    credits = [(c["event_id"], c["flags"]) for c in body["credits"]]
    if mode == "flag":
        assert credits == [("injected", ["click_injection"])]
    else:  # the order falls to the next eligible touch
        assert credits == [("early", [])]


async def test_a_click_just_outside_the_injection_threshold_is_clean(shop: Shop) -> None:
    await set_fraud(shop, click_injection="reject", min_click_to_order_seconds=10)
    await shop.events(
        touch("click", ORDER_AT - dt.timedelta(seconds=10), product="p1", event_id="ok")
    )
    await shop.order(when=ORDER_AT)
    body = await attribution_of(shop)
    assert suspicious(body) == []
    assert [c["event_id"] for c in body["credits"]] == ["ok"]


@pytest.mark.parametrize("mode", ["flag", "reject"])
async def test_click_flood(shop: Shop, mode: str) -> None:
    await set_fraud(shop, click_flood=mode, max_clicks_per_user_hour=3)
    start = at(hours=1)
    # Five clicks within one hour: the 4th and 5th each have more than 3 in their hour.
    await shop.events(
        *(
            touch("click", start + dt.timedelta(minutes=10 * i), product="p1", event_id=f"k{i}")
            for i in range(5)
        )
    )
    await shop.order(when=ORDER_AT)
    body = await attribution_of(shop)
    assert suspicious(body) == [("k3", "click_flood", mode), ("k4", "click_flood", mode)]
    credits = [(c["event_id"], c["flags"]) for c in body["credits"]]
    assert credits == ([("k4", ["click_flood"])] if mode == "flag" else [("k2", [])])


@pytest.mark.parametrize("mode", ["flag", "reject"])
async def test_rate_cap(shop: Shop, mode: str) -> None:
    await set_fraud(shop, rate_cap=mode, max_events_per_user_minute=5)
    burst = at(hours=2)
    likes = [touch("like", burst + dt.timedelta(seconds=i), event_id=f"like{i}") for i in range(5)]
    await shop.events(
        touch("click", at(hours=1), product="p1", event_id="calm"),
        *likes,
        touch("click", burst + dt.timedelta(seconds=30), product="p1", event_id="busy"),
    )
    await shop.order(when=ORDER_AT)
    body = await attribution_of(shop)
    assert suspicious(body) == [("busy", "rate_cap", mode)]
    credits = [c["event_id"] for c in body["credits"]]
    assert credits == (["busy"] if mode == "flag" else ["calm"])


@pytest.mark.parametrize("mode", ["flag", "reject"])
async def test_duplicate_click_id(shop: Shop, mode: str) -> None:
    await set_fraud(shop, duplicate_click_id=mode)
    await shop.events(
        touch("click", at(hours=2), product="p1", click_id="shared", event_id="mine"),
        touch("click", at(hours=2), user="u2", product="p1", click_id="shared", event_id="theirs"),
    )
    await shop.order(when=ORDER_AT)
    body = await attribution_of(shop)
    assert suspicious(body) == [("mine", "duplicate_click_id", mode)]
    assert len(body["credits"]) == (1 if mode == "flag" else 0)


async def test_a_late_duplicate_click_id_re_attributes_the_order(shop: Shop) -> None:
    await set_fraud(shop, duplicate_click_id="reject")
    await shop.events(touch("click", at(hours=2), product="p1", click_id="c9", event_id="mine"))
    await shop.order(when=ORDER_AT)
    assert [c["event_id"] for c in (await attribution_of(shop))["credits"]] == ["mine"]
    # Another user reports the same click id later: the credited touch is now suspicious.
    await shop.events(
        touch("click", at(hours=3), user="u2", product="p1", click_id="c9", event_id="theirs")
    )
    body = await attribution_of(shop)
    assert body["credits"] == []
    assert suspicious(body) == [("mine", "duplicate_click_id", "reject")]


async def test_late_flood_clicks_re_attribute_the_order(shop: Shop) -> None:
    await set_fraud(shop, click_flood="reject", max_clicks_per_user_hour=2)
    await shop.events(touch("click", at(hours=3), product="p1", event_id="last"))
    await shop.order(when=ORDER_AT)
    assert [c["event_id"] for c in (await attribution_of(shop))["credits"]] == ["last"]
    # Two earlier clicks in the same hour arrive late: "last" is now the third in its hour.
    await shop.events(
        touch("click", at(hours=2.5), product="p1", event_id="a"),
        touch("click", at(hours=2.75), product="p1", event_id="b"),
    )
    body = await attribution_of(shop)
    assert suspicious(body) == [("last", "click_flood", "reject")]
    assert [c["event_id"] for c in body["credits"]] == ["b"]


async def test_an_unknown_mode_is_422(shop: Shop) -> None:
    response = await shop.attribution.put(
        "/v1/settings", json={"fraud": {"rate_cap": "block"}}, headers=shop.headers
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_the_fraud_report_counts_by_rule_day_content_and_ad(shop: Shop) -> None:
    await set_fraud(shop, click_injection="reject", duplicate_click_id="flag")
    await shop.events(
        touch("click", at(hours=1), product="p1", click_id="dup", event_id="d1"),
        touch("click", at(hours=1), user="u2", product="p1", click_id="dup", event_id="d2"),
        touch("click", ORDER_AT - dt.timedelta(seconds=3), product="p1", event_id="inj"),
    )
    await shop.order(when=ORDER_AT)
    params = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}
    response = await shop.attribution.get("/v1/reports/fraud", params=params, headers=shop.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(r["reason"], r["mode"], r["touches"], r["orders"]) for r in body["by_rule"]] == [
        ("click_injection", "reject", 1, 1),
        ("duplicate_click_id", "flag", 1, 1),
    ]
    assert [(r["day"], r["reason"], r["content_id"]) for r in body["rows"]] == [
        ("2026-11-01", "click_injection", "v1"),
        ("2026-11-01", "duplicate_click_id", "v1"),
    ]
    csv_response = await shop.attribution.get(
        "/v1/reports/fraud", params={**params, "format": "csv"}, headers=shop.headers
    )
    assert csv_response.text.splitlines()[0] == "day,reason,mode,content_id,ad_id,touches,orders"
    assert len(csv_response.text.splitlines()) == 3
    # Outside the range of touch times: nothing.
    later = {"from": "2026-11-02T00:00:00Z", "to": "2026-11-03T00:00:00Z"}
    empty = await shop.attribution.get("/v1/reports/fraud", params=later, headers=shop.headers)
    assert empty.json()["by_rule"] == []


@pytest.mark.parametrize("mode", ["flag", "reject"])
async def test_an_ad_flooded_with_clicks_per_order_is_a_click_flood(shop: Shop, mode: str) -> None:
    await set_fraud(shop, click_flood=mode, max_clicks_per_order=3)
    # The ad takes 4 clicks that day from other users and wins no other order: 4 > 3 × 1.
    others = [touch("click", at(hours=1), user=f"bot{i}", ad="ad1", product="p1") for i in range(3)]
    await shop.events(
        touch("view", at(hours=1), product="p1", event_id="seen"),
        *others,
        touch("click", at(hours=2), ad="ad1", product="p1", event_id="ad-click"),
    )
    await shop.order(when=ORDER_AT)
    body = await attribution_of(shop)
    assert suspicious(body) == [("ad-click", "click_flood", mode)]
    credits = [c["event_id"] for c in body["credits"]]
    # Rejected, the order falls back to the view (clicks beat views only while eligible).
    assert credits == (["ad-click"] if mode == "flag" else ["seen"])


async def test_an_ad_within_its_clicks_per_order_is_clean(shop: Shop) -> None:
    await set_fraud(shop, click_flood="reject", max_clicks_per_order=4)
    await shop.events(
        *(touch("click", at(hours=1), user=f"u{i + 5}", ad="ad1", product="p1") for i in range(3)),
        touch("click", at(hours=2), ad="ad1", product="p1", event_id="ad-click"),
    )
    await shop.order(when=ORDER_AT)
    body = await attribution_of(shop)
    assert suspicious(body) == []
    assert [c["event_id"] for c in body["credits"]] == ["ad-click"]
