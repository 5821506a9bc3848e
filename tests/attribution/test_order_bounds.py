"""Orders the database could not hold, or from the far future, are refused with 422."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.attribution.order_setup import Shop, make_shop


@pytest.fixture
async def shop(catalog, attribution, make_token, tenant) -> Shop:
    return await make_shop(catalog, attribution, tenant, make_token(tenant, "admin"))


async def test_revenue_beyond_the_stored_range_is_422_and_nothing_is_stored(shop: Shop) -> None:
    response = await shop.order(expect=422, items=[("p1", 1_000_000, "99999999999999")])
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "exceeds the largest amount" in response.text
    missing = await shop.attribution.get("/v1/orders/o1", headers=shop.headers)
    assert missing.status_code == 404


async def test_the_largest_storable_revenue_round_trips_exactly(shop: Shop) -> None:
    await shop.order(items=[("p1", 1, "99999999999999.9999")])
    stored = (await shop.attribution.get("/v1/orders/o1", headers=shop.headers)).json()
    assert stored["revenue"] == "99999999999999.9999"


@pytest.mark.parametrize("year", [2999, 9999])
async def test_an_order_far_in_the_future_is_422(shop: Shop, year: int) -> None:
    when = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    response = await shop.order(expect=422, when=when)
    assert "in the future" in response.json()["detail"]


async def test_a_refund_far_in_the_future_is_422(shop: Shop) -> None:
    await shop.order()
    response = await shop.attribution.post(
        "/v1/orders/o1/refunds",
        json={"refund_id": "r1", "occurred_at": "2999-01-01T00:00:00Z", "amount": "1.00"},
        headers=shop.headers,
    )
    assert response.status_code == 422, response.text
    assert "in the future" in response.json()["detail"]


async def test_an_offset_past_year_9999_in_utc_is_422_not_500(shop: Shop) -> None:
    body = {
        "order_id": "o1",
        "status": "paid",
        "occurred_at": "9999-12-31T23:00:00-14:00",
        "user_id": "u1",
        "currency": "CNY",
        "items": [{"product_id": "p1", "quantity": 1, "unit_price": "1.00"}],
    }
    response = await shop.attribution.post("/v1/orders", json=body, headers=shop.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
