"""The new-order path on the driver stores what the general path stores, and bursts queue.

A ``paid`` post for an unknown order takes the driver path (one probe, one read of the touches,
one write); ``created`` then ``paid`` takes the general path (the locked ORM row, the credit
service). The same buyer, touches and items must give the same credits under every model,
the same fraud verdicts and the same lines.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.attribution.credit.engine import MODELS
from tests.attribution.order_setup import Shop, at, make_shop, order_body, touch


@pytest.fixture
async def shop(catalog, attribution, make_token, tenant) -> Shop:
    return await make_shop(catalog, attribution, tenant, make_token(tenant, "admin"))


async def _attribution(shop: Shop, order_id: str, model: str) -> dict[str, Any]:
    response = await shop.attribution.get(
        f"/v1/orders/{order_id}/attribution", params={"model": model}, headers=shop.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    body.pop("order_id")
    return body


async def _order(shop: Shop, order_id: str) -> dict[str, Any]:
    response = await shop.attribution.get(f"/v1/orders/{order_id}", headers=shop.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    for key in ("order_id", "created_at", "updated_at", "ordered_at", "refunds"):
        body.pop(key)
    return body


async def test_a_new_paid_order_is_stored_as_the_general_path_stores_it(shop: Shop) -> None:
    response = await shop.attribution.put(
        "/v1/settings",
        json={"fraud": {"duplicate_click_id": "flag", "click_injection": "flag"}},
        headers=shop.headers,
    )
    assert response.status_code == 200, response.text
    await shop.events(
        touch("view", at(hours=1), content="v1", event_id="view-1"),
        touch("click", at(hours=2), product="p1", click_id="c1", ad="ad1", event_id="clk-1"),
        # The same click id reported for another user: a suspicious touch.
        touch("click", at(hours=2.5), user="u9", product="p1", click_id="c1", event_id="clk-9"),
        touch("click", at(hours=3), content="v2", click_id="c2", event_id="clk-2"),
        touch("view", at(hours=3.5), content="live1", event_id="view-2"),
        touch("click", at(hours=4, seconds=-3), product="p2", click_id="c3", event_id="clk-3"),
    )
    items = [("p1", 2, "30.00"), ("p2", 1, "19.99"), ("p1", 1, "0.01")]
    when = at(hours=4)
    driver = await shop.order(order_id="fast", when=when, items=items, click_ids=["c2", "c2"])
    await shop.order(
        order_id="slow", status="created", when=at(hours=3.9), items=items, click_ids=["c2"]
    )
    general = await shop.order(
        order_id="slow", when=when, items=items, click_ids=["c2"], expect=201
    )

    fast_answer, slow_answer = driver.json(), general.json()
    assert fast_answer.pop("order_id") == "fast"
    assert slow_answer.pop("order_id") == "slow"
    assert fast_answer == slow_answer
    assert fast_answer["credits"], "the order is credited"
    for model in MODELS:
        assert await _attribution(shop, "fast", model) == await _attribution(shop, "slow", model)
    suspicious = (await _attribution(shop, "fast", "last_touch"))["suspicious_touches"]
    assert {(s["event_id"], s["reason"]) for s in suspicious} >= {
        ("clk-1", "duplicate_click_id"),
        ("clk-3", "click_injection"),
    }
    fast_order, slow_order = await _order(shop, "fast"), await _order(shop, "slow")
    assert fast_order == slow_order
    assert fast_order["click_ids"] == ["c2"]
    assert [line["revenue"] for line in fast_order["lines"]] == ["60.00", "19.99", "0.01"]


async def test_a_burst_of_new_orders_is_answered_in_full(shop: Shop) -> None:
    """More posts at once than reach the database at once: the rest queue, none fails."""
    buyers = [f"b{index}" for index in range(24)]
    await shop.events(
        *(
            touch("click", at(hours=1), user=buyer, product="p1", event_id=f"clk-{buyer}")
            for buyer in buyers
        )
    )
    responses = await asyncio.gather(
        *(
            shop.attribution.post(
                "/v1/orders",
                json=order_body(order_id=f"o-{buyer}", user=buyer),
                headers=shop.headers,
            )
            for buyer in buyers
        )
    )
    assert [r.status_code for r in responses] == [201] * len(buyers)
    for buyer, response in zip(buyers, responses, strict=True):
        assert [c["event_id"] for c in response.json()["credits"]] == [f"clk-{buyer}"]
        assert await shop.credited(f"o-{buyer}") == [f"clk-{buyer}"]
