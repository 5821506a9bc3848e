"""An obviously-correct reference for the reports, and the seeded data set it is checked on.

The reference shares no code with ``services.attribution.reports``: it loops over the raw
events as they were posted, the credits as ``GET /v1/orders/{id}/attribution?model=M``
answers them (their order share recomputed from the order's lines), and the spend as it was
put in the catalog. Local buckets come from scanning the range minute by minute.

Conventions it restates (the reports' documented choices): ratios with a zero
denominator are None; money is rounded half-even to the currency's minor unit; orders are
rounded to 6 places and CVR/CPA use that rounded figure; ratios use the exact sums.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import time_machine

from tests.conftest import auth

MODELS = ("last_touch", "first_touch", "linear", "time_decay", "position_based")
FORMATS = ("native", "pre_roll", "overlay", "banner")
MINOR = {"CNY": 2, "USD": 2, "JPY": 0}
UTC = dt.UTC


# --- the data set -------------------------------------------------------------------------


@dataclass
class Credit:
    order_id: str
    content_id: str | None
    ad_id: str | None
    amount: Decimal
    share: float
    paid_at: dt.datetime


@dataclass
class DataSet:
    timezone: str
    currency: str
    platforms: dict[str, str] = field(default_factory=dict)  # account -> platform
    contents: dict[str, dict[str, Any]] = field(default_factory=dict)
    ads: dict[str, dict[str, Any]] = field(default_factory=dict)
    spend: list[tuple[str, dt.date, Decimal, str]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # as posted, plus "at"
    credits: dict[str, list[Credit]] = field(default_factory=dict)  # by model
    orders: list[str] = field(default_factory=list)


def title(catalog_id: str) -> str:
    """The name the data set gives a content, product or campaign: not its id."""
    return f"Title of {catalog_id}"


def handle(account_id: str) -> str:
    return f"h-{account_id}"


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


async def _put(client: httpx.AsyncClient, token: str, path: str, body: dict[str, Any]) -> None:
    response = await client.put(path, json=body, headers=auth(token))
    assert response.status_code in (200, 201), (path, response.text)


async def _post(
    client: httpx.AsyncClient, token: str, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=auth(token))
    assert response.status_code in (200, 201), (path, response.text)
    result: dict[str, Any] = response.json()
    return result


SHANGHAI = ZoneInfo("Asia/Shanghai")
#: The services' clock while report tests post and query (ingest refuses events more than a
#: few minutes ahead of it): a fixed moment after every instant the tests post.
NOW = dt.datetime(2026, 12, 1, tzinfo=UTC)


def fixed_clock(*, tick: bool = True) -> time_machine.travel:
    """The clock of report tests: :data:`NOW`, running on unless ``tick`` is False."""
    return time_machine.travel(NOW, tick=tick)


# Data from Oct 10 to Oct 16 2026 (Shanghai); the main report range is Oct 11–15.
DATA_START = dt.datetime(2026, 10, 10, tzinfo=SHANGHAI)
DATA_END = dt.datetime(2026, 10, 16, tzinfo=SHANGHAI)
RANGE_START = dt.datetime(2026, 10, 11, tzinfo=SHANGHAI)
RANGE_END = dt.datetime(2026, 10, 15, tzinfo=SHANGHAI)
LIVE_START = dt.datetime(2026, 10, 12, 20, tzinfo=SHANGHAI)
LIVE_END = dt.datetime(2026, 10, 12, 23, tzinfo=SHANGHAI)


async def build_shop(
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    token: str,
    *,
    seed: int = 7,
    events: int = 360,
    orders: int = 28,
) -> DataSet:
    """Post a randomized (seeded) shop through the public APIs; return what was posted.

    Two accounts on two platforms; four videos, a live room with a window, an idle video and
    an idle room; ads of every format (and one idle, one with spend only); spend per local
    day, one day of it in USD; events over six days, some on an ad and a content the catalog
    does not know; orders paid, cancelled, refunded, some exactly on the range and live-room
    boundaries.
    """
    rng = random.Random(seed)
    ds = DataSet(timezone="Asia/Shanghai", currency="CNY")
    await _put(attribution, token, "/v1/settings", {"timezone": "Asia/Shanghai", "currency": "CNY"})

    ds.platforms = {"acc-dy": "douyin", "acc-tt": "tiktok"}
    for account, platform in ds.platforms.items():
        await _put(
            catalog,
            token,
            f"/v1/accounts/{account}",
            {"platform": platform, "handle": handle(account)},
        )
    products = ["p1", "p2", "p3"]
    for product in products:
        await _put(
            catalog,
            token,
            f"/v1/products/{product}",
            {"title": title(product), "price": "10.00", "currency": "CNY"},
        )
    videos = {"v1": "acc-dy", "v2": "acc-dy", "v3": "acc-tt", "v4": "acc-tt", "v-idle": "acc-tt"}
    for content, account in videos.items():
        ds.contents[content] = {
            "kind": "video",
            "account_id": account,
            "started_at": None,
            "ended_at": None,
        }
        await _put(
            catalog,
            token,
            f"/v1/contents/{content}",
            {"kind": "video", "account_id": account, "title": title(content)},
        )
    for content, window in (("live1", (LIVE_START, LIVE_END)), ("live-idle", None)):
        body: dict[str, Any] = {"kind": "live", "account_id": "acc-dy", "title": title(content)}
        if window:
            body["started_at"] = window[0].isoformat()
            body["ended_at"] = window[1].isoformat()
        ds.contents[content] = {
            "kind": "live",
            "account_id": "acc-dy",
            "started_at": window[0].astimezone(UTC) if window else None,
            "ended_at": window[1].astimezone(UTC) if window else None,
        }
        await _put(catalog, token, f"/v1/contents/{content}", body)
    for content in ("v1", "v2", "v3", "v4", "live1"):
        for product in products if content == "live1" else rng.sample(products, 2):
            await _put(
                catalog,
                token,
                f"/v1/contents/{content}/products/{product}",
                {"placement": "product_card"},
            )
    for campaign in ("camp-a", "camp-b"):
        await _put(catalog, token, f"/v1/campaigns/{campaign}", {"name": title(campaign)})
    ds.ads = {
        "ad-native-1": {
            "campaign_id": "camp-a",
            "content_id": "v1",
            "format": "native",
            "product_id": "p1",
            "name": "Native one",
        },
        "ad-native-2": {"campaign_id": "camp-b", "content_id": "v2", "format": "native"},
        "ad-pre-1": {"campaign_id": "camp-a", "content_id": "v3", "format": "pre_roll"},
        "ad-overlay-1": {"campaign_id": "camp-b", "content_id": "live1", "format": "overlay"},
        "ad-banner-1": {"campaign_id": "camp-a", "content_id": "v4", "format": "banner"},
        "ad-idle": {"campaign_id": "camp-b", "content_id": "v1", "format": "overlay"},
        "ad-spend-only": {"campaign_id": "camp-a", "content_id": "v2", "format": "pre_roll"},
    }
    for ad, info in ds.ads.items():
        await _put(catalog, token, f"/v1/ads/{ad}", dict(info))
    day = DATA_START.date() - dt.timedelta(days=1)
    while day <= DATA_END.date():
        for ad in ("ad-native-1", "ad-native-2", "ad-pre-1", "ad-overlay-1", "ad-banner-1"):
            if rng.random() < 0.8:
                cents = rng.randint(100, 50_000)
                amount = Decimal(cents) / 100
                if ad == "ad-pre-1" and day == dt.date(2026, 10, 12):
                    amount = Decimal("10.1234")  # four places: reports round to the minor unit
                currency = "USD" if ad == "ad-banner-1" and day == dt.date(2026, 10, 13) else "CNY"
                ds.spend.append((ad, day, amount, currency))
        day += dt.timedelta(days=1)
    ds.spend.append(("ad-spend-only", dt.date(2026, 10, 12), Decimal("77.70"), "CNY"))
    for ad, spend_day, amount, currency in ds.spend:
        await _put(
            catalog,
            token,
            f"/v1/ads/{ad}/spend/{spend_day.isoformat()}",
            {"amount": str(amount), "currency": currency},
        )
    await _post(attribution, token, "/v1/sync", {})

    # Events: random ones, then hand-placed ones.
    users = [f"u{n}" for n in range(14)]
    contents = ["v1", "v2", "v3", "v4", "live1"]
    ads_of: dict[str, list[str]] = {}
    for ad, info in ds.ads.items():
        if ad not in ("ad-idle", "ad-spend-only"):
            ads_of.setdefault(info["content_id"], []).append(ad)
    kinds = [
        ("impression", 30),
        ("view", 20),
        ("view_complete", 8),
        ("like", 5),
        ("comment", 3),
        ("share", 3),
        ("click", 12),
        ("follow", 2),
        ("add_to_cart", 3),
        ("live_enter", 4),
    ]
    span = (DATA_END - DATA_START).total_seconds()
    raw: list[dict[str, Any]] = []
    for n in range(events):
        event_type = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
        content = "live1" if event_type == "live_enter" else rng.choice(contents)
        at = DATA_START + dt.timedelta(seconds=rng.uniform(0, span))
        event: dict[str, Any] = {
            "event_id": f"e{n}",
            "type": event_type,
            "occurred_at": at.isoformat(),
            "user_id": rng.choice(users),
            "content_id": content,
        }
        if ads_of.get(content) and rng.random() < 0.6:
            event["ad_id"] = rng.choice(ads_of[content])
        if rng.random() < 0.4 or event_type == "add_to_cart":
            event["product_id"] = rng.choice(products)
        if event_type == "click":
            event["click_id"] = f"ck{n}"
        if event_type in ("view", "view_complete") and rng.random() < 0.6:
            event["properties"] = {"watch_seconds": round(rng.uniform(0.5, 90.0), 3)}
        raw.append(event)

    def add(event_id: str, event_type: str, at: dt.datetime, user: str, **extra: Any) -> None:
        raw.append(
            {
                "event_id": event_id,
                "type": event_type,
                "occurred_at": at.isoformat(),
                "user_id": user,
                **extra,
            }
        )

    # Range edges: an event at `from` counts, one at `to` does not.
    add("edge-from", "impression", RANGE_START, "u1", content_id="v1", ad_id="ad-native-1")
    add("edge-to", "impression", RANGE_END, "u1", content_id="v1", ad_id="ad-native-1")
    # watch_seconds that must be ignored: not a number, and on an impression.
    add(
        "w-text",
        "view",
        RANGE_START + dt.timedelta(hours=5),
        "u2",
        content_id="v2",
        properties={"watch_seconds": "12"},
    )
    add(
        "w-imp",
        "impression",
        RANGE_START + dt.timedelta(hours=5),
        "u2",
        content_id="v2",
        properties={"watch_seconds": 99},
    )
    # The catalog does not know these (yet): rows with null catalog fields and a warning.
    add(
        "ghost-1",
        "impression",
        RANGE_START + dt.timedelta(hours=6),
        "u3",
        content_id="c-ghost",
        ad_id="ad-ghost",
    )
    add(
        "ghost-2",
        "click",
        RANGE_START + dt.timedelta(hours=7),
        "u3",
        content_id="c-ghost",
        ad_id="ad-ghost",
        click_id="ck-ghost",
    )
    # A video with impressions only: every rate over views is null.
    for n in range(3):
        add(
            f"imp-only-{n}",
            "impression",
            RANGE_START + dt.timedelta(hours=8 + n),
            "u4",
            content_id="v-imp",
        )
    # Live room buyers: a view while live, then orders on and around the window's edges.
    for n, who in enumerate(("lb0", "lb1", "lb2", "lb3", "lb4")):
        add(
            f"live-{n}",
            "live_enter",
            LIVE_START + dt.timedelta(minutes=n),
            who,
            content_id="live1",
            ad_id="ad-overlay-1",
        )
    for start in range(0, len(raw), 1000):
        result = await _post(
            attribution, token, "/v1/events", {"events": raw[start : start + 1000]}
        )
        assert not result["rejected"], result["rejected"]
    for event in raw:
        ds.events.append({**event, "at": parse(event["occurred_at"])})

    # Orders.
    price = lambda: str(Decimal(rng.randint(99, 99_999)) / 100)  # noqa: E731

    async def order(
        order_id: str, user: str, paid: dt.datetime, items: list[tuple[str, int, str]]
    ) -> None:
        body = {
            "order_id": order_id,
            "status": "paid",
            "occurred_at": paid.isoformat(),
            "user_id": user,
            "currency": "CNY",
            "items": [{"product_id": p, "quantity": q, "unit_price": unit} for p, q, unit in items],
        }
        await _post(attribution, token, "/v1/orders", body)
        ds.orders.append(order_id)

    for n in range(orders):
        paid = DATA_START + dt.timedelta(hours=12, seconds=rng.uniform(0, span - 12 * 3600))
        items = [(p, rng.randint(1, 3), price()) for p in rng.sample(products, rng.randint(1, 2))]
        await order(f"o{n}", rng.choice(users), paid, items)
        roll = rng.random()
        if roll < 0.18:
            await _post(
                attribution,
                token,
                "/v1/orders",
                {
                    "order_id": f"o{n}",
                    "status": "cancelled" if roll < 0.12 else "refunded",
                    "occurred_at": (paid + dt.timedelta(hours=1)).isoformat(),
                    "currency": "CNY",
                    "user_id": "whoever",
                    "items": [
                        {"product_id": p, "quantity": q, "unit_price": unit} for p, q, unit in items
                    ],
                },
            )
        elif roll < 0.35:
            await _post(
                attribution,
                token,
                f"/v1/orders/o{n}/refunds",
                {
                    "refund_id": f"r{n}",
                    "occurred_at": (paid + dt.timedelta(hours=2)).isoformat(),
                    "items": [{"product_id": items[0][0], "quantity": 1}],
                },
            )
    # Orders exactly on the edges: paid at `from` (in), at `to` (out), at the live room's
    # start and end (direct), after it (indirect).
    await order("o-from", "u1", RANGE_START, [("p1", 1, "10.00")])
    await order("o-to", "u1", RANGE_END, [("p1", 1, "10.00")])
    await order("o-live-start", "lb0", LIVE_START + dt.timedelta(minutes=0), [("p2", 1, "33.33")])
    await order("o-live-end", "lb1", LIVE_END, [("p3", 2, "19.99")])
    await order("o-live-mid", "lb2", LIVE_START + dt.timedelta(hours=1), [("p1", 1, "0.05")])
    await order("o-live-after", "lb3", LIVE_END + dt.timedelta(minutes=1), [("p2", 3, "7.77")])
    await order("o-live-late", "lb4", LIVE_END + dt.timedelta(hours=5), [("p1", 1, "120.00")])
    await fetch_credits(attribution, token, ds)
    return ds


async def fetch_credits(attribution: httpx.AsyncClient, token: str, ds: DataSet) -> None:
    """Every order's credits under every model, as the API answers them."""
    ds.credits = {model: [] for model in MODELS}
    for order_id in ds.orders:
        response = await attribution.get(f"/v1/orders/{order_id}", headers=auth(token))
        assert response.status_code == 200, response.text
        order = response.json()
        if order["paid_at"] is None:
            continue
        paid_at = parse(order["paid_at"])
        lines = {line["product_id"]: Fraction(Decimal(line["revenue"])) for line in order["lines"]}
        total = sum(lines.values(), Fraction(0))
        for model in MODELS:
            response = await attribution.get(
                f"/v1/orders/{order_id}/attribution",
                params={"model": model},
                headers=auth(token),
            )
            assert response.status_code == 200, response.text
            for credit in response.json()["credits"]:
                line_share = (
                    lines[credit["product_id"]] / total if total else Fraction(1, len(lines))
                )
                ds.credits[model].append(
                    Credit(
                        order_id=order_id,
                        content_id=credit["content_id"],
                        ad_id=credit["ad_id"],
                        amount=Decimal(credit["amount"]),
                        share=float(line_share) * credit["weight"],
                        paid_at=paid_at,
                    )
                )


