"""GET /v1/reports/scorecard: the 4C scorecard against a brute-force recount.

Random events, replies, orders and ad spend over two periods of three days; every metric of
every item, at every level, must equal a recount from the posted data and the orders' own
credits (GET /v1/orders/{id}/attribution), percentiles from scipy, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, get_args
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from scipy import stats

from services.attribution.reports.operations.scorecard import METRICS
from shared.vocabulary import EventType, InteractionType
from tests.attribution.order_setup import Shop, at, iso, make_shop, order_body, touch
from tests.conftest import auth, new_tenant

SHANGHAI = ZoneInfo("Asia/Shanghai")
FROM, TO = at(), at(days=3)
BEFORE = at(days=-3)
CONTENT_ACCOUNT = {"v1": "acc1", "v2": "acc1", "v3": "acc2", "live1": "acc2"}
AD_CAMPAIGN = {"ad1": "cmp1", "ad2": "cmp1", "ad3": "cmp2", "ad4": "cmp2"}
AD_CONTENT = {"ad1": "v1", "ad2": "v2", "ad3": "v3", "ad4": "live1"}
CARDS = {("v1", "p1"), ("v2", "p2")}
LIVE = (at(hours=2), at(days=2))
#: The event types of the vocabulary that a content's audience sends, less the live room's
#: presence and the conversations (replies are made apart): the random events' types, with
#: impressions and views twice as likely.
AUDIENCE = [
    t
    for t in get_args(EventType)
    if not t.startswith("live_") and t not in get_args(InteractionType)
]
TYPES = sorted([*AUDIENCE, "impression", "view"], key=AUDIENCE.index)
MONEY = {
    "cpm",
    "cpc",
    "cpa",
    "cost_per_engaged_view",
}


@pytest.fixture
async def shop(catalog, attribution, make_token, tenant) -> Shop:
    token = make_token(tenant, "admin")
    h = auth(token)
    shop = await make_shop(catalog, attribution, tenant, token)
    puts: list[tuple[str, dict[str, Any]]] = [
        ("/v1/accounts/acc2", {"platform": "kuaishou", "handle": "@two", "display_name": "Two"}),
        ("/v1/contents/v3", {"kind": "video", "account_id": "acc2", "title": "Three"}),
        (
            "/v1/contents/live1",
            {
                "kind": "live",
                "account_id": "acc2",
                "title": "Live",
                "started_at": iso(LIVE[0]),
                "ended_at": iso(LIVE[1]),
            },
        ),
        ("/v1/contents/live1/products/p1", {"placement": "pinned"}),
        ("/v1/campaigns/cmp1", {"name": "Spring"}),
        ("/v1/campaigns/cmp2", {"name": "Autumn"}),
    ]
    for ad, content in AD_CONTENT.items():
        puts.append(
            (
                f"/v1/ads/{ad}",
                {"campaign_id": AD_CAMPAIGN[ad], "content_id": content, "format": "native"},
            )
        )
    for path, body in puts:
        response = await catalog.put(path, json=body, headers=h)
        assert response.status_code == 201, response.text
    assert (await attribution.post("/v1/sync", headers=h)).status_code == 200
    response = await attribution.put("/v1/settings", json={"timezone": "Asia/Shanghai"}, headers=h)
    assert response.status_code == 200, response.text
    return shop


@dataclass
class World:
    events: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    spend: list[tuple[str, dt.date, Decimal, str]] = field(default_factory=list)
    credits: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)


def random_world(seed: int) -> World:
    rng = random.Random(seed)
    world = World()
    contents = ["v1", "v2", "v3", "live1", "v9"]
    for n in range(rng.randint(150, 260)):
        content = rng.choice(contents)
        ads = [a for a, c in AD_CONTENT.items() if c == content]
        ad = rng.choice([None, *ads]) if ads else None
        kind = rng.choice(TYPES)
        when = at(minutes=rng.randint(-3 * 24 * 60 - 120, 3 * 24 * 60 + 120))
        product = {
            "click": rng.choice([None, None, "p1", "p2"]),
            "add_to_cart": rng.choice(["p1", "p2"]),
        }.get(kind)
        event = touch(
            kind,
            when,
            user=f"u{rng.randint(0, 11)}",
            content=content,
            product=product,
            ad=ad,
            event_id=f"s{seed}e{n}",
        )
        world.events.append(event)
        if kind == "comment":
            for k in range(rng.choice([0, 1, 1, 2])):
                reply = when + dt.timedelta(minutes=rng.randint(0, 30 * 60))
                world.events.append(
                    {
                        "event_id": f"s{seed}e{n}r{k}",
                        "type": "reply",
                        "occurred_at": iso(reply),
                        "user_id": "creator",
                        "reply_to": event["event_id"],
                        "account_id": CONTENT_ACCOUNT.get(content, "acc1"),
                    }
                )
    for n in range(rng.randint(10, 18)):
        items = [
            (p, rng.randint(1, 3), rng.choice(["19.90", "100.00", "7.33"])) for p in ("p1", "p2")
        ]
        world.orders.append(
            order_body(
                order_id=f"s{seed}o{n}",
                when=at(minutes=rng.randint(-3 * 24 * 60 + 600, 3 * 24 * 60 - 10)),
                user=f"u{rng.randint(0, 11)}",
                items=rng.sample(items, rng.randint(1, 2)),
            )
        )
    # One sure sale in the live room while it is live.
    world.events.append(touch("click", at(hours=3), user="fan", content="live1", ad="ad4"))
    world.orders.append(order_body(order_id=f"s{seed}live", when=at(hours=5), user="fan"))
    for ad in AD_CONTENT:
        for offset in range(-4, 5):
            day = dt.date(2026, 11, 1) + dt.timedelta(days=offset)
            if rng.random() < 0.7 and (ad, day) != ("ad3", dt.date(2026, 11, 3)):
                amount = Decimal(rng.randint(0, 50_000)) / 100
                world.spend.append((ad, day, amount, "CNY"))
    world.spend.append(("ad3", dt.date(2026, 11, 3), Decimal("9.99"), "USD"))
    return world


async def post_world(shop: Shop, world: World) -> None:
    for i in range(0, len(world.events), 500):
        await shop.events(*world.events[i : i + 500])
    for body in world.orders:
        response = await shop.attribution.post("/v1/orders", json=body, headers=shop.headers)
        assert response.status_code == 201, response.text
    for ad, day, amount, currency in world.spend:
        response = await shop.catalog.put(
            f"/v1/ads/{ad}/spend/{day.isoformat()}",
            json={"amount": str(amount), "currency": currency},
            headers=shop.headers,
        )
        assert response.status_code == 201, response.text
    assert (await shop.attribution.post("/v1/sync", headers=shop.headers)).status_code == 200
    for body in world.orders:
        for model in ("last_touch", "first_touch"):
            world.credits[body["order_id"], model] = await shop.credits(body["order_id"], model)


# --- the reference --------------------------------------------------------------------------


def item_of(level: str, content: str | None, ad: str | None) -> str | None:
    if level == "content":
        return content
    if level == "account":
        return CONTENT_ACCOUNT.get(content or "")
    return AD_CAMPAIGN.get(ad or "")


def money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def ratio(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def recount(world: World, level: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Every item's metrics over ``[start, end)``, straight from the posted data."""
    counts: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    when = {e["event_id"]: dt.datetime.fromisoformat(e["occurred_at"]) for e in world.events}
    first_reply: dict[str, dt.datetime] = {}
    for e in world.events:
        if e["type"] == "reply":
            t = when[e["event_id"]]
            first_reply[e["reply_to"]] = min(first_reply.get(e["reply_to"], t), t)
    carting: defaultdict[str, set[str]] = defaultdict(set)
    replies: defaultdict[str, list[float]] = defaultdict(list)
    for e in world.events:
        item = item_of(level, e.get("content_id"), e.get("ad_id"))
        t = when[e["event_id"]]
        if item is None or e["type"] == "reply" or not start <= t < end:
            continue
        counts[item][e["type"]] += 1
        if e["type"] == "add_to_cart":
            carting[item].add(e["user_id"])
        if e["type"] == "comment" and e["event_id"] in first_reply:
            replies[item].append(max(0.0, (first_reply[e["event_id"]] - t).total_seconds()))
    gmv: defaultdict[str, Decimal] = defaultdict(Decimal)
    direct: defaultdict[str, Decimal] = defaultdict(Decimal)
    orders: defaultdict[str, float] = defaultdict(float)
    card: defaultdict[str, float] = defaultdict(float)
    to_order: defaultdict[str, list[float]] = defaultdict(list)
    buyers: defaultdict[str, set[str]] = defaultdict(set)
    for body in world.orders:
        paid = dt.datetime.fromisoformat(body["occurred_at"])
        if not start <= paid < end:
            continue
        lines = {i["product_id"]: i["quantity"] * Decimal(i["unit_price"]) for i in body["items"]}
        revenue = sum(lines.values(), Decimal(0))
        firsts = world.credits[body["order_id"], "first_touch"]
        first = min(dt.datetime.fromisoformat(c["occurred_at"]) for c in firsts) if firsts else None
        credited: set[str] = set()
        for c in world.credits[body["order_id"], "last_touch"]:
            item = item_of(level, c["content_id"], c["ad_id"])
            if item is None:
                continue
            credited.add(item)
            share = float(lines[c["product_id"]] / revenue) * c["weight"]
            gmv[item] += Decimal(c["amount"])
            orders[item] += share
            if c["content_id"] == "live1" and LIVE[0] <= paid <= LIVE[1]:
                direct[item] += Decimal(c["amount"])
            if c["touch"] == "click" and (c["content_id"], c["product_id"]) in CARDS:
                card[item] += share
        for item in credited:
            buyers[item].add(body["user_id"])
            if first is not None:
                to_order[item].append((paid - first).total_seconds())
    spend: defaultdict[str, Decimal] = defaultdict(Decimal)
    spent: set[str] = set()
    for ad, day, amount, currency in world.spend:
        midnight = dt.datetime.combine(day, dt.time(0), tzinfo=SHANGHAI)
        item = item_of(level, AD_CONTENT[ad], ad)
        if item is None or not start <= midnight < end:
            continue
        spent.add(item)
        if currency == "CNY":
            spend[item] += amount
    result = {}
    for item in set(counts) | set(gmv) | spent:
        c = counts[item]
        engaged = c["like"] + c["comment"] + c["share"]
        s = spend[item]
        o = round(orders[item], 6)

        def cost(denominator: float, per: int = 1, s: Decimal = s) -> Decimal | None:
            return None if denominator == 0 else money(s * per / Decimal(repr(denominator)))

        result[item] = {
            "completion_rate": ratio(c["view_complete"], c["view"]),
            "engagement_rate": ratio(engaged, c["view"]),
            "follow_rate": ratio(c["follow"], c["view"]),
            "click_rate": ratio(c["click"], c["impression"]),
            "cpm": cost(c["impression"], 1000),
            "cpc": cost(c["click"]),
            "cpa": cost(o),
            "cost_per_engaged_view": cost(engaged),
            "roas": None if s == 0 else float(gmv[item] / s),
            "cart_to_order_rate": ratio(len(carting[item] & buyers[item]), len(carting[item])),
            "median_seconds_to_order": (
                float(np.median(to_order[item])) if to_order[item] else None
            ),
            "direct_gmv_share": None if gmv[item] == 0 else float(direct[item] / gmv[item]),
            "product_card_order_share": ratio(round(card[item], 6), o),
            "comment_reply_rate": ratio(len(replies[item]), c["comment"]),
            "median_reply_seconds": float(np.median(replies[item])) if replies[item] else None,
            "comments_per_1000_views": ratio(c["comment"] * 1000, c["view"]),
            "share_rate": ratio(c["share"], c["view"]),
        }
    return result


