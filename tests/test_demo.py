"""The demo month: the pure generator's shape and validity, the posting flow, and end to end."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from services.catalog.accounts.schemas import AccountIn
from services.catalog.ads.schemas import AdIn, AdSpendIn
from services.catalog.campaigns.schemas import CampaignIn
from services.catalog.contents.schemas import ContentIn, ContentProductIn
from services.catalog.products.schemas import ProductIn
from services.catalog.tracking_links.schemas import TrackingLinkIn
from services.demo import DemoError, Month, demo_anchor, generate, load_demo
from services.demo.timeline import DAY, HOUR, TZ
from shared.schemas import ID_PATTERN
from shared.vocabulary import PLATFORMS as API_PLATFORMS

NOW = dt.datetime(2025, 3, 15, 9, 30, tzinfo=dt.UTC)
ANCHOR = demo_anchor(NOW)
ID = re.compile(ID_PATTERN)
PLATFORMS = API_PLATFORMS - {"other"}
EVENT_TYPES = {
    "impression", "view", "view_complete", "like", "comment", "share", "follow",
    "click", "add_to_cart", "live_enter", "live_exit",
}  # fmt: skip
EVENT_FIELDS = {
    "event_id", "type", "occurred_at", "user_id", "content_id", "product_id", "ad_id",
    "click_id", "session_id", "platform", "properties",
}  # fmt: skip


@pytest.fixture(scope="module")
def demo() -> Month:
    """The default-size demo, generated once for the module."""
    return generate(7, 100_000, ANCHOR)


def parse(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    assert value.tzinfo is not None, f"naive timestamp {text}"
    return value


# --- the pure generator ----------------------------------------------------------------


def test_anchor_is_midnight_in_the_tenant_timezone() -> None:
    # 17:00 UTC is already the next day in Shanghai.
    anchor = demo_anchor(dt.datetime(2025, 3, 15, 17, 0, tzinfo=dt.UTC))
    assert anchor.isoformat() == "2025-03-16T00:00:00+08:00"
    assert demo_anchor(NOW).isoformat() == "2025-03-15T00:00:00+08:00"


def test_same_seed_same_data_other_seed_other_data() -> None:
    one, two = generate(3, 4_000, ANCHOR), generate(3, 4_000, ANCHOR)
    assert [e.body() for e in one.events] == [e.body() for e in two.events]
    assert [o.status_bodies() for o in one.orders] == [o.status_bodies() for o in two.orders]
    assert one.world == two.world
    other = generate(4, 4_000, ANCHOR)
    assert [e.body() for e in other.events] != [e.body() for e in one.events]


@pytest.mark.parametrize("count", [0, 1, 2_000, 3_001])
def test_exactly_the_requested_number_of_events(count: int) -> None:
    data = generate(7, count, ANCHOR)
    assert len(data.events) == count
    assert len({e.event_id for e in data.events}) == count


def test_ids_depend_on_seed_and_day_so_reruns_elsewhere_do_not_collide() -> None:
    today, tomorrow = generate(7, 500, ANCHOR), generate(7, 500, ANCHOR + dt.timedelta(days=1))
    assert not {e.event_id for e in today.events} & {e.event_id for e in tomorrow.events}
    assert {a.id for a in today.world.ads} == {a.id for a in tomorrow.world.ads}


def test_catalog_shape_and_bodies_valid_for_the_catalog_api(demo: Month) -> None:
    cat = demo.world
    assert len(cat.accounts) == 8
    assert {a.platform for a in cat.accounts} == set(PLATFORMS)
    kinds = Counter(c.kind for c in cat.contents)
    assert kinds == {"video": 50, "live": 5}
    assert len(cat.products) == 30
    assert len(cat.campaigns) == 4
    assert {ad.format for ad in cat.ads} == {"native", "pre_roll", "overlay", "banner"}
    products = {p.id: p for p in cat.products}
    links = {(k.content_id, k.product_id): k for k in cat.links}
    for ad in cat.ads:
        # Every ad runs on a content with a product it links.
        assert (ad.content_id, ad.product_id) in links
        if ad.format == "native":
            assert links[ad.content_id, ad.product_id].placement == "native_ad"
    for content in cat.contents:
        assert content.published_us < demo.end_us
        assert any(k.content_id == content.id for k in cat.links)
        if content.kind == "live":
            assert content.started_us is not None
            assert content.ended_us is not None
            assert 2 <= (content.ended_us - content.started_us) / HOUR <= 4
            assert demo.start_us <= content.started_us < content.ended_us <= demo.end_us
            pinned = [k for k in cat.links if k.content_id == content.id]
            assert pinned
            for link in pinned:
                assert link.placement == "pinned"
                assert link.starts_us is not None
                assert link.ends_us is not None
                assert content.started_us <= link.starts_us < link.ends_us <= content.ended_us
    first_day = demo.start.astimezone(TZ).date()
    last_day = (demo.end - dt.timedelta(days=1)).astimezone(TZ).date()
    assert cat.spend
    for spend in cat.spend:
        assert first_day <= spend.day <= last_day
        assert spend.amount > 0
    assert len({(s.ad_id, s.day) for s in cat.spend}) == len(cat.spend)

    # Every body passes the catalog's own input schemas, and every id the id rule.
    schemas: list[tuple[type[BaseModel], Sequence[Any]]] = [
        (AccountIn, cat.accounts),
        (ContentIn, cat.contents),
        (ContentProductIn, cat.links),
        (CampaignIn, cat.campaigns),
        (AdIn, cat.ads),
        (AdSpendIn, cat.spend),
        (TrackingLinkIn, cat.tracking_links),
    ]
    for schema, objects in schemas:
        for item in objects:
            schema.model_validate(item.body())
    for product in cat.products:
        body = ProductIn.model_validate(product.body())
        assert body.currency == "CNY"
        assert body.price > 0
    assert all(tracking.product_id in products for tracking in cat.tracking_links)
    ids = [
        *(a.id for a in cat.accounts),
        *(p.id for p in cat.products),
        *(c.id for c in cat.contents),
        *(c.id for c in cat.campaigns),
        *(a.id for a in cat.ads),
    ]
    assert all(ID.match(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_every_event_is_valid_per_the_contract(demo: Month) -> None:
    cat = demo.world
    contents = {c.id: c for c in cat.contents}
    platform_of = {a.id: a.platform for a in cat.accounts}
    products = {p.id for p in cat.products}
    ads = {a.id for a in cat.ads}
    latest = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    click_ids: list[str] = []
    for index in range(0, len(demo.events), 1_000):
        batch = [e.body() for e in demo.events[index : index + 1_000]]
        assert len(orjson.dumps({"events": batch})) <= 1 << 20
        for body in batch:
            assert set(body) <= EVENT_FIELDS
            assert body["type"] in EVENT_TYPES
            assert ID.match(body["event_id"])
            at = parse(body["occurred_at"])
            assert at < demo.end
            assert at < latest
            assert at >= demo.start
            assert 1 <= len(body["user_id"]) <= 128
            assert re.fullmatch(r"[0-9a-f]{64}", body["user_id"])  # a SHA-256 hex, no PII
            if body["type"] == "add_to_cart":
                assert body["product_id"] in products
            elif body["type"] != "follow":
                assert body["content_id"] in contents
            content = contents[body["content_id"]]
            assert body["platform"] == platform_of[content.account_id]
            assert body["platform"] in PLATFORMS
            for field in ("product_id", "click_id", "ad_id", "session_id"):
                if field in body:
                    assert ID.match(body[field])
            if "product_id" in body:
                assert body["product_id"] in products
            if "ad_id" in body:
                assert body["ad_id"] in ads
            if "properties" in body:
                assert isinstance(body["properties"], dict)
                assert len(orjson.dumps(body["properties"])) <= 4096
            if body["type"] == "click":
                assert "product_id" in body
                click_ids.append(body["click_id"])
            if body["type"] == "view":
                assert body["properties"]["watch_seconds"] >= 0
    assert len(click_ids) == len(set(click_ids))
    assert [e.occurred_at for e in demo.events] == sorted(e.occurred_at for e in demo.events)


def test_funnel_drops_off_like_real_traffic(demo: Month) -> None:
    counts = Counter(e.type for e in demo.events)
    impressions, views, clicks = counts["impression"], counts["view"], counts["click"]
    assert impressions > views > counts["view_complete"] > clicks > counts["add_to_cart"]
    assert counts["add_to_cart"] > len(demo.orders) > 0
    assert 0.3 < views / impressions < 0.5
    assert 0.03 <= clicks / views <= 0.06
    assert 0.2 < counts["add_to_cart"] / clicks < 0.4
    assert counts["live_enter"] == counts["live_exit"] > 0
    for kind in ("like", "comment", "share"):
        assert 0 < counts[kind] < 0.1 * views

    # Sessions served a native ad click more than organic ones.
    views_by: Counter[str] = Counter()
    clicks_by: Counter[str] = Counter()
    fmt = {a.id: a.format for a in demo.world.ads}
    for event in demo.events:
        key = fmt[event.ad_id] if event.ad_id else "organic"
        if event.type == "view":
            views_by[key] += 1
        elif event.type == "click":
            clicks_by[key] += 1
    assert clicks_by["native"] / views_by["native"] > clicks_by["organic"] / views_by["organic"]

    # Popularity is skewed: the top content draws far more impressions than the median one.
    per_content = sorted(
        Counter(e.content_id for e in demo.events if e.type == "impression").values()
    )
    assert per_content[-1] > 5 * per_content[len(per_content) // 2]

    # Small demos keep the same shape.
    small = Counter(e.type for e in generate(7, 2_000, ANCHOR).events)
    assert small["impression"] > small["view"] > small["click"] > 0


def test_live_events_stay_inside_live_windows(demo: Month) -> None:
    lives = {c.id: c for c in demo.world.contents if c.kind == "live"}
    seen = 0
    for event in demo.events:
        if event.type in ("live_enter", "live_exit"):
            assert event.content_id in lives
        if event.content_id in lives:
            live = lives[event.content_id]
            assert live.started_us is not None
            assert live.ended_us is not None
            assert live.started_us <= event.t_us <= live.ended_us
            seen += 1
    assert seen > 0


def test_orders_follow_their_events_and_reference_the_catalog(demo: Month) -> None:
    cat = demo.world
    price = {p.id: p.price for p in cat.products}
    events = {e.event_id: e for e in demo.events}
    clicks = {e.click_id: e for e in demo.events if e.type == "click"}
    linked = {(k.content_id, k.product_id) for k in cat.links}
    by_user: dict[str, list[Any]] = {}
    for event in demo.events:
        by_user.setdefault(event.user_id, []).append(event)
    order_ids = [o.order_id for o in demo.orders]
    assert len(order_ids) == len(set(order_ids))
    assert all(ID.match(i) for i in order_ids)
    for order in demo.orders:
        assert 1 <= len(order.items) <= 3
        assert len({i.product_id for i in order.items}) == len(order.items)
        for item in order.items:
            assert item.product_id in price
            assert item.unit_price == price[item.product_id]
            assert item.quantity >= 1
        assert order.user_id is not None or order.click_ids
        source = events[order.source_event_id]
        assert order.created_us is not None
        assert source.t_us < order.created_us < order.paid_us < demo.end_us
        for click_id in order.click_ids:
            assert clicks[click_id].t_us < order.created_us
        if order.user_id is not None and order.click_ids:
            assert all(clicks[c].user_id == order.user_id for c in order.click_ids)
        if order.via == "view":
            # A view-through: the buyer watched a content linked to the product within 24h.
            assert order.user_id is not None
            assert not order.click_ids
            assert source.type in ("view", "live_enter")
            assert source.user_id == order.user_id
            assert order.paid_us - DAY <= source.t_us
            assert (source.content_id, order.items[0].product_id) in linked
        bodies = order.status_bodies()
        assert [b["status"] for b in bodies][:2] == ["created", "paid"]
        for body in bodies:
            assert body["currency"] == "CNY"
            parse(body["occurred_at"])
        if order.cancelled_us is not None:
            assert order.paid_us < order.cancelled_us < demo.end_us
            assert order.refund is None
        if (refund := order.refund) is not None:
            assert order.paid_us < refund.at_us < demo.end_us
            if refund.items is not None:
                quantities = {i.product_id: i.quantity for i in order.items}
                assert all(0 < q <= quantities[p] for p, q in refund.items)
            else:
                assert refund.amount is not None
                assert Decimal(0) < refund.amount < order.revenue
    via = Counter(o.via for o in demo.orders)
    assert via["click"] > via["view"] > 0
    assert any(o.user_id is None for o in demo.orders)  # stitched through click_ids only
    assert any(o.user_id and o.click_ids for o in demo.orders)
    assert any(o.cancelled_us for o in demo.orders)
    refunds = [o.refund for o in demo.orders if o.refund is not None]
    assert any(r.full for r in refunds)
    assert any(not r.full and r.items for r in refunds)
    assert any(r.amount for r in refunds)
    assert 0.02 < sum(o.cancelled_us is not None for o in demo.orders) / len(demo.orders) < 0.1


def _last_touch_gmv_by_ad(month: Month) -> dict[str, Decimal]:
    """Brute force: each order line to its buyer's latest click on the product (own or a
    content linked to it) within 7 days, else latest such view within 24 hours."""
    linked = {(k.content_id, k.product_id) for k in month.world.links}
    buyer = {e.click_id: e.user_id for e in month.events if e.click_id}
    by_user: dict[str, list[Any]] = {}
    for event in month.events:
        by_user.setdefault(event.user_id, []).append(event)
    gmv: dict[str, Decimal] = {}
    for order in month.orders:
        if order.cancelled_us is not None or (order.refund and order.refund.full):
            continue
        user = order.user_id or next(buyer[c] for c in order.click_ids if c in buyer)
        for item in order.items:
            best: tuple[int, int, str, Any] | None = None
            for e in by_user.get(user, ()):
                kind = 1 if e.type == "click" else 0
                window = 7 * DAY if kind else DAY
                if e.type not in ("click", "view", "view_complete", "live_enter"):
                    continue
                if not order.paid_us - window <= e.t_us <= order.paid_us:
                    continue
                placed = (e.content_id, item.product_id) in linked
                if e.product_id != item.product_id and not placed:
                    continue
                key = (kind, e.t_us, e.event_id, e)
                if best is None or key[:3] > best[:3]:
                    best = key
            if best is not None and best[3].ad_id is not None:
                ad = best[3].ad_id
                gmv[ad] = gmv.get(ad, Decimal(0)) + item.revenue
    return gmv


@pytest.mark.parametrize("events", [30_000, 100_000, 250_000])
def test_ad_spend_follows_traffic_so_each_format_earns_a_plausible_roas(events: int) -> None:
    month = generate(7, events, ANCHOR)
    fmt: dict[str, str] = {ad.id: ad.format for ad in month.world.ads}
    spend: dict[str, Decimal] = {}
    for day in month.world.spend:
        spend[fmt[day.ad_id]] = spend.get(fmt[day.ad_id], Decimal(0)) + day.amount
    gmv: dict[str, Decimal] = {}
    for ad_id, amount in _last_touch_gmv_by_ad(month).items():
        gmv[fmt[ad_id]] = gmv.get(fmt[ad_id], Decimal(0)) + amount
    served = [e for e in month.events if e.ad_id]
    impressions = Counter(fmt[e.ad_id] for e in served if e.type == "impression")
    clicks = Counter(fmt[e.ad_id] for e in served if e.type == "click")
    roas = {f: gmv.get(f, Decimal(0)) / spend[f] for f in spend}
    # From the default size up every format spends; a smaller month may leave a format
    # without the orders its prices need (it then spends nothing), never native.
    if events >= 100_000:
        assert set(roas) == {"native", "pre_roll", "overlay", "banner"}, roas
    assert "native" in roas, roas
    assert len(roas) >= 3, roas
    for value in roas.values():
        assert 1 <= value <= 6, roas
    assert all(roas["native"] > roas[f] for f in roas if f != "native"), roas
    # What an ad impression and click cost on Douyin and Kuaishou (CNY).
    for f in spend:
        cpm = spend[f] / impressions[f] * 1000
        cpc = spend[f] / clicks[f]
        assert Decimal(20) <= cpm <= Decimal(120), (f, cpm)
        assert Decimal("0.3") <= cpc <= Decimal(5), (f, cpc)
    # Spend grows with traffic: a bigger month spends more in total.
    if events == 100_000:
        small = generate(7, 30_000, ANCHOR)
        assert sum(d.amount for d in small.world.spend) < sum(spend.values())


def test_a_format_without_credited_orders_spends_nothing() -> None:
    month = generate(7, 2_000, ANCHOR)
    credited = set(_last_touch_gmv_by_ad(month))
    assert {day.ad_id for day in month.world.spend} <= credited


# --- the posting flow, against a fake that records what it was sent --------------------


class FakeServices:
    """Minimal catalog + attribution answering like the contract; records every request."""

    def __init__(self, fail: tuple[str, str, int] | None = None) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.fail = fail

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body: Any = orjson.loads(request.content) if request.content else None
        self.requests.append((request.method, path, body))
        assert request.headers["Authorization"] == "Bearer tok"
        if self.fail and (request.method, path) == self.fail[:2]:
            return httpx.Response(
                self.fail[2],
                json={"type": "x", "title": "Unprocessable", "status": 422, "detail": "bad"},
            )
        if path == "/v1/tracking-links" and request.method == "GET":
            return httpx.Response(200, json={"items": [], "next_cursor": None})
        if path == "/v1/events":
            n = len(body["events"])
            return httpx.Response(
                200, json={"received": n, "accepted": n, "duplicates": 0, "rejected": []}
            )
        if path == "/v1/sync":
            return httpx.Response(200, json={"catalog_seq": 1})
        return httpx.Response(201 if request.method != "GET" else 200, json={})


async def test_posts_catalog_then_settings_sync_events_then_orders() -> None:
    fake = FakeServices()
    transport = httpx.MockTransport(fake)
    report = await load_demo(
        catalog_url="http://c",
        attribution_url="http://a",
        token="tok",
        events=2_500,
        seed=5,
        now=NOW,
        catalog_transport=transport,
        attribution_transport=transport,
    )
    data = generate(5, 2_500, ANCHOR)
    paths = [(m, p) for m, p, _ in fake.requests]
    first: dict[tuple[str, str], int] = {}
    last: dict[tuple[str, str], int] = {}
    for i, key in enumerate(paths):
        first.setdefault(key, i)
        last[key] = i
    assert last["PUT", "/v1/settings"] < first["POST", "/v1/sync"]
    assert (
        max(i for i, (_, p) in enumerate(paths) if p.startswith("/v1/ads/"))
        < first["PUT", "/v1/settings"]
    )
    assert last["POST", "/v1/sync"] < first["POST", "/v1/events"]
    if data.orders:
        assert last["POST", "/v1/events"] < first["POST", "/v1/orders"]
    batches = [b for m, p, b in fake.requests if p == "/v1/events"]
    assert [len(b["events"]) for b in batches] == [1_000, 1_000, 500]
    # Each order's own posts arrive in lifecycle order.
    statuses: dict[str, list[str]] = {}
    for _, path, body in fake.requests:
        if path == "/v1/orders":
            statuses.setdefault(body["order_id"], []).append(body["status"])
    for order in data.orders:
        expected = ["created", "paid"] + (["cancelled"] if order.cancelled_us else [])
        assert statuses[order.order_id] == expected
    assert report.events_accepted == 2_500
    assert report.orders == len(data.orders)
    assert report.tracking_links_created == len(data.world.tracking_links)
    assert report.spend_days == len(data.world.spend)
    refunded = sorted(f"rf-{o.order_id}" for o in data.orders if o.refund is not None)
    assert sorted(b["refund_id"] for _, p, b in fake.requests if p.endswith("/refunds")) == refunded


async def load_small_demo(transport: httpx.MockTransport) -> None:
    """Ten events of the demo, both services answered by ``transport``."""
    await load_demo(
        catalog_url="http://c",
        attribution_url="http://a",
        token="tok",
        events=10,
        now=NOW,
        catalog_transport=transport,
        attribution_transport=transport,
    )


async def test_an_error_answer_names_the_request() -> None:
    fake = FakeServices(fail=("PUT", "/v1/accounts/acc-douyin-glowlab", 422))
    with pytest.raises(DemoError, match=r"catalog PUT /v1/accounts/acc-douyin-glowlab failed"):
        await load_small_demo(httpx.MockTransport(fake))


async def test_rejected_events_are_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/events":
            rejected = [{"index": 3, "event_id": "e3", "errors": ["occurred_at: in the future"]}]
            return httpx.Response(
                200, json={"received": 10, "accepted": 9, "duplicates": 0, "rejected": rejected}
            )
        return FakeServices()(request)

    with pytest.raises(DemoError, match=r"rejected 1 of 10 events: #3 e3: occurred_at"):
        await load_small_demo(httpx.MockTransport(handler))


# --- end to end, against the real in-process services (both database backends) ---------


async def test_load_demo_end_to_end_and_rerun_is_idempotent(
    catalog_app: FastAPI, attribution_app: FastAPI, make_token: Any, tenant: str
) -> None:
    now = dt.datetime.now(dt.UTC)  # pinned, so both runs generate the same month
    options: dict[str, Any] = {
        "catalog_url": "http://catalog.test",
        "attribution_url": "http://attribution.test",
        "token": make_token(tenant, "admin"),
        "events": 3_000,
        "seed": 11,
        "now": now,
        "catalog_transport": httpx.ASGITransport(app=catalog_app),
        "attribution_transport": httpx.ASGITransport(app=attribution_app),
    }
    expected = generate(11, 3_000, demo_anchor(now))
    first = await load_demo(**options)
    assert first.events_sent == first.events_accepted == 3_000
    assert first.events_duplicates == 0
    assert first.orders == len(expected.orders) > 0
    assert first.orders_replayed == 0
    assert first.tracking_links_created == len(expected.world.tracking_links)

    headers = {"Authorization": f"Bearer {options['token']}"}
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=catalog_app), base_url="http://catalog.test"
        ) as catalog,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=attribution_app), base_url="http://attribution.test"
        ) as attribution,
    ):
        contents = await catalog.get("/v1/contents", params={"limit": 500}, headers=headers)
        assert len(contents.json()["items"]) == 55
        settings = (await attribution.get("/v1/settings", headers=headers)).json()
        assert (settings["currency"], settings["timezone"]) == ("CNY", "Asia/Shanghai")
        paid = next(o for o in expected.orders if not o.cancelled_us and not o.refund)
        order = await attribution.get(f"/v1/orders/{paid.order_id}", headers=headers)
        assert order.status_code == 200, order.text
        assert Decimal(order.json()["revenue"]) == paid.revenue

        # A rerun changes nothing: events come back as duplicates, orders as replays.
        summary = str(await load_demo(**options))
        assert "3,000 duplicates" in summary
        assert f"({first.orders:,} replays)" in summary
        assert "(0 new)" in summary
        links = await catalog.get("/v1/tracking-links", params={"limit": 500}, headers=headers)
        assert len(links.json()["items"]) == len(expected.world.tracking_links)
