"""The analytic store's data-driven paths equal the system of record's, path for path.

Random shops (seeded): users touching contents, ads and platforms (some touches without the
channel, several at one instant, some before the range, some after), buyers with one or two
orders (one cancelled). For every channel dimension, the paths that ClickHouse groups (users
who never bought) plus the buyers' paths built from its rows must equal the paths built in
Python from the database: the same counts, revenue and journeys. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.attribution.analytics.paths import ClickHousePathSource
from services.attribution.datadriven.repository import ChannelDimension
from services.attribution.datadriven.source import PathQuery, SqlPathSource
from tests.attribution.order_setup import T0, Shop, iso, make_shop, order_body
from tests.conftest import TokenFactory, auth

CONTENTS = ("v1", "v2")
ADS = {"ad-n": "native", "ad-p": "pre_roll", "ad-x": None}  # ad-x: not in the catalog
PLATFORMS = ("douyin", "kuaishou", None)
TYPES = ("impression", "view", "click", "like")  # like is not a touch
WINDOW = dt.timedelta(days=1)
RANGE_FROM, RANGE_TO = T0 + dt.timedelta(hours=6), T0 + dt.timedelta(hours=54)


async def _catalog_ads(shop: Shop) -> None:
    await shop.catalog.put("/v1/campaigns/c1", json={"name": "Spring"}, headers=shop.headers)
    for ad, ad_format in ADS.items():
        if ad_format is None:
            continue
        response = await shop.catalog.put(
            f"/v1/ads/{ad}",
            json={"campaign_id": "c1", "content_id": "v1", "format": ad_format},
            headers=shop.headers,
        )
        assert response.status_code in (200, 201), response.text
    response = await shop.attribution.post("/v1/sync", headers=shop.headers)
    assert response.status_code == 200, response.text


def _random_month(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for index in range(220):
        user = f"u{rng.randrange(14)}"
        # Whole half hours over 60 h: several touches of a user often share an instant.
        when = T0 + dt.timedelta(minutes=30 * rng.randrange(120))
        event: dict[str, Any] = {
            "event_id": f"e{seed}-{rng.randrange(10**6):06d}-{index}",
            "type": rng.choice(TYPES),
            "occurred_at": iso(when),
            "user_id": user,
        }
        if (content := rng.choice((*CONTENTS, None))) is not None:
            event["content_id"] = content
        if (ad := rng.choice((*ADS, None))) is not None:
            event["ad_id"] = ad
        if (platform := rng.choice(PLATFORMS)) is not None:
            event["platform"] = platform
        events.append(event)
    orders = []
    for number, buyer in enumerate(rng.sample([f"u{i}" for i in range(14)], 5)):
        for repeat in range(rng.choice((1, 2))):
            when = T0 + dt.timedelta(minutes=30 * rng.randrange(130) + 7)
            order_id = f"o{number}-{repeat}"
            orders.append(order_body(order_id=order_id, when=when, user=buyer))
            if (number, repeat) == (0, 0):  # paid, then cancelled: no path of its own
                later = when + dt.timedelta(minutes=5)
                orders.append(
                    order_body(order_id=order_id, status="cancelled", when=later, user=buyer)
                )
    return events, orders


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_analytic_paths_equal_the_databases(
    attribution_app: FastAPI,
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    make_token: TokenFactory,
    tenant: str,
    seed: int,
) -> None:
    shop = await make_shop(catalog, attribution, tenant, make_token(tenant, "admin"))
    await _catalog_ads(shop)
    events, orders = _random_month(seed)
    response = await attribution.post("/v1/events", json={"events": events}, headers=shop.headers)
    assert response.status_code == 200, response.text
    for body in orders:
        posted = await attribution.post("/v1/orders", json=body, headers=auth(shop.token))
        assert posted.status_code in (200, 201), posted.text
    dimensions: tuple[ChannelDimension, ...] = ("content", "ad", "platform", "format")
    async with attribution_app.state.read_sessionmaker() as session:
        analytic = ClickHousePathSource(session, attribution_app.state.analytics)
        for dimension in dimensions:
            query = PathQuery(tenant, dimension, RANGE_FROM, RANGE_TO, WINDOW)
            expected = await SqlPathSource(session).paths(query)
            found = await analytic.paths(query)
            assert expected.converting > 0, dimension
            assert expected.non_converting > 0, dimension
            assert found.counts == expected.counts, dimension
            assert found.journeys == expected.journeys, dimension