# --- metric conventions ---------------------------------------------------------------------


def money(value: Decimal, currency: str) -> str:
    quantum = Decimal(1).scaleb(-MINOR[currency])
    text = format(value.quantize(quantum, rounding=ROUND_HALF_EVEN), "f")
    return text.removeprefix("-") if Decimal(text) == 0 else text


def ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


def money_ratio(amount: Decimal, denominator: Any, currency: str, per: int = 1) -> str | None:
    if denominator == 0:
        return None
    return money(amount * per / Decimal(repr(denominator)), currency)


def orders_figure(total: float) -> float:
    return round(total, 6) + 0.0


def in_range(at: dt.datetime, start: dt.datetime, end: dt.datetime) -> bool:
    return start <= at < end


# --- reports ------------------------------------------------------------------------------


def _metrics(
    counts: dict[str, int], orders: float, gmv: Decimal, spend: Decimal, currency: str
) -> dict[str, Any]:
    shown_orders = orders_figure(orders)
    return {
        "impressions": counts.get("impression", 0),
        "views": counts.get("view", 0),
        "completions": counts.get("view_complete", 0),
        "completion_rate": ratio(counts.get("view_complete", 0), counts.get("view", 0)),
        "clicks": counts.get("click", 0),
        "ctr": ratio(counts.get("click", 0), counts.get("impression", 0)),
        "orders": shown_orders,
        "gmv": money(gmv, currency),
        "cvr": ratio(shown_orders, counts.get("click", 0)),
        "spend": money(spend, currency),
        "cpm": money_ratio(spend, counts.get("impression", 0), currency, 1000),
        "cpc": money_ratio(spend, counts.get("click", 0), currency),
        "cpa": money_ratio(spend, shown_orders, currency),
        "roas": None if spend == 0 else float(gmv / spend),
    }