def same(got: Any, expected: Any, is_money: bool) -> bool:
    if expected is None or got is None:
        return got is None and expected is None
    if is_money:
        return bool(Decimal(got) == expected)
    return bool(got == pytest.approx(expected, rel=1e-9, abs=1e-12))


def flat(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: score
        for group in ("consumer", "cost", "convenience", "communication")
        for name, score in item[group].items()
    }


async def scorecard(shop: Shop, **params: Any) -> Any:
    query = {"from": iso(FROM), "to": iso(TO)} | params
    return await shop.attribution.get("/v1/reports/scorecard", params=query, headers=shop.headers)


@pytest.mark.parametrize("seed", [11, 12])
async def test_every_metric_equals_a_recount_at_every_level(shop: Shop, seed: int) -> None:
    world = random_world(seed)
    await post_world(shop, world)
    nonzero: set[str] = set()
    for level in ("content", "account", "campaign"):
        response = await scorecard(shop, level=level)
        assert response.status_code == 200, response.text
        body = response.json()
        now = recount(world, level, FROM, TO)
        before = recount(world, level, BEFORE, FROM)
        assert body["currency"] == "CNY"
        assert body["previous_from"] == BEFORE.isoformat().replace("+00:00", "Z")
        assert [item["id"] for item in body["items"]] == sorted(now)
        assert any("USD" in w for w in body["warnings"])
        for item in body["items"]:
            scores = flat(item)
            expected = now[item["id"]]
            assert set(scores) == set(expected)
            for name, score in scores.items():
                is_money = name in MONEY
                assert same(score["value"], expected[name], is_money), (level, item["id"], name)
                if expected[name]:
                    nonzero.add(name)
                previous = before.get(item["id"], {}).get(name)
                assert same(score["previous"], previous, is_money), (level, item["id"], name)
                population = [v[name] for v in now.values() if v[name] is not None]
                if expected[name] is None:
                    assert score["percentile"] is None
                else:
                    rank = stats.percentileofscore(
                        [float(v) for v in population], float(expected[name]), kind="mean"
                    )
                    assert score["percentile"] == pytest.approx(rank)
                if expected[name] is None or not previous:
                    assert score["change"] is None
                else:
                    wanted = float((expected[name] - previous) / abs(previous))
                    assert score["change"] == pytest.approx(wanted)
    # The random data exercises every metric with a value other than 0 or null.
    assert nonzero == {spec.name for spec in METRICS}


