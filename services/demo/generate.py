"""Deterministic demo data: a month of short-video and live commerce for one tenant.

Pure: no I/O and no clock. Everything derives from ``random.Random(seed)`` and an ``anchor``
(midnight in the tenant's timezone), and every timestamp lies before the anchor, so the data
ends just before "now" and a rerun on the same day posts byte-identical requests (PUTs
replace nothing, events come back as duplicates, orders as replays).

Transactional ids (events, clicks, sessions, orders, refunds) carry the seed and the anchor's
date, so a rerun on another day adds a fresh month instead of colliding (409) with orders
posted under the same id with other timestamps. Catalog ids are stable: a rerun replaces them.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shared.vocabulary import EventType

CURRENCY = "CNY"
TIMEZONE = "Asia/Shanghai"
TZ = ZoneInfo(TIMEZONE)
DAYS = 30
CENT = Decimal("0.01")

PLATFORMS = (
    "douyin",
    "kuaishou",
    "tiktok",
    "xiaohongshu",
    "wechat_channels",
    "bilibili",
    "instagram",
    "youtube",
)
CATEGORIES = ("beauty", "skincare", "fashion", "snacks", "home", "digital")
VIDEO_FORMATS = ("tutorial", "unboxing", "review", "vlog", "haul", "comparison")
AD_FORMATS = ("native",) * 6 + ("pre_roll",) * 4 + ("overlay",) * 4 + ("banner",) * 2


# Funnel rates, per viewer session. Clicks and carts are the shares the brief asks for.
VIEW_RATE = 0.40  # of video impressions
COMPLETE_RATE = 0.35  # of views
ENGAGE_RATES: tuple[tuple[EventType, float], ...] = (
    ("like", 0.05),
    ("comment", 0.015),
    ("share", 0.01),
    ("follow", 0.006),
)
# Clicks per view, by the format of the ad served in the session (None: organic).
CLICK_RATE_BY_AD = {
    None: 0.045,
    "native": 0.08,
    "overlay": 0.045,
    "pre_roll": 0.035,
    "banner": 0.03,
}
AD_SERVED_RATE = 0.55  # of sessions on a content that has ads
LIVE_ENTER_RATE = 0.42  # of live-room impressions
LIVE_ENGAGE_RATES: tuple[tuple[EventType, float], ...] = (
    ("like", 0.09),
    ("comment", 0.04),
    ("share", 0.015),
    ("follow", 0.01),
)
LIVE_CLICK_RATE = 0.06  # of live entries
CART_RATE = 0.30  # of clicks
ORDER_RATE = 0.40  # of carts
LIVE_VIEW_ORDER_RATE = 0.012  # of live entries without a click: buy a pinned product later
CANCEL_RATE, PARTIAL_REFUND_RATE, FULL_REFUND_RATE = 0.05, 0.05, 0.02

# Share of a day's sessions per hour, Asia/Shanghai: lunch and evening peaks.
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 1, 2, 3, 4, 4, 4, 5, 7, 6, 4, 4, 4, 5, 6, 8, 10, 11, 9, 5)
_HOUR_CUM = list(itertools.accumulate(HOUR_WEIGHTS))


def iso(value: dt.datetime) -> str:
    """UTC ISO-8601 with an offset, full precision: the text is exactly the instant generated."""
    return value.astimezone(dt.UTC).isoformat()


def money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def demo_anchor(now: dt.datetime | None = None) -> dt.datetime:
    """Midnight (tenant timezone) of ``now``'s day: the end of the demo month."""
    current = (now or dt.datetime.now(dt.UTC)).astimezone(TZ)
    return dt.datetime(current.year, current.month, current.day, tzinfo=TZ)


# --- catalog -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    platform: str
    handle: str
    display_name: str
    categories: tuple[str, ...]

    def body(self) -> dict[str, Any]:
        return {"platform": self.platform, "handle": self.handle, "display_name": self.display_name}


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    title: str
    price: Decimal
    category: str

    def body(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "price": money(self.price),
            "currency": CURRENCY,
            "url": f"https://shop.example.com/products/{self.id}",
            "category": self.category,
        }


@dataclass(frozen=True, slots=True)
class Content:
    id: str
    kind: Literal["video", "live"]
    account_id: str
    platform: str
    title: str
    topics: tuple[str, ...]
    format: str
    published_at: dt.datetime
    duration_seconds: int
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": self.kind,
            "account_id": self.account_id,
            "title": self.title,
            "published_at": iso(self.published_at),
            "duration_seconds": self.duration_seconds,
            "topics": list(self.topics),
            "format": self.format,
        }
        if self.started_at is not None and self.ended_at is not None:
            body["started_at"] = iso(self.started_at)
            body["ended_at"] = iso(self.ended_at)
        return body