def spend_counts(day: dt.date, start: dt.datetime, end: dt.datetime, tz: ZoneInfo) -> bool:
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    return start <= midnight < end


def ads_report(
    ds: DataSet,
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    include_inactive: bool = False,
    campaign_id: str | None = None,
) -> dict[str, Any]:
    tz = ZoneInfo(ds.timezone)

    def wanted(ad: str) -> bool:
        return campaign_id is None or ds.ads.get(ad, {}).get("campaign_id") == campaign_id

    counts: dict[str, dict[str, int]] = {}
    for event in ds.events:
        ad = event.get("ad_id")
        counted = event["type"] in ("impression", "view", "view_complete", "click")
        if ad and counted and wanted(ad) and in_range(event["at"], start, end):
            per = counts.setdefault(ad, {})
            per[event["type"]] = per.get(event["type"], 0) + 1
    shares: dict[str, list[float]] = {}
    gmv: dict[str, Decimal] = {}
    for credit in ds.credits[model]:
        if credit.ad_id and wanted(credit.ad_id) and in_range(credit.paid_at, start, end):
            shares.setdefault(credit.ad_id, []).append(credit.share)
            gmv[credit.ad_id] = gmv.get(credit.ad_id, Decimal(0)) + credit.amount
    spend: dict[str, Decimal] = {}
    other: dict[str, Decimal] = {}
    spent: set[str] = set()
    for ad, day, amount, currency in ds.spend:
        if wanted(ad) and spend_counts(day, start, end, tz):
            spent.add(ad)
            if currency == ds.currency:
                spend[ad] = spend.get(ad, Decimal(0)) + amount
            else:
                other[currency] = other.get(currency, Decimal(0)) + amount
    ids = set(counts) | set(shares) | spent
    if include_inactive:
        ids |= {ad for ad in ds.ads if wanted(ad)}
    rows = []
    per_format: dict[Any, dict[str, Any]] = {
        fmt: {"counts": {}, "shares": [], "gmv": Decimal(0), "spend": Decimal(0)} for fmt in FORMATS
    }
    for ad in ids:
        info = ds.ads.get(ad)
        fmt = info["format"] if info else None
        ad_counts = counts.get(ad, {})
        ad_shares = shares.get(ad, [])
        rows.append(
            {
                "ad_id": ad,
                "campaign_id": info["campaign_id"] if info else None,
                "content_id": info["content_id"] if info else None,
                "format": fmt,
                **_metrics(
                    ad_counts,
                    math.fsum(ad_shares),
                    gmv.get(ad, Decimal(0)),
                    spend.get(ad, Decimal(0)),
                    ds.currency,
                ),
                "ad_name": info.get("name") if info else None,
                "campaign_name": title(info["campaign_id"]) if info else None,
                "content_title": title(info["content_id"]) if info else None,
                "product_id": info.get("product_id") if info else None,
                "product_title": title(info["product_id"])
                if info and "product_id" in info
                else None,
            }
        )
        group = per_format.setdefault(
            fmt, {"counts": {}, "shares": [], "gmv": Decimal(0), "spend": Decimal(0)}
        )
        for key, value in ad_counts.items():
            group["counts"][key] = group["counts"].get(key, 0) + value
        group["shares"].extend(ad_shares)
        group["gmv"] += gmv.get(ad, Decimal(0))
        group["spend"] += spend.get(ad, Decimal(0))
    rows.sort(key=lambda row: (-Decimal(str(row["gmv"])), row["ad_id"]))
    by_format = [
        {
            "format": fmt,
            **_metrics(
                group["counts"],
                math.fsum(group["shares"]),
                group["gmv"],
                group["spend"],
                ds.currency,
            ),
        }
        for fmt, group in per_format.items()
    ]
    return {"currency": ds.currency, "rows": rows, "by_format": by_format, "other": other}


