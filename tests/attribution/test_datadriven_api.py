"""GET /v1/attribution/data-driven on a small shop, against credits worked out by hand.

Paths (channel = content): u1 saw v1, clicked v2 and bought for 100.00; u2 saw v1; u3
clicked v2. Markov: start→v1 2/3, start→v2 1/3, v1→v2 1/2, v1→null 1/2, v2→conversion 1/2.
P = 2/3·1/4 + 1/3·1/2 = 1/3; without v1 P = 1/6 (effect 1/2), without v2 P = 0 (effect 1):
v2 gets 2/3 of the conversion and 66.67, v1 1/3 and 33.33. Shapley: v({v1,v2}) = 1 and
v({v1}) = v({v2}) = 0, so each gets half.
"""

from __future__ import annotations

import csv
import io

import pytest

from tests.attribution.order_setup import Shop, at, make_shop, touch

RANGE = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}


@pytest.fixture
async def shop(catalog, attribution, make_token, tenant) -> Shop:
    shop = await make_shop(catalog, attribution, tenant, make_token(tenant, "admin"))
    await shop.events(
        touch("view", at(hours=1), content="v1"),
        touch("click", at(hours=2), content="v2", product="p1"),
        touch("view", at(hours=1), user="u2", content="v1"),
        touch("click", at(hours=1), user="u3", content="v2", product="p1"),
    )
    await shop.order(when=at(hours=4))
    return shop


async def get(shop: Shop, **params: str):
    return await shop.attribution.get(
        "/v1/attribution/data-driven", params={**RANGE, **params}, headers=shop.headers
    )


async def test_markov_credits_match_the_hand_solution(shop: Shop) -> None:
    response = await get(shop, method="markov")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["converting_paths"], body["non_converting_paths"]) == (1, 2)
    assert body["p_conversion"] == pytest.approx(1 / 3)
    assert body["currency"] == "CNY"
    assert [
        (c["channel"], c["removal_effect"], c["conversions"], c["revenue"])
        for c in body["channels"]
    ] == [
        ("v2", 1.0, pytest.approx(2 / 3, abs=1e-6), "66.67"),
        ("v1", 0.5, pytest.approx(1 / 3, abs=1e-6), "33.33"),
    ]
    assert body["top_paths"][0] == {"path": "v1 > v2", "conversions": 1, "non_conversions": 0}


async def test_markov_order_2_from_the_query_string(shop: Shop) -> None:
    # Order 2: the paths are the states (v1, v2) → conversion, (v1) → null, (v2) → null;
    # removing either channel sends (v1, v2) to null, so both effects are 1 and split evenly.
    response = await get(shop, method="markov", order="2")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["order"] == 2
    assert body["p_conversion"] == pytest.approx(1 / 3)
    assert [(c["channel"], c["removal_effect"], c["revenue"]) for c in body["channels"]] == [
        ("v1", 1.0, "50.00"),
        ("v2", 1.0, "50.00"),
    ]


async def test_shapley_splits_the_pair_evenly(shop: Shop) -> None:
    body = (await get(shop, method="shapley")).json()
    assert [(c["channel"], c["conversions"], c["revenue"]) for c in body["channels"]] == [
        ("v1", 0.5, "50.00"),
        ("v2", 0.5, "50.00"),
    ]
    assert all(c["removal_effect"] is None for c in body["channels"])


async def test_csv(shop: Shop) -> None:
    response = await get(shop, method="markov", format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["channel"], r["revenue"]) for r in rows] == [("v2", "66.67"), ("v1", "33.33")]


async def test_another_tenant_sees_nothing(shop: Shop, make_token) -> None:
    from tests.conftest import auth, new_tenant

    other = new_tenant()
    response = await shop.attribution.get(
        "/v1/attribution/data-driven",
        params=RANGE,
        headers=auth(make_token(other, "reports:read")),
    )
    assert response.status_code == 200
    assert response.json()["channels"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"method": "random"},
        {"channel": "campaign"},
        {"order": "4"},
        {"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        {"from": "2026-11-01T00:00:00"},
        {"to": "9999-12-31T23:00:00-14:00"},
    ],
)
async def test_bad_queries_are_422_problems(shop: Shop, params: dict[str, str]) -> None:
    response = await get(shop, **params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
