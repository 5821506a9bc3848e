"""A realistic, seeded, deterministic data set for the benchmark.

Pure Python (``random.Random(seed)``), no clock and no I/O: the same ``(events, seed)`` gives
byte-identical requests. What it models, for one tenant over 30 days:

* a catalog: creator accounts on several platforms, videos and live rooms, products linked to
  contents, campaigns, ads in four formats with daily spend;
* viewers (about one per ten events) with a heavy-tailed number of sessions; each session picks
  a content by Zipf-skewed popularity and walks the drop-off impression → view (→ completion,
  likes, comments, shares, follows) → click → add-to-cart; live rooms have enter/exit;
* orders reached through clicks (click-through, sometimes known only by ``click_ids``) and
  through views (view-through), some with a second item; a few are cancelled, some refunded;
* event ids are random hex (as UUID-like client keys are), user ids SHA-256 hex, and a small
  share of events is sent twice (client retries), later in the stream.

Events are kept as compact tuples (``EventRow``) and turned into JSON only when the request
bodies are built, so 1M events take a few seconds and a few hundred MB.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
import random
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from typing import Any, Final

import orjson

CURRENCY = "CNY"
TIMEZONE = "Asia/Shanghai"
DAYS = 30
#: The data set ends here (fixed, in the past, so runs on any day post identical bodies).
ANCHOR = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
START = ANCHOR - dt.timedelta(days=DAYS)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
START_US = int((START - EPOCH).total_seconds()) * 1_000_000
#: Sessions start in [START, START + SESSION_SPAN); orders and late events may run later.
SESSION_SPAN_US = (DAYS - 2) * 86_400 * 1_000_000
SECOND = 1_000_000

PLATFORMS = ("douyin", "kuaishou", "tiktok", "xiaohongshu", "wechat_channels", "bilibili")
#: Senders on these platforms stamp local time (+08:00), the others UTC.
LOCAL_TIME_PLATFORMS = frozenset({"douyin", "kuaishou", "xiaohongshu", "wechat_channels"})
CATEGORIES = ("beauty", "skincare", "fashion", "snacks", "home", "digital")
AD_FORMATS = ("native", "native", "native", "pre_roll", "pre_roll", "overlay", "banner")
ZIPF_S = 1.1

# Drop-off rates, per session.
VIEW_RATE = 0.45
COMPLETE_RATE = 0.35
ENGAGEMENT = (("like", 0.05), ("comment", 0.015), ("share", 0.01), ("follow", 0.006))
CLICK_RATE = {None: 0.045, "native": 0.08, "pre_roll": 0.035, "overlay": 0.045, "banner": 0.03}
CART_RATE = 0.35
CLICK_ORDER_RATE = 0.22
VIEW_ORDER_RATE = 0.006
AD_SERVED_RATE = 0.5
LIVE_ENTER_RATE = 0.42
LIVE_ENGAGEMENT = (("like", 0.09), ("comment", 0.04), ("share", 0.01))
LIVE_CLICK_RATE = 0.06
PLATFORM_MISSING_RATE = 0.15
CLICK_IDS_ONLY_RATE = 0.1  # orders that carry only click_ids (the buyer is stitched)
SECOND_ITEM_RATE = 0.15
CANCEL_RATE = 0.03
REFUND_RATE = 0.08
DUPLICATE_RATE = 0.002

# EventRow fields (a tuple, to keep 1M events compact).
E_ID: Final = 0
E_TYPE: Final = 1
E_T: Final = 2
E_USER: Final = 3
E_CONTENT: Final = 4
E_PRODUCT: Final = 5
E_AD: Final = 6
E_CLICK: Final = 7
E_SESSION: Final = 8
E_PLATFORM: Final = 9
E_WATCH: Final = 10
E_TZ: Final = 11
EventRow = tuple[
    str,  # event_id
    str,  # type
    int,  # occurred_at, epoch microseconds
    str,  # user_id
    str | None,  # content_id
    str | None,  # product_id
    str | None,  # ad_id
    str | None,  # click_id
    str | None,  # session_id
    str | None,  # platform
    float | None,  # properties.watch_seconds
    int,  # sender's UTC offset in hours (0 or 8), only for the ISO text
]


@dataclass(frozen=True, slots=True)
class Content:
    id: str
    kind: str  # video | live
    account_id: str
    platform: str
    published_us: int
    duration_s: int
    ended_us: int | None  # live rooms
    products: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ad:
    id: str
    campaign_id: str
    content_id: str
    product_id: str
    format: str
    first_day: int  # day index in [0, DAYS)
    days: int
    daily_spend: Decimal


@dataclass(slots=True)
class Order:
    order_id: str
    user_id: str | None
    click_ids: list[str]
    paid_us: int
    items: list[tuple[str, int, str]]  # product_id, quantity, unit price
    cancelled_us: int | None = None
    refund: dict[str, Any] | None = None  # refund body without occurred_at/refund_id
    refund_us: int | None = None

    @property
    def revenue(self) -> Decimal:
        return sum((Decimal(p) * q for _, q, p in self.items), Decimal(0))


@dataclass(slots=True)
class Catalog:
    accounts: list[dict[str, Any]] = field(default_factory=list)  # id, platform, handle
    products: list[dict[str, Any]] = field(default_factory=list)  # id, title, price, category
    contents: list[Content] = field(default_factory=list)
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    ads: list[Ad] = field(default_factory=list)
    prices: dict[str, str] = field(default_factory=dict)

    def requests(self) -> list[list[tuple[str, dict[str, Any]]]]:
        """PUT requests in stages; each stage only references objects of earlier ones."""
        stage1: list[tuple[str, dict[str, Any]]] = []
        for a in self.accounts:
            stage1.append((f"/v1/accounts/{a['id']}", {k: v for k, v in a.items() if k != "id"}))
        for p in self.products:
            body = {k: v for k, v in p.items() if k != "id"}
            stage1.append((f"/v1/products/{p['id']}", {**body, "currency": CURRENCY}))
        stage2 = [(f"/v1/contents/{c.id}", content_body(c)) for c in self.contents]
        stage3: list[tuple[str, dict[str, Any]]] = [
            (
                f"/v1/contents/{c.id}/products/{p}",
                {"placement": "product_card" if c.kind == "video" else "pinned"},
            )
            for c in self.contents
            for p in c.products
        ]
        stage3 += [(f"/v1/campaigns/{c['id']}", {"name": c["name"]}) for c in self.campaigns]
        stage4 = [
            (
                f"/v1/ads/{ad.id}",
                {
                    "campaign_id": ad.campaign_id,
                    "content_id": ad.content_id,
                    "product_id": ad.product_id,
                    "format": ad.format,
                    "name": f"{ad.format} ad {ad.id}",
                },
            )
            for ad in self.ads
        ]
        stage5 = [
            (
                f"/v1/ads/{ad.id}/spend/{(START + dt.timedelta(days=day)).date().isoformat()}",
                {"amount": str(ad.daily_spend), "currency": CURRENCY},
            )
            for ad in self.ads
            for day in range(ad.first_day, min(DAYS, ad.first_day + ad.days))
        ]
        return [stage1, stage2, stage3, stage4, stage5]


def content_body(c: Content) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": c.kind,
        "account_id": c.account_id,
        "title": f"{c.kind} {c.id}",
        "published_at": iso(c.published_us),
        "duration_seconds": c.duration_s,
    }
    if c.kind == "live":
        body["started_at"] = iso(c.published_us)
        body["ended_at"] = iso(c.ended_us or c.published_us)
    return body


@dataclass(slots=True)
class Dataset:
    seed: int
    catalog: Catalog
    events: list[EventRow]  # the stream as sent: time order, retried copies included
    unique_events: int
    orders: list[Order]
    users: int

    @property
    def start(self) -> dt.datetime:
        return START

    @property
    def end(self) -> dt.datetime:
        return ANCHOR

    def top_content(self) -> str:
        return self.catalog.contents[0].id

    def summary(self) -> dict[str, Any]:
        types: dict[str, int] = {}
        for row in self.events:
            types[row[E_TYPE]] = types.get(row[E_TYPE], 0) + 1
        return {
            "seed": self.seed,
            "events_sent": len(self.events),
            "unique_events": self.unique_events,
            "users": self.users,
            "contents": len(self.catalog.contents),
            "products": len(self.catalog.products),
            "ads": len(self.catalog.ads),
            "orders": len(self.orders),
            "cancelled": sum(o.cancelled_us is not None for o in self.orders),
            "refunds": sum(o.refund is not None for o in self.orders),
            "by_type": dict(sorted(types.items())),
            "range": [iso(START_US), ANCHOR.isoformat().replace("+00:00", "Z")],
        }


# --------------------------------------------------------------------------- text


_NAIVE_EPOCH = dt.datetime(1970, 1, 1)
_EIGHT_HOURS_US = 8 * 3600 * SECOND


def iso(t_us: int, offset_hours: int = 0) -> str:
    """ISO-8601 with an offset: ``Z`` for UTC, ``+08:00`` for local senders."""
    if offset_hours == 8:
        local = _NAIVE_EPOCH + dt.timedelta(microseconds=t_us + _EIGHT_HOURS_US)
        return local.isoformat() + "+08:00"
    return (_NAIVE_EPOCH + dt.timedelta(microseconds=t_us)).isoformat() + "Z"


_OPTIONAL = (
    ("content_id", E_CONTENT),
    ("product_id", E_PRODUCT),
    ("ad_id", E_AD),
    ("click_id", E_CLICK),
    ("session_id", E_SESSION),
    ("platform", E_PLATFORM),
)


def event_json(row: EventRow) -> dict[str, Any]:
    """The event as a sender posts it (absent fields left out)."""
    body: dict[str, Any] = {
        "event_id": row[E_ID],
        "type": row[E_TYPE],
        "occurred_at": iso(row[E_T], row[E_TZ]),
        "user_id": row[E_USER],
    }
    for key, index in _OPTIONAL:
        value = row[index]
        if value is not None:
            body[key] = value
    watch = row[E_WATCH]
    if watch is not None:
        body["properties"] = {"watch_seconds": watch}
    return body


def event_batches(events: list[EventRow], size: int = 1000) -> list[bytes]:
    """Pre-serialised ``POST /v1/events`` bodies of ``size`` events each."""
    return [
        orjson.dumps({"events": [event_json(row) for row in events[i : i + size]]})
        for i in range(0, len(events), size)
    ]


def order_body(order: Order) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": order.order_id,
        "status": "paid",
        "occurred_at": iso(order.paid_us),
        "currency": CURRENCY,
        "items": [{"product_id": p, "quantity": q, "unit_price": u} for p, q, u in order.items],
    }
    if order.user_id is not None:
        body["user_id"] = order.user_id
    if order.click_ids:
        body["click_ids"] = order.click_ids
    return body


def cancel_body(order: Order) -> dict[str, Any]:
    assert order.cancelled_us is not None
    return {**order_body(order), "status": "cancelled", "occurred_at": iso(order.cancelled_us)}


def refund_body(order: Order) -> dict[str, Any]:
    assert order.refund is not None
    assert order.refund_us is not None
    return {
        "refund_id": f"rf-{order.order_id}",
        "occurred_at": iso(order.refund_us),
        **order.refund,
    }


# --------------------------------------------------------------------------- generation


def _hex(r: random.Random, bits: int) -> str:
    return f"{r.getrandbits(bits):0{bits // 4}x}"


def _build_catalog(r: random.Random, n_contents: int) -> Catalog:
    cat = Catalog()
    n_accounts = max(5, n_contents // 20)
    n_products = max(10, n_contents // 10)
    for i in range(n_accounts):
        platform = PLATFORMS[min(int(r.expovariate(0.6)), len(PLATFORMS) - 1)]
        cat.accounts.append({"id": f"acct-{i:04d}", "platform": platform, "handle": f"@c{i}"})
    for i in range(n_products):
        price = Decimal(r.choice((19, 29, 39, 59, 79, 99, 129, 199, 299, 599))) - Decimal("0.10")
        pid = f"prod-{i:05d}"
        cat.products.append(
            {
                "id": pid,
                "title": f"product {i}",
                "price": str(price),
                "category": CATEGORIES[i % len(CATEGORIES)],
            }
        )
        cat.prices[pid] = str(price)
    product_ids = [p["id"] for p in cat.products]
    for i in range(n_contents):
        account = cat.accounts[int(r.paretovariate(1.2)) % n_accounts]
        live = r.random() < 0.12
        published = START_US - 3 * 86_400 * SECOND + r.randrange(SESSION_SPAN_US)
        duration = r.randrange(3600, 4 * 3600) if live else r.randrange(8, 180)
        linked = tuple(sorted(r.sample(product_ids, 1 + int(r.random() < 0.3) + live)))
        cat.contents.append(
            Content(
                id=f"{'live' if live else 'vid'}-{i:05d}",
                kind="live" if live else "video",
                account_id=account["id"],
                platform=account["platform"],
                published_us=published,
                duration_s=duration,
                ended_us=published + duration * SECOND if live else None,
                products=linked,
            )
        )
    n_campaigns = max(2, n_contents // 200)
    cat.campaigns = [{"id": f"camp-{i:03d}", "name": f"campaign {i}"} for i in range(n_campaigns)]
    # Ads promote some of the popular contents (low index = popular).
    n_ads = max(4, n_contents // 40)
    promoted = r.sample(range(min(n_contents, max(n_ads * 3, 10))), k=min(n_contents, n_ads))
    for i, index in enumerate(promoted):
        content = cat.contents[index]
        cat.ads.append(
            Ad(
                id=f"ad-{i:04d}",
                campaign_id=cat.campaigns[i % n_campaigns]["id"],
                content_id=content.id,
                product_id=content.products[0],
                format=AD_FORMATS[i % len(AD_FORMATS)],
                first_day=r.randrange(DAYS - 7),
                days=r.randrange(7, 22),
                daily_spend=Decimal(r.randrange(5_000, 200_000)) / 100,
            )
        )
    return cat


@dataclass(slots=True)
class _State:
    r: random.Random
    cat: Catalog
    ads_by_content: dict[str, list[Ad]]
    events: list[EventRow] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    order_seq: int = 0


def _order(
    st: _State, user: str, t_us: int, product: str, content: Content, click_id: str | None
) -> None:
    r = st.r
    items = [(product, 1 + int(r.random() < 0.2), st.cat.prices[product])]
    if r.random() < SECOND_ITEM_RATE:
        other = r.choice(content.products)
        if other != product:
            items.append((other, 1, st.cat.prices[other]))
    st.order_seq += 1
    only_clicks = click_id is not None and r.random() < CLICK_IDS_ONLY_RATE
    order = Order(
        order_id=f"ord-{st.order_seq:07d}-{_hex(r, 24)}",
        user_id=None if only_clicks else user,
        click_ids=[click_id] if click_id is not None else [],
        paid_us=t_us,
        items=items,
    )
    roll = r.random()
    if roll < CANCEL_RATE:
        order.cancelled_us = t_us + r.randrange(60, 86_400) * SECOND
    elif roll < CANCEL_RATE + REFUND_RATE:
        order.refund_us = t_us + r.randrange(3_600, 5 * 86_400) * SECOND
        if len(items) > 1 or r.random() < 0.5:
            order.refund = {"items": [{"product_id": items[0][0], "quantity": 1}]}
        else:
            revenue = Decimal(items[0][2]) * items[0][1]
            order.refund = {"amount": str((revenue / 2).quantize(Decimal("0.01")))}
    st.orders.append(order)


def _session(st: _State, user: str, content: Content, t0: int) -> None:
    r = st.r
    rnd = r.random
    ev = st.events
    session = _hex(r, 64)
    platform = None if rnd() < PLATFORM_MISSING_RATE else content.platform
    tz = 8 if platform in LOCAL_TIME_PLATFORMS else 0
    ads = st.ads_by_content.get(content.id)
    ad = ads[0] if ads and rnd() < AD_SERVED_RATE else None
    ad_id = ad.id if ad else None
    cid = content.id

    def emit(kind: str, t: int, product: str | None = None, click: str | None = None) -> None:
        watch = None
        if kind in ("view", "view_complete"):
            watch = round(rnd() * content.duration_s, 1) if kind == "view" else content.duration_s
        ev.append(
            (_hex(r, 96), kind, t, user, cid, product, ad_id, click, session, platform, watch, tz)
        )

    emit("impression", t0)
    if content.kind == "video":
        if rnd() >= VIEW_RATE:
            return
        t_view = t0 + int((0.5 + 2.5 * rnd()) * SECOND)
        emit("view", t_view)
        if rnd() < COMPLETE_RATE:
            emit("view_complete", t_view + content.duration_s * SECOND)
        for kind, rate in ENGAGEMENT:
            if rnd() < rate:
                emit(kind, t_view + int((1 + 30 * rnd()) * SECOND))
        click_rate = CLICK_RATE[ad.format if ad else None]
        touch_t = t_view
    else:
        if rnd() >= LIVE_ENTER_RATE:
            return
        t_view = t0 + int((1 + 4 * rnd()) * SECOND)
        emit("live_enter", t_view)
        stay = int(r.expovariate(1 / 300) * SECOND) + SECOND
        for kind, rate in LIVE_ENGAGEMENT:
            if rnd() < rate:
                emit(kind, t_view + int(rnd() * stay))
        emit("live_exit", t_view + stay)
        click_rate = LIVE_CLICK_RATE
        touch_t = t_view
    if rnd() < click_rate:
        product = ad.product_id if ad else r.choice(content.products)
        click_id = "ck-" + _hex(r, 64)
        t_click = touch_t + int((2 + 60 * rnd()) * SECOND)
        emit("click", t_click, product, click_id)
        if rnd() < CART_RATE:
            emit("add_to_cart", t_click + int((10 + 600 * rnd()) * SECOND), product)
        if rnd() < CLICK_ORDER_RATE:
            delay = min(int(r.expovariate(1 / 7200) * SECOND), 6 * 86_400 * SECOND)
            _order(st, user, t_click + 30 * SECOND + delay, product, content, click_id)
    elif rnd() < VIEW_ORDER_RATE:
        product = r.choice(content.products)
        _order(st, user, touch_t + int((60 + 72_000 * rnd()) * SECOND), product, content, None)


def generate(events: int, seed: int = 42) -> Dataset:
    """About ``events`` events (exactly that many unique ones) with everything around them."""
    if events < 100:
        raise ValueError("at least 100 events")
    r = random.Random(seed)
    n_contents = max(40, int(1.2 * events**0.5))
    cat = _build_catalog(r, n_contents)
    ads_by_content: dict[str, list[Ad]] = {}
    for ad in cat.ads:
        ads_by_content.setdefault(ad.content_id, []).append(ad)
    weights = list(itertools.accumulate(1 / (k + 1) ** ZIPF_S for k in range(n_contents)))
    total_weight = weights[-1]
    st = _State(r, cat, ads_by_content)
    users = 0
    contents = cat.contents
    while len(st.events) < events:
        user = hashlib.sha256(f"bench:{seed}:user:{users}".encode()).hexdigest()
        users += 1
        mark_orders = len(st.orders)
        sessions = 1 + int(r.expovariate(1 / 5))
        first = r.randrange(SESSION_SPAN_US)
        for _ in range(sessions):
            # A user's sessions cluster around their first visit (a few days either way).
            t0 = min(
                SESSION_SPAN_US - 1,
                max(0, first + int(r.gauss(0, 4 * 86_400) * SECOND)),
            )
            index = bisect.bisect_left(weights, r.random() * total_weight)
            _session(st, user, contents[min(index, n_contents - 1)], START_US + t0)
        if len(st.events) > events:
            # The last viewer is cut short; drop their orders, whose touches may be gone.
            del st.events[events:]
            del st.orders[mark_orders:]
    stream = sorted(st.events, key=itemgetter(E_T))
    # Client retries: a few events are sent again, a little later in the stream.
    n_dup = int(len(stream) * DUPLICATE_RATE)
    if n_dup:
        retried: dict[int, list[EventRow]] = {}
        for pos in sorted(r.sample(range(len(stream) - 1), n_dup)):
            later = min(len(stream) - 1, pos + r.randrange(1, 5_000))
            retried.setdefault(later, []).append(stream[pos])
        merged: list[EventRow] = []
        for pos, row in enumerate(stream):
            merged.append(row)
            merged.extend(retried.get(pos, ()))
        stream = merged
    st.orders.sort(key=lambda o: o.paid_us)
    return Dataset(seed, cat, stream, events, st.orders, users)
