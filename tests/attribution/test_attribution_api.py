"""Attribution through the API, with every expected figure computed by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.attribution.order_setup import Shop, at, make_shop, touch


@pytest.fixture
async def shop(catalog, attribution, make_token, tenant) -> Shop:
    return await make_shop(catalog, attribution, tenant, make_token(tenant, "admin"))


ORDER_AT = at(hours=10)


async def _three_clicks(shop: Shop) -> None:
    await shop.events(
        touch("click", at(hours=7), product="p1", click_id="c1", event_id="k1"),
        touch("click", at(hours=8), product="p1", click_id="c2", event_id="k2"),
        touch("click", at(hours=9), product="p1", click_id="c3", event_id="k3"),
    )
    await shop.order(when=ORDER_AT)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("last_touch", [("k3", "100.00")]),
        ("first_touch", [("k1", "100.00")]),
        # 100.00 / 3 = 33.333…: two touches round to 33.33, the last takes the remainder.
        ("linear", [("k1", "33.33"), ("k2", "33.33"), ("k3", "33.34")]),
        ("position_based", [("k1", "40.00"), ("k2", "20.00"), ("k3", "40.00")]),
    ],
)
async def test_each_model_splits_three_clicks_as_computed_by_hand(
    shop: Shop, model: str, expected: list[tuple[str, str]]
) -> None:
    await _three_clicks(shop)
    credits = await shop.credits("o1", model)
    assert [(c["event_id"], c["amount"]) for c in credits] == expected
    assert sum(Decimal(c["amount"]) for c in credits) == Decimal("100.00")


async def test_time_decay_weights_halve_every_seven_days(shop: Shop) -> None:
    # Clicks 7 days and 0 days before the order: raw weights 1/2 and 1, normalised 1/3 and 2/3.
    await shop.events(
        touch("click", at(hours=10, days=-7), product="p1", click_id="c1", event_id="old"),
        touch("click", ORDER_AT, product="p1", click_id="c2", event_id="new"),
    )
    await shop.order(when=ORDER_AT, items=[("p1", 1, "90.00")])
    credits = await shop.credits("o1", "time_decay")
    assert [(c["event_id"], c["amount"]) for c in credits] == [("old", "30.00"), ("new", "60.00")]
    assert credits[0]["weight"] == pytest.approx(1 / 3)
    assert credits[1]["weight"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("kind", "seconds_before", "counts"),
    [
        ("click", 7 * 86400, True),
        ("click", 7 * 86400 + 1, False),
        ("view", 86400, True),
        ("view", 86400 + 1, False),
        ("click", -1, False),  # after the order: never
    ],
)
async def test_window_edges(shop: Shop, kind: str, seconds_before: int, counts: bool) -> None:
    when = at(hours=10, seconds=-seconds_before)
    extra = {"product": "p1", "click_id": "c1"} if kind == "click" else {}
    await shop.events(touch(kind, when, event_id="edge", **extra))
    await shop.order(when=ORDER_AT)
    assert await shop.credited() == (["edge"] if counts else [])


async def test_clicks_beat_views(shop: Shop) -> None:
    await shop.events(
        touch("click", at(hours=2), product="p1", click_id="c1", event_id="clk"),
        touch("view", at(hours=9), event_id="later-view"),
        touch("view_complete", at(hours=9, minutes=30), event_id="later-complete"),
    )
    await shop.order(when=ORDER_AT)
    for model in ("last_touch", "linear"):
        assert await shop.credited("o1", model) == ["clk"]


async def test_views_count_when_there_is_no_click(shop: Shop) -> None:
    await shop.events(
        touch("impression", at(hours=8), event_id="imp"),  # not a touch
        touch("like", at(hours=8), event_id="like"),  # not a touch
        touch("view", at(hours=8), event_id="v"),
        touch("live_enter", at(hours=9), event_id="live"),
    )
    await shop.order(when=ORDER_AT)
    credits = await shop.credits("o1", "linear")
    assert [(c["event_id"], c["touch"], c["amount"]) for c in credits] == [
        ("v", "view", "50.00"),
        ("live", "view", "50.00"),
    ]


@pytest.mark.parametrize(
    ("match", "credited"),
    [
        # The default, `product`: v2 shows p2 only, so its click says nothing about a p1 line;
        # the click on v1 has no product, but v1 is linked to p1 in the catalog.
        (None, ["linked"]),
        ("product", ["linked"]),
        # `any`: every touch counts for every line, and the latest click wins.
        ("any", ["other"]),
    ],
)
async def test_the_match_setting_decides_which_touches_count_for_a_line(
    shop: Shop, match: str | None, credited: list[str]
) -> None:
    if match is not None:
        response = await shop.attribution.put(
            "/v1/settings", json={"match": match}, headers=shop.headers
        )
        assert response.json()["match"] == match
    await shop.events(
        touch("click", at(hours=8), content="v2", product="p2", click_id="c1", event_id="other"),
        touch("click", at(hours=6), content="v1", click_id="c2", event_id="linked"),
    )
    await shop.order(when=ORDER_AT)
    assert await shop.credited() == credited


async def test_a_catalog_link_synced_between_orders_counts_for_the_next_one(shop: Shop) -> None:
    # v2 shows p2 only: the first order's p1 line is organic (and v2's links are now known).
    await shop.events(
        touch("click", at(hours=6), user="u1", content="v2", click_id="c1", event_id="a"),
        touch("click", at(hours=6), user="u2", content="v2", click_id="c2", event_id="b"),
    )
    first = await shop.order(order_id="o1", user="u1", when=ORDER_AT)
    assert first.json()["credits"] == []
    # The catalog links v2 to p1 too; once synced, the next order sees the new link.
    response = await shop.catalog.put(
        "/v1/contents/v2/products/p1", json={"placement": "product_card"}, headers=shop.headers
    )
    assert response.status_code in (200, 201), response.text
    assert (await shop.attribution.post("/v1/sync", headers=shop.headers)).status_code == 200
    second = await shop.order(order_id="o2", user="u2", when=ORDER_AT)
    assert [c["event_id"] for c in second.json()["credits"]] == ["b"]


async def test_a_two_line_order_is_split_across_two_contents(shop: Shop) -> None:
    await shop.events(
        touch("click", at(hours=6), content="v1", product="p1", click_id="c1", event_id="k1"),
        touch("click", at(hours=7), content="v2", product="p2", click_id="c2", event_id="k2"),
    )
    await shop.order(
        when=ORDER_AT, items=[("p1", 1, "100.00"), ("p2", 2, "25.00"), ("p3", 1, "9.99")]
    )
    credits = await shop.credits("o1")
    assert [(c["product_id"], c["content_id"], c["amount"]) for c in credits] == [
        ("p1", "v1", "100.00"),
        ("p2", "v2", "50.00"),
    ]
    # p3 has no touch: organic, so the credits cover 150.00 of the 159.99 order.
    detail = (await shop.attribution.get("/v1/orders/o1", headers=shop.headers)).json()
    assert detail["revenue"] == "159.99"


async def test_a_late_click_changes_the_credit(shop: Shop) -> None:
    await shop.events(touch("view", at(hours=9), event_id="view"))
    first = await shop.order(when=ORDER_AT)
    assert [c["event_id"] for c in first.json()["credits"]] == ["view"]
    # The click happened before the order but reaches us afterwards.
    await shop.events(touch("click", at(hours=3), product="p1", click_id="c9", event_id="late"))
    assert await shop.credited() == ["late"]


async def test_an_order_with_only_click_ids_is_stitched_to_the_clicker(shop: Shop) -> None:
    await shop.events(
        touch("click", at(hours=5), user="viewer-9", product="p1", click_id="ck", event_id="k"),
        touch("view", at(hours=9), user="viewer-9", event_id="v-after-click"),
    )
    response = await shop.order(when=ORDER_AT, user=None, click_ids=["unknown", "ck"])
    body = response.json()
    assert body["buyer_id"] == "viewer-9"
    assert [c["event_id"] for c in body["credits"]] == ["k"]


async def test_a_click_that_arrives_after_its_order_reveals_the_buyer(shop: Shop) -> None:
    response = await shop.order(when=ORDER_AT, user=None, click_ids=["ck"])
    assert response.json()["buyer_id"] is None
    assert response.json()["credits"] == []
    await shop.events(
        touch("click", at(hours=5), user="viewer-7", product="p1", click_id="ck", event_id="k")
    )
    detail = (await shop.attribution.get("/v1/orders/o1", headers=shop.headers)).json()
    assert detail["buyer_id"] == "viewer-7"
    assert await shop.credited() == ["k"]


async def test_tenant_windows_apply_to_new_orders(shop: Shop) -> None:
    response = await shop.attribution.put(
        "/v1/settings",
        json={"click_window_seconds": 3600, "default_model": "linear"},
        headers=shop.headers,
    )
    assert response.status_code == 200
    await shop.events(
        touch("click", at(hours=8), product="p1", click_id="c1", event_id="too-old"),
        touch("click", at(hours=9, minutes=30), product="p1", click_id="c2", event_id="recent"),
    )
    body = (await shop.order(when=ORDER_AT)).json()
    assert body["model"] == "linear"
    assert [c["event_id"] for c in body["credits"]] == ["recent"]


async def test_unknown_model_is_422_listing_the_models(shop: Shop) -> None:
    await shop.order()
    response = await shop.attribution.get(
        "/v1/orders/o1/attribution", params={"model": "u_shaped"}, headers=shop.headers
    )
    assert response.status_code == 422
    assert "position_based" in response.json()["detail"]