@dataclass(frozen=True, slots=True)
class Link:
    content_id: str
    product_id: str
    placement: Literal["product_card", "pinned", "native_ad"]
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"placement": self.placement}
        if self.starts_at is not None and self.ends_at is not None:
            body["starts_at"] = iso(self.starts_at)
            body["ends_at"] = iso(self.ends_at)
        return body


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    name: str
    objective: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    budget: Decimal
    categories: tuple[str, ...]

    def body(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "objective": self.objective,
            "starts_at": iso(self.starts_at),
            "ends_at": iso(self.ends_at),
            "budget": money(self.budget),
            "currency": CURRENCY,
        }


@dataclass(frozen=True, slots=True)
class Ad:
    id: str
    campaign_id: str
    content_id: str
    product_id: str
    format: str
    name: str

    def body(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "content_id": self.content_id,
            "product_id": self.product_id,
            "format": self.format,
            "name": self.name,
        }


@dataclass(frozen=True, slots=True)
class Spend:
    ad_id: str
    day: dt.date
    amount: Decimal

    def body(self) -> dict[str, Any]:
        return {"amount": money(self.amount), "currency": CURRENCY}


@dataclass(frozen=True, slots=True)
class TrackingLink:
    content_id: str
    product_id: str
    ad_id: str | None
    destination_url: str

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "content_id": self.content_id,
            "product_id": self.product_id,
            "destination_url": self.destination_url,
        }
        if self.ad_id is not None:
            body["ad_id"] = self.ad_id
        return body


@dataclass(frozen=True, slots=True)
class Catalog:
    accounts: tuple[Account, ...]
    products: tuple[Product, ...]
    contents: tuple[Content, ...]
    links: tuple[Link, ...]
    campaigns: tuple[Campaign, ...]
    ads: tuple[Ad, ...]
    spend: tuple[Spend, ...]
    tracking_links: tuple[TrackingLink, ...]


# --- activity ----------------------------------------------------------------------------


