"""The demo's world: a month of a small shop with eight creators, for people to look at.

50 videos and 5 live rooms, 30 products with product cards and live-room pinning slots, four
campaigns with native, pre-roll, overlay and banner ads and their fading daily spend, and a
few tracking links. Catalog ids are fixed, so a rerun replaces the same objects.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
from decimal import Decimal

from services.demo import shop
from services.demo.timeline import DAYS, HOUR_CUM, TZ, from_us, to_us
from services.demo.world import (
    CATEGORIES,
    Account,
    Ad,
    Campaign,
    Content,
    Link,
    Product,
    Spend,
    TrackingLink,
    World,
)


def _price(rng: random.Random, low: int, high: int) -> Decimal:
    # Shop prices end in 9 or 9.90.
    whole = rng.randrange(low, high + 1)
    return Decimal(f"{whole - whole % 10 + 9}.90") if rng.random() < 0.6 else Decimal(whole)


def _midnight(day: dt.date) -> dt.datetime:
    """The instant a tenant-timezone day starts."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=TZ)


def _at_hour(rng: random.Random, midnight: dt.datetime) -> dt.datetime:
    """A moment of the day starting at ``midnight``, following the daily rhythm."""
    hour = bisect.bisect_right(HOUR_CUM, rng.random() * HOUR_CUM[-1])
    return midnight + dt.timedelta(hours=hour, seconds=rng.randrange(3600))


def build(rng: random.Random, events: int, start_us: int, span_us: int) -> World:
    """The same catalog at any size of the month (``events`` and ``span_us`` do not matter)."""
    start = from_us(start_us).astimezone(TZ)
    anchor = start + dt.timedelta(days=DAYS)
    accounts = tuple(
        Account(account_id, platform, handle, name)
        for account_id, platform, handle, name, _ in shop.ACCOUNTS
    )
    account_categories = {spec[0]: spec[4] for spec in shop.ACCOUNTS}

    products: list[Product] = []
    by_category: dict[str, list[Product]] = {c: [] for c in CATEGORIES}
    for category in CATEGORIES:
        for title, low, high in shop.PRODUCTS[category]:
            product_id = f"prod-{len(products) + 1:03d}"
            product = Product(
                product_id,
                title,
                _price(rng, low, high),
                category,
                f"https://shop.example.com/products/{product_id}",
            )
            products.append(product)
            by_category[category].append(product)

    contents: list[Content] = []
    links: list[Link] = []
    for n in range(1, 51):
        account = rng.choice(accounts)
        topic = rng.choice(account_categories[account.id])
        fmt = rng.choice(shop.VIDEO_FORMATS)
        day = (start + dt.timedelta(days=rng.randrange(DAYS - 1))).date()
        topics = (topic, *((rng.choice(CATEGORIES),) if rng.random() < 0.3 else ()))
        video = Content(
            id=f"vid-{n:03d}",
            kind="video",
            account_id=account.id,
            platform=account.platform,
            title=shop.FORMAT_TITLES[fmt].format(rng.choice(shop.TOPIC_WORDS[topic])),
            topics=tuple(dict.fromkeys(topics)),
            format=fmt,
            published_us=to_us(_at_hour(rng, _midnight(day))),
            duration_s=int(min(600, 12 + rng.expovariate(1 / 50))),
        )
        contents.append(video)
        chosen = rng.sample(by_category[topic], rng.randint(1, 3))
        links.extend(Link(video.id, p.id, "product_card") for p in chosen)

    for n, account_index in enumerate(shop.LIVE_ACCOUNTS, start=1):
        account = accounts[account_index]
        categories = account_categories[account.id]
        day = (start + dt.timedelta(days=2 + (n - 1) * 6 + rng.randrange(3))).date()
        opens = dt.datetime(day.year, day.month, day.day, rng.choice((19, 20)), tzinfo=TZ)
        hours = rng.choice((2, 2.5, 3, 3.5, 4))
        opens_us, closes_us = to_us(opens), to_us(opens + dt.timedelta(hours=hours))
        live = Content(
            id=f"live-{n:02d}",
            kind="live",
            account_id=account.id,
            platform=account.platform,
            title=f"{account.display_name} live: {rng.choice(shop.TOPIC_WORDS[categories[0]])}",
            topics=categories,
            format="live_shopping",
            published_us=opens_us,
            duration_s=int(hours * 3600),
            started_us=opens_us,
            ended_us=closes_us,
        )
        contents.append(live)
        pool = [p for c in categories for p in by_category[c]]
        pinned = rng.sample(pool, rng.randint(3, 5))
        # Each product is pinned for one slot of the show; slots tile the live window.
        slot = (closes_us - opens_us) // len(pinned)
        for i, product in enumerate(pinned):
            ends = closes_us if i == len(pinned) - 1 else opens_us + slot * (i + 1)
            links.append(Link(live.id, product.id, "pinned", opens_us + slot * i, ends))

    campaign_categories = {spec[0]: spec[3] for spec in shop.CAMPAIGNS}
    campaigns = tuple(
        Campaign(
            id=campaign_id,
            name=name,
            objective=objective,
            starts_us=to_us(start),
            ends_us=to_us(anchor + dt.timedelta(days=3 * i + 1)),
            budget=Decimal(rng.randrange(20, 81) * 1000),
        )
        for i, (campaign_id, name, objective, _) in enumerate(shop.CAMPAIGNS)
    )

    # Ads go on distinct videos, each promoting one product the video links.
    videos = [c for c in contents if c.kind == "video"]
    ad_videos = rng.sample(videos, len(shop.AD_MIX))
    category_of = {p.id: p.category for p in products}
    ads: list[Ad] = []
    native: set[tuple[str, str]] = set()
    for n, (fmt, video) in enumerate(zip(shop.AD_MIX, ad_videos, strict=True), start=1):
        # The video's most affordable product: what a shop pays to push on the feed.
        price = {p.id: p.price for p in products}
        product_id = min(
            (k.product_id for k in links if k.content_id == video.id), key=price.__getitem__
        )
        campaign = next(
            (c for c in campaigns if category_of[product_id] in campaign_categories[c.id]),
            campaigns[n % len(campaigns)],
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

    published = {c.id: c.published_us for c in contents}
    spend: list[Spend] = []
    last_day = (anchor - dt.timedelta(days=1)).date()
    for ad in ads:
        low, high = shop.DAILY_SPEND[ad.format]
        base = rng.uniform(low, high)
        day = from_us(published[ad.content_id]).astimezone(TZ).date()
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
    # Popularity: a shuffled ranking (the viewers' Zipf pick favours the first).
    ranked = list(contents)
    rng.shuffle(ranked)
    return World(accounts, products, ranked, links, campaigns, ads, spend, tracking_links)
