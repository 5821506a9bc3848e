"""``model=markov|shapley`` in the ads and contents reports, against credits worked out by hand.

Paths (channel = content, and the same with the ads a1 on v1 and a2 on v2): u1 saw v1,
clicked v2 and bought for 99.99 (o1); u2 saw v1 and bought nothing; u4 clicked v2 and bought
for 50.00 (o2). Each order's revenue is split over its own path's channels.

Markov: start→v1 2/3, start→v2 1/3, v1→v2 1/2, v1→null 1/2,
v2→conversion 1. P(v2) = 1, P(v1) = 1/2, P = 2/3·1/2 + 1/3 = 2/3. Without v1: 1/3, removal
effect 1/2; without v2: 0, effect 1. o1 splits 1/3 : 2/3 → v1 33.33, v2 66.66 (the last part
takes the remainder); o2 is all v2. v1: 1/3 order, 33.33; v2: 5/3 orders, 116.66.

Shapley: v({v1, v2}) = 1/1, v({v1}) = 0/1, v({v2}) = 1/1. In {v1, v2}: φ(v1) = ½·(0 − 0) +
½·(1 − 1) = 0, φ(v2) = ½·1 + ½·(1 − 0) = 1. v1: 0 orders, 0.00; v2: 2 orders, 149.99.
Last touch gives the same as Shapley here: v2 takes both orders.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.attribution.order_setup import Shop, at, make_shop, touch

RANGE = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}


@pytest.fixture
async def shop(catalog, attribution, make_token, tenant) -> Shop:
    shop = await make_shop(catalog, attribution, tenant, make_token(tenant, "admin"))
    await shop.events(
        touch("view", at(hours=1), content="v1", ad="a1"),
        touch("click", at(hours=2), content="v2", ad="a2", product="p2"),
        touch("view", at(hours=1), user="u2", content="v1", ad="a1"),
        touch("click", at(hours=1), user="u4", content="v2", ad="a2", product="p2"),
    )
    await shop.order(order_id="o1", when=at(hours=4), items=[("p2", 1, "99.99")])
    await shop.order(order_id="o2", user="u4", when=at(hours=3), items=[("p2", 1, "50.00")])
    return shop


async def report(shop: Shop, name: str, model: str) -> dict:
    response = await shop.attribution.get(
        f"/v1/reports/{name}", params={**RANGE, "model": model}, headers=shop.headers
    )
    assert response.status_code == 200, response.text
    body: dict = response.json()
    assert body["model"] == model
    return body


def credited(rows: list[dict], key: str) -> dict[str, tuple[float, str]]:
    return {row[key]: (row["orders"], row["gmv"]) for row in rows}


EXPECTED = {
    "markov": {"1": (pytest.approx(1 / 3, abs=1e-6), "33.33"), "2": (1.666667, "116.66")},
    "shapley": {"1": (0.0, "0.00"), "2": (2.0, "149.99")},
    "last_touch": {"2": (2.0, "149.99")},
}


@pytest.mark.parametrize("model", ["markov", "shapley", "last_touch"])
async def test_contents_report_splits_each_order_by_its_own_path(shop: Shop, model: str) -> None:
    rows = (await report(shop, "contents", model))["rows"]
    got = credited(rows, "content_id")
    want = {f"v{k}": v for k, v in EXPECTED[model].items()}
    assert {k: got[k] for k in want} == want
    # Every credited amount adds up to the revenue of the two orders, to the cent.
    assert sum(Decimal(row["gmv"]) for row in rows) == Decimal("149.99")
    assert all(Decimal(row["direct_gmv"]) == 0 for row in rows)  # videos only


@pytest.mark.parametrize("model", ["markov", "shapley"])
async def test_ads_report_splits_each_order_by_its_own_path(shop: Shop, model: str) -> None:
    body = await report(shop, "ads", model)
    got = credited(body["rows"], "ad_id")
    want = {f"a{k}": v for k, v in EXPECTED[model].items()}
    assert {k: got[k] for k in want} == want
    assert sum(Decimal(row["gmv"]) for row in body["rows"]) == Decimal("149.99")


async def test_the_timeseries_takes_rule_based_models_only(shop: Shop) -> None:
    response = await shop.attribution.get(
        "/v1/reports/timeseries",
        params={**RANGE, "model": "markov", "metric": "gmv"},
        headers=shop.headers,
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "markov" in response.json()["detail"]


async def test_an_unknown_model_names_the_data_driven_ones(shop: Shop) -> None:
    response = await shop.attribution.get(
        "/v1/reports/contents", params={**RANGE, "model": "magic"}, headers=shop.headers
    )
    assert response.status_code == 422
    assert "markov, shapley" in response.json()["detail"]
