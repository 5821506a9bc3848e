"""Ad spend in proportion to the month's traffic, so every format earns a plausible ROAS.

The catalog's daily spend has a shape (a base per ad, day-to-day noise, fading as the promoted
video ages) but no scale of its own: a month of 2,000 events and one of a million see very
different ad traffic. Once the month's events and orders exist, each format's spend is scaled
so that the GMV last touch credits its ads with (by the attribution engine's own rule and
default windows) over its spend is the format's target ROAS: native ahead of pre-roll,
overlay and banner, as native placements do on the short-video platforms.

The ads' traffic (``viewers.AdTraffic``) makes that spend cost what ad impressions and clicks
cost on Douyin and Kuaishou. A small month's handful of ad orders can still land a format's
target off those prices (one dear order on a few hundred impressions); its spend is then held
inside them and inside a ROAS band (below native's for the other formats), or, if no spend
fits all three, it spends nothing, as a format without credited orders does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from decimal import Decimal

from services.attribution.credit import engine
from services.demo.orders import Order
from services.demo.timeline import CURRENCY, from_us
from services.demo.viewers import Event
from services.demo.world import Spend, World
from shared.vocabulary import AdFormat

#: GMV / spend each format's ads aim at over the month.
TARGET_ROAS: dict[AdFormat, Decimal] = {
    "native": Decimal("4.8"),
    "pre_roll": Decimal("3.2"),
    "overlay": Decimal("2.8"),
    "banner": Decimal("2.4"),
}
#: The ROAS a format's spend keeps within; the others' stays below NATIVE_LEAD of native's.
ROAS_BAND = (Decimal("1.1"), Decimal("5.8"))
NATIVE_LEAD = Decimal("0.95")
#: Spend per 1,000 ad impressions and per ad click (CNY) the spend keeps within, inside the
#: platforms' usual CPM of 20-120 and CPC of 0.3-5.
CPM_RANGE = (Decimal(25), Decimal(110))
CPC_RANGE = (Decimal("0.4"), Decimal("4.7"))
CENT = Decimal("0.01")


def ad_gmv(world: World, events: Sequence[Event], orders: Iterable[Order]) -> dict[str, Decimal]:
    """Per ad: the revenue last touch credits it with, under the default windows (orders
    cancelled or refunded in full bring nothing)."""
    touches: dict[str, list[engine.Touch]] = {}
    buyer_of_click: dict[str, str] = {}
    for e in events:
        if engine.touch_kind(e.type) is None:
            continue
        touches.setdefault(e.user_id, []).append(
            engine.Touch(e.event_id, e.type, from_us(e.t_us), e.content_id, e.ad_id, e.product_id)
        )
        if e.click_id is not None:
            buyer_of_click[e.click_id] = e.user_id
    linked: dict[str, set[str]] = {}
    for link in world.links:
        linked.setdefault(link.content_id, set()).add(link.product_id)
    content_products = {key: frozenset(value) for key, value in linked.items()}
    gmv: dict[str, Decimal] = {}
    for order in orders:
        if order.cancelled_us is not None or (order.refund is not None and order.refund.full):
            continue
        buyer = order.user_id or next(
            (buyer_of_click[c] for c in order.click_ids if c in buyer_of_click), None
        )
        if buyer is None:
            continue
        credits = engine.attribute(
            order_time=from_us(order.paid_us),
            lines=[engine.Line(i.product_id, i.revenue) for i in order.items],
            touches=touches.get(buyer, ()),
            rules=engine.Rules(),
            model="last_touch",
            currency=CURRENCY,
            content_products=content_products,
        )
        for credit in credits:
            if credit.ad_id is not None:
                gmv[credit.ad_id] = gmv.get(credit.ad_id, Decimal(0)) + credit.amount
    return gmv


def format_total(
    world: World,
    events: Sequence[Event],
    gmv: Decimal,
    ad_format: AdFormat,
    roas_band: tuple[Decimal, Decimal],
) -> Decimal | None:
    """What a format spends over the month: its target ROAS on ``gmv``, held inside
    ``roas_band``, CPM_RANGE and CPC_RANGE; None when nothing fits (or it earned nothing)."""
    if not gmv:
        return None
    ads = {ad.id for ad in world.ads if ad.format == ad_format}
    impressions = clicks = 0
    for e in events:
        if e.ad_id in ads:
            impressions += e.type == "impression"
            clicks += e.type == "click"
    roas_low, roas_high = roas_band
    low = max(gmv / roas_high, CPM_RANGE[0] * impressions / 1000, CPC_RANGE[0] * clicks)
    high = min(gmv / roas_low, CPM_RANGE[1] * impressions / 1000, CPC_RANGE[1] * clicks)
    if low > high:
        return None
    return min(max(gmv / TARGET_ROAS[ad_format], low), high)


def scaled(world: World, events: Sequence[Event], orders: Sequence[Order]) -> list[Spend]:
    """The world's spend with each format's days scaled to its total (``format_total``),
    native's first, the others' ROAS below it; a format whose ads brought no credited order
    this month (a small month), or too few for believable prices, spends nothing, so its ROAS
    is unknown rather than 0."""
    fmt = {ad.id: ad.format for ad in world.ads}
    gmv: dict[AdFormat, Decimal] = dict.fromkeys(TARGET_ROAS, Decimal(0))
    for ad_id, amount in ad_gmv(world, events, orders).items():
        if ad_id in fmt:
            gmv[fmt[ad_id]] += amount
    shape: dict[AdFormat, Decimal] = dict.fromkeys(TARGET_ROAS, Decimal(0))
    for day in world.spend:
        shape[fmt[day.ad_id]] += day.amount
    totals: dict[AdFormat, Decimal] = {}
    band = ROAS_BAND
    native = format_total(world, events, gmv["native"], "native", band)
    if native is not None:
        totals["native"] = native
        band = (band[0], min(band[1], gmv["native"] / native * NATIVE_LEAD))
    for key in TARGET_ROAS:
        total = None if key == "native" else format_total(world, events, gmv[key], key, band)
        if total is not None:
            totals[key] = total
    factor = {key: total / shape[key] for key, total in totals.items() if shape[key]}
    return [
        replace(day, amount=max(CENT, (day.amount * factor[fmt[day.ad_id]]).quantize(CENT)))
        for day in world.spend
        if fmt[day.ad_id] in factor
    ]