async def test_names_and_null_ratios(shop: Shop) -> None:
    await shop.events(touch("impression", at(hours=1), content="v3"))
    body = (await scorecard(shop, level="account")).json()
    assert [(i["id"], i["name"]) for i in body["items"]] == [("acc2", "Two")]
    scores = flat(body["items"][0])
    # One impression and nothing else: only the click rate and CPM have a denominator.
    assert scores["click_rate"] == {
        "value": 0.0,
        "percentile": 50.0,
        "previous": None,
        "change": None,
    }
    assert {name for name, s in scores.items() if s["value"] is not None} == {"click_rate", "cpm"}
    assert scores["cpm"]["value"] == "0.00"


async def test_csv_has_one_row_per_item_and_metric(shop: Shop) -> None:
    world = random_world(5)
    await post_world(shop, world)
    body = (await scorecard(shop, level="campaign")).json()
    response = await scorecard(shop, level="campaign", format="csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 17 * len(body["items"])
    first = body["items"][0]
    cpm = next(r for r in rows if r["id"] == first["id"] and r["metric"] == "cpm")
    assert cpm["group"] == "cost"
    assert cpm["value"] == (first["cost"]["cpm"]["value"] or "")
    assert list(rows[0]) == [
        "id",
        "name",
        "group",
        "metric",
        "value",
        "percentile",
        "previous",
        "change",
    ]


async def test_another_tenant_sees_none_of_it(shop: Shop, attribution, make_token) -> None:
    await post_world(shop, random_world(3))
    other = auth(make_token(new_tenant(), "reports:read"))
    response = await attribution.get(
        "/v1/reports/scorecard",
        params={"from": iso(FROM), "to": iso(TO), "level": "content"},
        headers=other,
    )
    assert response.status_code == 200
    assert response.json()["items"] == []
    assert (await scorecard(shop)).json()["items"] != []


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"level": "shop"}, "level"),
        ({"format": "xml"}, "format"),
        ({"from": "2026-11-01"}, "from"),
        ({"from": iso(TO), "to": iso(FROM)}, "from"),
    ],
)
async def test_bad_queries_are_422_naming_the_parameter(
    shop: Shop, params: dict[str, str], named: str
) -> None:
    response = await scorecard(shop, **params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert named in response.json()["detail"]


def test_reference_helpers_agree_with_scipy() -> None:
    from services.attribution.reports.operations.scorecard import change, percentile_rank

    rng = random.Random(0)
    for _ in range(50):
        values = [rng.choice([0.1, 0.2, 0.5, 1.0, 2.0]) for _ in range(rng.randint(1, 9))]
        probe = rng.choice(values)
        got = percentile_rank(probe, values)
        assert got == pytest.approx(stats.percentileofscore(values, probe, kind="mean"))
    assert change(1.5, 1.0) == pytest.approx(0.5)
    assert change(Decimal("1"), Decimal("-2")) == pytest.approx(1.5)
    assert change(1.0, 0.0) is None
    assert change(None, 1.0) is None
