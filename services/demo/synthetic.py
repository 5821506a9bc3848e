"""A synthetic world that grows with the month: for load tests and benchmarks.

About 1.2·√N contents for N events (one in eight a live room), one account per twenty
contents on six platforms, one product per ten, one ad per forty on the popular contents, each
with daily spend over a few weeks. Names say what an object is, nothing more.
"""

from __future__ import annotations

import random
from decimal import Decimal

from services.demo import world
from services.demo.timeline import DAY, DAYS, SECOND, from_us
from shared.vocabulary import AdFormat, ContentKind, Placement, Platform

PLATFORMS: tuple[Platform, ...] = (
    "douyin",
    "kuaishou",
    "tiktok",
    "xiaohongshu",
    "wechat_channels",
    "bilibili",
)
AD_MIX: tuple[AdFormat, ...] = (
    "native",
    "native",
    "native",
    "pre_roll",
    "pre_roll",
    "overlay",
    "banner",
)
PRICES = (19, 29, 39, 59, 79, 99, 129, 199, 299, 599)


def build(r: random.Random, events: int, start_us: int, span_us: int) -> world.World:
    n_contents = max(40, int(1.2 * events**0.5))
    n_accounts = max(5, n_contents // 20)
    accounts = []
    for i in range(n_accounts):
        platform = PLATFORMS[min(int(r.expovariate(0.6)), len(PLATFORMS) - 1)]
        accounts.append(world.Account(f"acct-{i:04d}", platform, f"@c{i}"))
    products = [
        world.Product(
            f"prod-{i:05d}",
            f"product {i}",
            Decimal(r.choice(PRICES)) - Decimal("0.10"),
            world.CATEGORIES[i % len(world.CATEGORIES)],
        )
        for i in range(max(10, n_contents // 10))
    ]
    product_ids = [p.id for p in products]
    contents: list[world.Content] = []
    links: list[world.Link] = []
    linked_of: list[list[str]] = []
    for i in range(n_contents):
        account = accounts[int(r.paretovariate(1.2)) % n_accounts]
        live = r.random() < 0.12
        published = start_us - 3 * DAY + r.randrange(span_us)
        duration = r.randrange(3600, 4 * 3600) if live else r.randrange(8, 180)
        linked = sorted(r.sample(product_ids, 1 + int(r.random() < 0.3) + live))
        kind: ContentKind = "live" if live else "video"
        content_id = f"{'live' if live else 'vid'}-{i:05d}"
        content = world.Content(
            id=content_id,
            kind=kind,
            account_id=account.id,
            platform=account.platform,
            title=f"{kind} {content_id}",
            published_us=published,
            duration_s=duration,
            started_us=published if live else None,
            ended_us=published + duration * SECOND if live else None,
        )
        contents.append(content)
        linked_of.append(linked)
        placement: Placement = "pinned" if live else "product_card"
        links.extend(world.Link(content.id, product, placement) for product in linked)
    n_campaigns = max(2, n_contents // 200)
    campaigns = [world.Campaign(f"camp-{i:03d}", f"campaign {i}") for i in range(n_campaigns)]
    # Ads promote some of the popular contents (low index = popular).
    n_ads = max(4, n_contents // 40)
    promoted = r.sample(range(min(n_contents, max(n_ads * 3, 10))), k=min(n_contents, n_ads))
    ads: list[world.Ad] = []
    spend: list[world.Spend] = []
    for i, index in enumerate(promoted):
        content = contents[index]
        ad_format = AD_MIX[i % len(AD_MIX)]
        ad = world.Ad(
            f"ad-{i:04d}",
            campaigns[i % n_campaigns].id,
            content.id,
            linked_of[index][0],
            ad_format,
            f"{ad_format} ad ad-{i:04d}",
        )
        ads.append(ad)
        first_day, days = r.randrange(DAYS - 7), r.randrange(7, 22)
        daily = Decimal(r.randrange(5_000, 200_000)) / 100
        spend.extend(
            world.Spend(ad.id, from_us(start_us + day * DAY).date(), daily)
            for day in range(first_day, min(DAYS, first_day + days))
        )
    return world.World(accounts, products, contents, links, campaigns, ads, spend)