@dataclass(slots=True)  # not frozen: a frozen __init__ is measurably slower at 100k events
class Event:
    event_id: str
    type: EventType
    occurred_at: dt.datetime
    user_id: str
    content_id: str | None = None
    product_id: str | None = None
    ad_id: str | None = None
    click_id: str | None = None
    session_id: str | None = None
    platform: str | None = None
    properties: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "event_id": self.event_id,
            "type": self.type,
            "occurred_at": iso(self.occurred_at),
            "user_id": self.user_id,
        }
        for name in ("content_id", "product_id", "ad_id", "click_id", "session_id", "platform"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if self.properties:
            body["properties"] = self.properties
        return body


@dataclass(frozen=True, slots=True)
class Item:
    product_id: str
    quantity: int
    unit_price: Decimal

    @property
    def revenue(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class Refund:
    refund_id: str
    occurred_at: dt.datetime
    items: tuple[tuple[str, int], ...] | None  # (product_id, quantity) or None for an amount
    amount: Decimal | None
    full: bool

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"refund_id": self.refund_id, "occurred_at": iso(self.occurred_at)}
        if self.items is not None:
            body["items"] = [{"product_id": p, "quantity": q} for p, q in self.items]
        else:
            assert self.amount is not None
            body["amount"] = money(self.amount)
        return body


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    user_id: str | None
    click_ids: tuple[str, ...]
    items: tuple[Item, ...]
    created_at: dt.datetime
    paid_at: dt.datetime
    via: Literal["click", "live_view"]
    # The event that led to the order (the click, or the live entry): it precedes the order.
    source_event_id: str
    cancelled_at: dt.datetime | None = None
    refunds: tuple[Refund, ...] = ()

    @property
    def revenue(self) -> Decimal:
        return sum((item.revenue for item in self.items), Decimal(0))

    def status_body(self, status: Literal["created", "paid", "cancelled"]) -> dict[str, Any]:
        at = {"created": self.created_at, "paid": self.paid_at, "cancelled": self.cancelled_at}
        occurred = at[status]
        assert occurred is not None
        body: dict[str, Any] = {
            "order_id": self.order_id,
            "status": status,
            "occurred_at": iso(occurred),
        }
        if self.user_id is not None:
            body["user_id"] = self.user_id
        if self.click_ids:
            body["click_ids"] = list(self.click_ids)
        body["currency"] = CURRENCY
        body["items"] = [
            {"product_id": i.product_id, "quantity": i.quantity, "unit_price": money(i.unit_price)}
            for i in self.items
        ]
        return body

    def status_bodies(self) -> list[dict[str, Any]]:
        """The status posts in the order a shop backend sends them."""
        bodies = [self.status_body("created"), self.status_body("paid")]
        if self.cancelled_at is not None:
            bodies.append(self.status_body("cancelled"))
        return bodies


@dataclass(frozen=True, slots=True)
class DemoData:
    seed: int
    anchor: dt.datetime
    catalog: Catalog
    events: list[Event]  # chronological
    orders: list[Order]  # by paid time

    @property
    def start(self) -> dt.datetime:
        return self.anchor - dt.timedelta(days=DAYS)


# --- fixed vocabulary --------------------------------------------------------------------

_ACCOUNTS = (
    ("acc-douyin-glowlab", "douyin", "glowlab", "光感实验室 Glow Lab", ("beauty", "skincare")),
    ("acc-kuaishou-snacks", "kuaishou", "snack_king", "零食大王 Snack King", ("snacks", "home")),
    ("acc-xhs-miastyle", "xiaohongshu", "mia_style", "Mia 穿搭日记", ("fashion", "beauty")),
    ("acc-channels-cozy", "wechat_channels", "cozyhome", "好物之家 Cozy Home", ("home", "snacks")),
    ("acc-bilibili-techdad", "bilibili", "techdad", "数码老爸 Tech Dad", ("digital",)),
    ("acc-tiktok-skinbyjo", "tiktok", "skinbyjo", "Skin by Jo", ("skincare", "beauty")),
    ("acc-instagram-lena", "instagram", "lena.fits", "Lena Fits", ("fashion",)),
    ("acc-youtube-gadgets", "youtube", "gadgetgrid", "Gadget Grid", ("digital", "home")),
)
# Lives run on the platforms where live commerce is big.
_LIVE_ACCOUNTS = (0, 1, 2, 3, 5)

_PRODUCTS: dict[str, tuple[tuple[str, int, int], ...]] = {
    "beauty": (
        ("Velvet matte lipstick 丝绒哑光口红", 79, 189),
        ("Cushion foundation 气垫粉底", 129, 329),
        ("12-colour eyeshadow palette 眼影盘", 99, 259),
        ("Waterproof mascara 防水睫毛膏", 59, 139),
        ("Setting spray 定妆喷雾", 69, 169),
    ),
    "skincare": (
        ("Hyaluronic serum 30ml 玻尿酸精华", 139, 399),
        ("Amino acid cleanser 氨基酸洁面", 49, 119),
        ("Sunscreen SPF50+ 防晒霜", 89, 199),
        ("Night repair cream 晚霜", 199, 599),
        ("Sheet masks ×10 面膜", 59, 149),
    ),
    "fashion": (
        ("Oversized linen shirt 亚麻衬衫", 159, 359),
        ("High-waist wide-leg jeans 阔腿牛仔裤", 179, 399),
        ("Canvas tote bag 帆布托特包", 69, 169),
        ("Chunky knit cardigan 针织开衫", 199, 459),
        ("Chunky sneakers 老爹鞋", 259, 599),
    ),
    "snacks": (
        ("Spicy konjac strips 辣条 ×20", 19, 39),
        ("Mixed nuts gift box 每日坚果", 59, 129),
        ("Freeze-dried fruit 冻干水果", 29, 69),
        ("Instant hotpot 自热火锅 ×3", 39, 89),
        ("Cold brew coffee ×12 冷萃咖啡", 49, 109),
    ),
    "home": (
        ("Aroma diffuser 香薰机", 99, 259),
        ("Memory foam pillow 记忆枕", 89, 229),
        ("Storage boxes ×6 收纳盒", 39, 99),
        ("Air fryer 4L 空气炸锅", 259, 599),
        ("Silk pillowcase 真丝枕套", 99, 239),
    ),
    "digital": (
        ("Wireless earbuds 无线耳机", 199, 699),
        ("65W GaN charger 氮化镓充电器", 89, 199),
        ("Phone gimbal 手机稳定器", 299, 799),
        ("Ring light 补光灯", 79, 199),
        ("Smart watch 智能手表", 399, 1299),
    ),
}
_TOPIC_WORDS = {
    "beauty": ("everyday makeup", "5-minute glam", "lipstick swatches", "dewy base"),
    "skincare": ("glass skin routine", "sunscreen test", "acne-safe picks", "night routine"),
    "fashion": ("autumn capsule", "office outfits", "thrift flip", "one jeans, five looks"),
    "snacks": ("spicy snack ranking", "midnight snacks", "office snack haul", "hotpot night"),
    "home": ("small flat makeover", "desk setup", "storage hacks", "cosy bedroom"),
    "digital": ("earbuds under 500", "creator kit", "charger showdown", "smartwatch week"),
}
_FORMAT_TITLES = {
    "tutorial": "How to: {}",
    "unboxing": "Unboxing: {}",
    "review": "Honest review: {}",
    "vlog": "Vlog · {}",
    "haul": "Haul: {}",
    "comparison": "Side by side: {}",
}
_CAMPAIGNS = (
    ("camp-glow-month", "Glow month", "sales", ("beauty", "skincare")),
    ("camp-snack-fest", "Snack festival", "sales", ("snacks", "home")),
    ("camp-new-season", "New-season fashion", "reach", ("fashion",)),
    ("camp-gadget-week", "Gadget weeks", "sales", ("digital", "home")),
)
# Typical daily spend (CNY) of one ad by format.
_DAILY_SPEND = {
    "native": (300, 900),
    "pre_roll": (500, 1500),
    "overlay": (150, 500),
    "banner": (80, 250),
}
_SURFACES = ("feed", "feed", "feed", "search", "profile")


def viewer_id(seed: int, index: int) -> str:
    """A pseudonymous viewer key: SHA-256 hex of a synthetic id, as the API documents."""
    return hashlib.sha256(f"clipfunnel-demo/{seed}/viewer/{index}".encode()).hexdigest()


def _price(rng: random.Random, low: int, high: int) -> Decimal:
    # Shop prices end in 9 or 9.90.
    whole = rng.randrange(low, high + 1)
    return Decimal(f"{whole - whole % 10 + 9}.90") if rng.random() < 0.6 else Decimal(whole)


def _midnight(day: dt.date) -> dt.datetime:
    """The UTC instant a tenant-timezone day starts."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=TZ).astimezone(dt.UTC)


def _at_hour(rng: random.Random, midnight: dt.datetime) -> dt.datetime:
    """A moment of the day starting at ``midnight`` (UTC), following the daily rhythm."""
    hour = bisect.bisect_right(_HOUR_CUM, rng.random() * _HOUR_CUM[-1])
    return midnight + dt.timedelta(hours=hour, seconds=rng.randrange(3600))


def generate_catalog(rng: random.Random, anchor: dt.datetime) -> Catalog:
    start = anchor - dt.timedelta(days=DAYS)
    accounts = tuple(Account(*spec) for spec in _ACCOUNTS)

    products: list[Product] = []
    by_category: dict[str, list[Product]] = {c: [] for c in CATEGORIES}
    for category in CATEGORIES:
        for title, low, high in _PRODUCTS[category]:
            product = Product(
                f"prod-{len(products) + 1:03d}", title, _price(rng, low, high), category
            )
            products.append(product)
            by_category[category].append(product)

    contents: list[Content] = []
    links: list[Link] = []
    video_products: dict[str, list[str]] = {}
    for n in range(1, 51):
        account = rng.choice(accounts)
        topic = rng.choice(account.categories)
        fmt = rng.choice(VIDEO_FORMATS)
        day = (start + dt.timedelta(days=rng.randrange(DAYS - 1))).astimezone(TZ).date()
        topics = (topic, *((rng.choice(CATEGORIES),) if rng.random() < 0.3 else ()))
        video = Content(
            id=f"vid-{n:03d}",
            kind="video",
            account_id=account.id,
            platform=account.platform,
            title=_FORMAT_TITLES[fmt].format(rng.choice(_TOPIC_WORDS[topic])),
            topics=tuple(dict.fromkeys(topics)),
            format=fmt,
            published_at=_at_hour(rng, _midnight(day)),
            duration_seconds=int(min(600, 12 + rng.expovariate(1 / 50))),
        )
        contents.append(video)
        chosen = rng.sample(by_category[topic], rng.randint(1, 3))
        video_products[video.id] = [p.id for p in chosen]
        links.extend(Link(video.id, p.id, "product_card") for p in chosen)

    for n, account_index in enumerate(_LIVE_ACCOUNTS, start=1):
        account = accounts[account_index]
        day = (start + dt.timedelta(days=2 + (n - 1) * 6 + rng.randrange(3))).astimezone(TZ).date()
        opens = dt.datetime(day.year, day.month, day.day, rng.choice((19, 20)), tzinfo=TZ)
        hours = rng.choice((2, 2.5, 3, 3.5, 4))
        live = Content(
            id=f"live-{n:02d}",
            kind="live",
            account_id=account.id,
            platform=account.platform,
            title=f"{account.display_name} live: {rng.choice(_TOPIC_WORDS[account.categories[0]])}",
            topics=account.categories,
            format="live_shopping",
            published_at=opens.astimezone(dt.UTC),
            duration_seconds=int(hours * 3600),
            started_at=opens.astimezone(dt.UTC),
            ended_at=(opens + dt.timedelta(hours=hours)).astimezone(dt.UTC),
        )
        contents.append(live)
        pool = [p for c in account.categories for p in by_category[c]]
        pinned = rng.sample(pool, rng.randint(3, 5))
        # Each product is pinned for one slot of the show; slots tile the live window.
        assert live.started_at is not None
        assert live.ended_at is not None
        slot = (live.ended_at - live.started_at) / len(pinned)
        for i, product in enumerate(pinned):
            links.append(
                Link(
                    live.id,
                    product.id,
                    "pinned",
                    starts_at=live.started_at + slot * i,
                    ends_at=live.started_at + slot * (i + 1),
                )
            )

    campaigns = tuple(
        Campaign(
            id=cid,
            name=name,
            objective=objective,
            starts_at=start,
            ends_at=anchor + dt.timedelta(days=3 * i + 1),
            budget=Decimal(rng.randrange(20, 81) * 1000),
            categories=categories,
        )
        for i, (cid, name, objective, categories) in enumerate(_CAMPAIGNS)
    )

    # Ads go on distinct videos, each promoting one product the video links.
    videos = [c for c in contents if c.kind == "video"]
    ad_videos = rng.sample(videos, len(AD_FORMATS))
    ads: list[Ad] = []
    native: set[tuple[str, str]] = set()
    for n, (fmt, video) in enumerate(zip(AD_FORMATS, ad_videos, strict=True), start=1):
        product_id = rng.choice(video_products[video.id])
        category = next(p.category for p in products if p.id == product_id)
        campaign = next(
            (c for c in campaigns if category in c.categories), campaigns[n % len(campaigns)]
        )
        ads.append(
            Ad(
                f"ad-{n:02d}",
                campaign.id,
                video.id,
                product_id,
                fmt,
                f"{fmt} · {video.title}"[:120],
            )
        )
        if fmt == "native":
            native.add((video.id, product_id))
    # A native ad's product is placed in the content as a native ad, not a plain product card.
    links = [
        Link(link.content_id, link.product_id, "native_ad")
        if (link.content_id, link.product_id) in native
        else link
        for link in links
    ]

    content_by_id = {c.id: c for c in contents}
    spend: list[Spend] = []
    last_day = (anchor - dt.timedelta(days=1)).date()
    for ad in ads:
        low, high = _DAILY_SPEND[ad.format]
        base = rng.uniform(low, high)
        day = content_by_id[ad.content_id].published_at.astimezone(TZ).date()
        age = 0
        while day <= last_day:
            # Spend fades as the promoted video ages, with day-to-day noise.
            amount = base * rng.uniform(0.6, 1.4) * max(0.25, 0.93**age)
            spend.append(Spend(ad.id, day, Decimal(f"{amount:.2f}")))
            day += dt.timedelta(days=1)
            age += 1

    tracking_links = tuple(
        TrackingLink(
            content_id=ad.content_id,
            product_id=ad.product_id,
            ad_id=ad.id if i % 2 == 0 else None,
            destination_url=f"https://shop.example.com/products/{ad.product_id}"
            f"?utm_source=clipfunnel-demo&utm_content={ad.content_id}",
        )
        for i, ad in enumerate(ads[:4])
    )
    return Catalog(
        accounts=accounts,
        products=tuple(products),
        contents=tuple(contents),
        links=tuple(links),
        campaigns=campaigns,
        ads=tuple(ads),
        spend=tuple(spend),
        tracking_links=tracking_links,
    )


@dataclass
class _Counters:
    events: int = 0
    clicks: int = 0
    sessions: int = 0
    orders: int = 0


@dataclass
class _Activity:
    """Builds viewer sessions one at a time; ids are sequential, so deterministic."""

    rng: random.Random
    catalog: Catalog
    anchor: dt.datetime
    prefix: str
    users: list[str]
    n: _Counters = field(default_factory=_Counters)

    def __post_init__(self) -> None:
        # Internal instants are all UTC: comparing across zoneinfo offsets is slow.
        self.anchor = self.anchor.astimezone(dt.UTC)
        first = (self.anchor - dt.timedelta(days=DAYS + 1)).astimezone(TZ).date()
        self.midnights = [_midnight(first + dt.timedelta(days=k)) for k in range(DAYS + 2)]
        cat = self.catalog
        self.prices = {p.id: p.price for p in cat.products}
        self.category = {p.id: p.category for p in cat.products}
        self.by_category: dict[str, list[str]] = {}
        for p in cat.products:
            self.by_category.setdefault(p.category, []).append(p.id)
        self.linked: dict[str, list[Link]] = {}
        for link in cat.links:
            self.linked.setdefault(link.content_id, []).append(link)
        self.ads_of: dict[str, list[Ad]] = {}
        for ad in cat.ads:
            self.ads_of.setdefault(ad.content_id, []).append(ad)
        # Zipf-like popularity over a shuffled ranking; live rooms draw bigger crowds.
        ranked = list(cat.contents)
        self.rng.shuffle(ranked)
        self.contents = ranked
        weights = [
            (3.0 if c.kind == "live" else 1.0) / (rank + 1) ** 1.07 for rank, c in enumerate(ranked)
        ]
        self.cum = list(itertools.accumulate(weights))

    # ids ---------------------------------------------------------------------------------

    def event(self, type_: EventType, at: dt.datetime, user: str, **fields: Any) -> Event:
        self.n.events += 1
        return Event(f"{self.prefix}-e{self.n.events:07d}", type_, at, user, **fields)

    def click_id(self) -> str:
        self.n.clicks += 1
        return f"{self.prefix}-k{self.n.clicks:06d}"

    def session_id(self) -> str:
        self.n.sessions += 1
        return f"{self.prefix}-s{self.n.sessions:06d}"

    # sessions ----------------------------------------------------------------------------

    def pick_user(self) -> str:
        # Heavy viewers come back often: a power-law pick over the pool.
        return self.users[int(len(self.users) * self.rng.random() ** 1.6)]

    def session(self) -> tuple[list[Event], list[_Candidate]]:
        content = self.contents[bisect.bisect_right(self.cum, self.rng.random() * self.cum[-1])]
        if content.kind == "live":
            return self.live_session(content)
        return self.video_session(content)

    def video_session(self, video: Content) -> tuple[list[Event], list[_Candidate]]:
        rng = self.rng
        user, sid = self.pick_user(), self.session_id()
        span = (self.anchor - video.published_at).total_seconds()
        # Most viewing happens in the first days after publishing.
        seen = video.published_at + dt.timedelta(seconds=span * rng.random() ** 2.2)
        midnight = self.midnights[bisect.bisect_right(self.midnights, seen) - 1]
        at = max(
            _at_hour(rng, midnight),
            video.published_at + dt.timedelta(seconds=rng.randrange(60, 900)),
        )
        ads = self.ads_of.get(video.id)
        ad = rng.choice(ads) if ads and rng.random() < AD_SERVED_RATE else None
        common: dict[str, Any] = {
            "content_id": video.id,
            "session_id": sid,
            "platform": video.platform,
        }
        if ad is not None:
            common["ad_id"] = ad.id
        events = [
            self.event(
                "impression", at, user, properties={"surface": rng.choice(_SURFACES)}, **common
            )
        ]
        candidates: list[_Candidate] = []
        if rng.random() >= VIEW_RATE:
            return events, candidates
        at += dt.timedelta(seconds=rng.uniform(0.5, 4))
        duration = video.duration_seconds
        complete = rng.random() < COMPLETE_RATE
        watch = float(duration) if complete else round(duration * rng.uniform(0.04, 0.9), 1)
        events.append(self.event("view", at, user, properties={"watch_seconds": watch}, **common))
        if complete:
            done = at + dt.timedelta(seconds=duration)
            events.append(
                self.event(
                    "view_complete", done, user, properties={"watch_seconds": watch}, **common
                )
            )
        for type_, rate in ENGAGE_RATES:
            if rng.random() < rate:
                events.append(
                    self.event(
                        type_, at + dt.timedelta(seconds=rng.uniform(1, watch + 1)), user, **common
                    )
                )
        if rng.random() < CLICK_RATE_BY_AD[ad.format if ad else None]:
            product = ad.product_id if ad else rng.choice(self.linked[video.id]).product_id
            clicked = at + dt.timedelta(seconds=rng.uniform(2, watch + 2))
            self.click_and_cart(events, candidates, clicked, user, product, common)
        return events, candidates

    def live_session(self, live: Content) -> tuple[list[Event], list[_Candidate]]:
        rng = self.rng
        assert live.started_at is not None
        assert live.ended_at is not None
        user, sid = self.pick_user(), self.session_id()
        window = (live.ended_at - live.started_at).total_seconds()
        at = live.started_at + dt.timedelta(seconds=rng.uniform(0, window - 120))
        common: dict[str, Any] = {
            "content_id": live.id,
            "session_id": sid,
            "platform": live.platform,
        }
        events = [
            self.event("impression", at, user, properties={"surface": "live_square"}, **common)
        ]
        candidates: list[_Candidate] = []
        if rng.random() >= LIVE_ENTER_RATE:
            return events, candidates
        entered = at + dt.timedelta(seconds=rng.uniform(1, 8))
        room_left = (live.ended_at - entered).total_seconds() - 1
        stay = round(min(room_left, 20 + rng.expovariate(1 / 360)), 1)
        enter = self.event("live_enter", entered, user, **common)
        events.append(enter)
        events.append(
            self.event(
                "view", entered + dt.timedelta(seconds=1), user,
                properties={"watch_seconds": stay}, **common,
            )
        )  # fmt: skip
        for type_, rate in LIVE_ENGAGE_RATES:
            if rng.random() < rate:
                when = entered + dt.timedelta(seconds=rng.uniform(1, stay))
                events.append(self.event(type_, when, user, **common))
        clicked = False
        if rng.random() < LIVE_CLICK_RATE:
            when = entered + dt.timedelta(seconds=rng.uniform(1, stay))
            pinned = self.pinned_at(live, when)
            if pinned is not None:
                clicked = True
                self.click_and_cart(events, candidates, when, user, pinned, common)
        left = entered + dt.timedelta(seconds=stay)
        events.append(
            self.event("live_exit", left, user, properties={"stay_seconds": stay}, **common)
        )
        if not clicked and rng.random() < LIVE_VIEW_ORDER_RATE:
            # Watched the room, bought a pinned product later without clicking: a view-through.
            product = self.pinned_at(live, entered + dt.timedelta(seconds=stay / 2))
            if product is None:
                product = rng.choice(self.linked[live.id]).product_id
            # Within the 24h view window of the live entry, whatever the stay.
            bought = min(
                left + dt.timedelta(seconds=rng.uniform(300, 20 * 3600)),
                entered + dt.timedelta(hours=23),
            )
            candidates.append(_Candidate(enter.event_id, user, None, product, bought, live.id))
        return events, candidates

    def pinned_at(self, live: Content, when: dt.datetime) -> str | None:
        for link in self.linked[live.id]:
            starts, ends = link.starts_at, link.ends_at
            if starts is not None and ends is not None and starts <= when < ends:
                return link.product_id
        return None

    def click_and_cart(
        self,
        events: list[Event],
        candidates: list[_Candidate],
        at: dt.datetime,
        user: str,
        product: str,
        common: dict[str, Any],
    ) -> None:
        rng = self.rng
        click_id = self.click_id()
        click = self.event("click", at, user, product_id=product, click_id=click_id, **common)
        events.append(click)
        if rng.random() >= CART_RATE:
            return
        carted = at + dt.timedelta(seconds=rng.uniform(5, 120))
        events.append(
            self.event("add_to_cart", carted, user, product_id=product, click_id=click_id, **common)
        )
        if rng.random() < ORDER_RATE:
            created = carted + dt.timedelta(seconds=rng.uniform(60, 45 * 60))
            candidates.append(
                _Candidate(click.event_id, user, click_id, product, created, common["content_id"])
            )

    # orders ------------------------------------------------------------------------------

    def order(self, c: _Candidate) -> Order | None:
        rng = self.rng
        paid = c.created_at + dt.timedelta(seconds=rng.uniform(30, 600))
        if paid >= self.anchor:
            return None  # would be paid "in the future": the month ends first
        self.n.orders += 1
        order_id = f"{self.prefix}-o{self.n.orders:05d}"
        price = self.prices[c.product_id]
        quantity = 1 if price > 100 or rng.random() < 0.7 else rng.randint(2, 3)
        items = [Item(c.product_id, quantity, price)]
        if rng.random() < 0.3:
            # Basket extras from the same shelf.
            others = [p for p in self.by_category[self.category[c.product_id]] if p != c.product_id]
            for product in rng.sample(others, min(len(others), rng.randint(1, 2))):
                items.append(Item(product, 1, self.prices[product]))
        user_id: str | None = c.user_id
        click_ids: tuple[str, ...] = ()
        if c.click_id is not None:
            identity = rng.random()
            if identity < 0.15:  # a shop that only forwards the click id
                user_id, click_ids = None, (c.click_id,)
            elif identity < 0.55:
                click_ids = (c.click_id,)
        cancelled_at: dt.datetime | None = None
        refunds: tuple[Refund, ...] = ()
        fate = rng.random()
        later = paid + dt.timedelta(seconds=rng.uniform(600, 4 * 86400))
        if later < self.anchor:
            if fate < CANCEL_RATE:
                cancelled_at = later
            elif fate < CANCEL_RATE + PARTIAL_REFUND_RATE:
                refunds = (self.partial_refund(order_id, later, items),)
            elif fate < CANCEL_RATE + PARTIAL_REFUND_RATE + FULL_REFUND_RATE:
                full = tuple((i.product_id, i.quantity) for i in items)
                refunds = (Refund(f"{order_id}-r1", later, full, None, full=True),)
        return Order(
            order_id=order_id,
            user_id=user_id,
            click_ids=click_ids,
            items=tuple(items),
            created_at=c.created_at,
            paid_at=paid,
            via="click" if c.click_id is not None else "live_view",
            source_event_id=c.event_id,
            cancelled_at=cancelled_at,
            refunds=refunds,
        )

    def partial_refund(self, order_id: str, at: dt.datetime, items: list[Item]) -> Refund:
        refund_id = f"{order_id}-r1"
        if len(items) > 1:
            # One line sent back in full.
            line = self.rng.choice(items)
            return Refund(refund_id, at, ((line.product_id, line.quantity),), None, full=False)
        if items[0].quantity > 1:
            return Refund(refund_id, at, ((items[0].product_id, 1),), None, full=False)
        revenue = items[0].revenue
        amount = (revenue * Decimal(str(round(self.rng.uniform(0.1, 0.5), 2)))).quantize(CENT)
        return Refund(refund_id, at, None, max(amount, CENT), full=False)


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A session's would-be order: it exists only if its source event was kept."""

    event_id: str
    user_id: str
    click_id: str | None
    product_id: str
    created_at: dt.datetime
    content_id: str


def _at(event: Event) -> dt.datetime:
    return event.occurred_at


def _at_and_id(event: Event) -> tuple[dt.datetime, str]:
    return event.occurred_at, event.event_id


def generate(seed: int, events: int, anchor: dt.datetime) -> DemoData:
    """The whole demo for ``seed``: the catalog, exactly ``events`` viewer events, the orders."""
    if events < 0:
        raise ValueError("events must not be negative")
    if anchor.tzinfo is None:
        raise ValueError("anchor must be timezone-aware")
    anchor = anchor.astimezone(TZ)
    rng = random.Random(seed)
    catalog = generate_catalog(rng, anchor)
    prefix = f"d{seed}.{anchor.astimezone(TZ):%Y%m%d}"
    users = [viewer_id(seed, i) for i in range(max(50, events // 8))]
    activity = _Activity(rng, catalog, anchor, prefix, users)
    end = activity.anchor
    out: list[Event] = []
    candidates: list[_Candidate] = []
    while len(out) < events:
        session, wanted = activity.session()
        if len(session) == 1 and not wanted:  # most sessions: one impression, nothing more
            if session[0].occurred_at < end:
                out.append(session[0])
            continue
        # Nothing at or after the anchor, and the last session is cut to the budget, keeping
        # the events that happened first; an order needs the event that led to it.
        session = sorted((e for e in session if e.occurred_at < end), key=_at)
        session = session[: events - len(out)]
        kept = {e.event_id for e in session}
        out.extend(session)
        candidates.extend(c for c in wanted if c.event_id in kept)
    out.sort(key=_at_and_id)
    orders = [o for o in map(activity.order, candidates) if o is not None]
    orders.sort(key=lambda o: (o.paid_at, o.order_id))
    return DemoData(seed=seed, anchor=anchor, catalog=catalog, events=out, orders=orders)