def contents_report(
    ds: DataSet,
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    include_inactive: bool = False,
    kind: str | None = None,
    platform: str | None = None,
    account_id: str | None = None,
) -> list[dict[str, Any]]:
    filtered = kind is not None or platform is not None or account_id is not None

    def wanted(content: str) -> bool:
        info = ds.contents.get(content)
        if info is None:
            return not filtered
        return (
            (kind is None or info["kind"] == kind)
            and (account_id is None or info["account_id"] == account_id)
            and (platform is None or ds.platforms.get(info["account_id"]) == platform)
        )

    counts: dict[str, dict[str, int]] = {}
    viewers: dict[str, set[str]] = {}
    watch: dict[str, list[float]] = {}
    for event in ds.events:
        content = event.get("content_id")
        if not content or not wanted(content) or not in_range(event["at"], start, end):
            continue
        kind_of = event["type"]
        if kind_of in ("impression", "view", "view_complete", "like", "comment", "share", "click"):
            per = counts.setdefault(content, {})
            per[kind_of] = per.get(kind_of, 0) + 1
        if kind_of == "view":
            viewers.setdefault(content, set()).add(event["user_id"])
        seconds = (event.get("properties") or {}).get("watch_seconds")
        if kind_of in ("view", "view_complete") and type(seconds) in (int, float):
            watch.setdefault(content, []).append(float(seconds or 0))
    shares: dict[str, list[float]] = {}
    gmv: dict[str, Decimal] = {}
    direct: dict[str, Decimal] = {}
    for credit in ds.credits[model]:
        content = credit.content_id
        if not content or not wanted(content) or not in_range(credit.paid_at, start, end):
            continue
        shares.setdefault(content, []).append(credit.share)
        gmv[content] = gmv.get(content, Decimal(0)) + credit.amount
        info = ds.contents.get(content)
        if (
            info
            and info["kind"] == "live"
            and info["started_at"] is not None
            and info["started_at"] <= credit.paid_at
            and (info["ended_at"] is None or credit.paid_at <= info["ended_at"])
        ):
            direct[content] = direct.get(content, Decimal(0)) + credit.amount
    ids = set(counts) | set(shares) | set(viewers) | set(watch)
    if include_inactive:
        ids |= {content for content in ds.contents if wanted(content)}
    rows = []
    cur = ds.currency
    for content in ids:
        info = ds.contents.get(content)
        c = counts.get(content, {})
        views = c.get("view", 0)
        total = gmv.get(content, Decimal(0))
        live_part = direct.get(content, Decimal(0))
        seconds = watch.get(content, [])
        rows.append(
            {
                "content_id": content,
                "kind": info["kind"] if info else None,
                "platform": ds.platforms.get(info["account_id"]) if info else None,
                "account_id": info["account_id"] if info else None,
                "impressions": c.get("impression", 0),
                "views": views,
                "unique_viewers": len(viewers.get(content, ())),
                "completion_rate": ratio(c.get("view_complete", 0), views),
                "avg_watch_seconds": math.fsum(seconds) / len(seconds) if seconds else None,
                "likes": c.get("like", 0),
                "comments": c.get("comment", 0),
                "shares": c.get("share", 0),
                "engagement_rate": ratio(
                    c.get("like", 0) + c.get("comment", 0) + c.get("share", 0), views
                ),
                "clicks": c.get("click", 0),
                "ctr": ratio(c.get("click", 0), c.get("impression", 0)),
                "orders": orders_figure(math.fsum(shares.get(content, []))),
                "gmv": money(total, cur),
                "gpm": money_ratio(total, views, cur, 1000),
                "direct_gmv": money(live_part, cur),
                "indirect_gmv": money(total - live_part, cur),
                "title": title(content) if info else None,
                "account_handle": handle(info["account_id"]) if info else None,
            }
        )
    rows.sort(key=lambda row: (-Decimal(str(row["gmv"])), row["content_id"]))
    return rows


# --- time series --------------------------------------------------------------------------


def bucket_key(at: dt.datetime, tz: ZoneInfo, interval: str) -> tuple[Any, ...]:
    local = at.astimezone(tz)
    if interval == "day":
        return (local.date(),)
    return (local.date(), local.hour, local.utcoffset())


@functools.cache
def bucket_starts(
    start: dt.datetime, end: dt.datetime, tz: ZoneInfo, interval: str
) -> dict[tuple[Any, ...], dt.datetime]:
    """Brute force: scan minute by minute from two days before ``start``; a bucket starts
    wherever the local key changes; keep the buckets of the minutes in the range."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)  # aware arithmetic is wall-clock
    first_minute = start.replace(second=0, microsecond=0)
    at = first_minute - dt.timedelta(days=2)
    previous = bucket_key(at, tz, interval)
    current_start = at
    starts: dict[tuple[Any, ...], dt.datetime] = {}
    while at < end:
        key = bucket_key(at, tz, interval)
        if key != previous:
            current_start = at
            previous = key
        if at >= first_minute:
            starts.setdefault(key, current_start)
        at += dt.timedelta(minutes=1)
    return starts


def series(
    ds: DataSet,
    metric: str,
    interval: str,
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    content_id: str | None = None,
    ad_id: str | None = None,
) -> list[tuple[str, Any]]:
    tz = ZoneInfo(ds.timezone)
    starts = bucket_starts(start, end, tz, interval)
    counts: dict[tuple[Any, ...], int] = dict.fromkeys(starts, 0)
    shares: dict[tuple[Any, ...], list[float]] = {key: [] for key in starts}
    amounts: dict[tuple[Any, ...], Decimal] = dict.fromkeys(starts, Decimal(0))
    event_type = {"impressions": "impression", "views": "view", "clicks": "click"}.get(metric)
    if event_type:
        for event in ds.events:
            if (
                event["type"] == event_type
                and in_range(event["at"], start, end)
                and (content_id is None or event.get("content_id") == content_id)
                and (ad_id is None or event.get("ad_id") == ad_id)
            ):
                counts[bucket_key(event["at"], tz, interval)] += 1
    else:
        for credit in ds.credits[model]:
            if (
                in_range(credit.paid_at, start, end)
                and (content_id is None or credit.content_id == content_id)
                and (ad_id is None or credit.ad_id == ad_id)
            ):
                key = bucket_key(credit.paid_at, tz, interval)
                shares[key].append(credit.share)
                amounts[key] += credit.amount
    points: list[tuple[str, Any]] = []
    for key, bucket_start in sorted(starts.items(), key=lambda item: item[1]):
        stamp = bucket_start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if event_type:
            points.append((stamp, counts[key]))
        elif metric == "orders":
            points.append((stamp, orders_figure(math.fsum(shares[key]))))
        else:
            points.append((stamp, money(amounts[key], ds.currency)))
    return points
