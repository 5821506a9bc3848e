"""A simulated month of short-video and live commerce for one tenant: the generator.

Pure: no I/O and no clock. Everything derives from ``random.Random(seed)`` and the month's end,
so the same arguments give byte-identical request bodies. Viewers (one SHA-256 id each) come a
heavy-tailed number of times, their sessions clustered around a first visit; each session picks
a content by Zipf popularity and walks its drop-off (``viewers``), some of them ending in
orders (``orders``).

Two scenarios share the model. ``DEMO`` is the month people look at on the dashboard: a fixed
shop, sessions on the tenant's daily rhythm and inside live rooms' windows, nothing after the
end (the end is today), dated ids. ``LOAD`` is the month the benchmark sends: a world that
grows with the month, random ids, client retries and senders leaving the platform out.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
import random
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any

from services.demo import narrative, spend, synthetic
from services.demo.ids import DatedIds, Ids, RandomIds
from services.demo.orders import Desk, Order
from services.demo.timeline import (
    DAY,
    DAYS,
    SECOND,
    TZ,
    FreeTimes,
    LocalTimes,
    Times,
    from_us,
    to_us,
)
from services.demo.viewers import PLAIN_ADS, AdTraffic, Audience, Event
from services.demo.wire import iso
from services.demo.world import Ad, World, WorldBuilder

ZIPF_S = 1.1
RETRY_WINDOW = 5_000  # a retried event is sent again within this many events


@dataclass(frozen=True)
class Scenario:
    """A kind of month; the defaults make the plain one a load test sends."""

    world: WorldBuilder
    #: The text hashed into viewer ids, with ``{seed}`` and ``{index}``.
    viewer_key: str
    #: DatedIds (a month posted by hand, perhaps again another day), else RandomIds.
    dated_ids: bool = False
    #: Sessions begin in the month's first this-many days (orders and late events run on).
    viewing_days: int = DAYS - 2
    #: LocalTimes (the tenant's day, videos' publication, live windows), else FreeTimes.
    local_times: bool = False
    #: Nothing at or after the month's end is sent (it is now: the future is refused).
    within_month: bool = False
    #: A live entry also sends a view with the stay, so live rooms count viewers.
    live_views: bool = False
    platform_missing_rate: float = 0.15
    view_through_rate: float = 0.006  # of sessions that viewed without clicking
    full_refund_rate: float = 0.0  # of orders
    #: Seconds from checkout (a `created` order) to payment; None: only paid orders.
    checkout_s: tuple[int, int] | None = None
    retry_rate: float = 0.002  # share of events a client sends twice
    live_pull: float = 1.0  # a live room's popularity against a video of the same rank
    #: How ads reach and convert viewers.
    ad_traffic: AdTraffic = PLAIN_ADS
    #: Ad spend scaled to the month's traffic so each format earns its target ROAS.
    scaled_spend: bool = False


LOAD = Scenario(synthetic.build, viewer_key="bench:{seed}:user:{index}")
DEMO = Scenario(
    narrative.build,
    viewer_key="clipfunnel-demo/{seed}/viewer/{index}",
    dated_ids=True,
    viewing_days=DAYS,
    local_times=True,
    within_month=True,
    live_views=True,
    platform_missing_rate=0.0,
    view_through_rate=0.003,
    full_refund_rate=0.02,
    checkout_s=(30, 600),
    retry_rate=0.0,
    live_pull=3.0,
    ad_traffic=AdTraffic(
        paid_share=0.45,
        click_rate={"native": 0.09, "pre_roll": 0.05, "overlay": 0.06, "banner": 0.045},
        click_gmv={"native": 5.5, "pre_roll": 6.5, "overlay": 4.8, "banner": 5.5},
        view_through=0.1,
    ),
    scaled_spend=True,
)


@dataclass(frozen=True)
class Month:
    seed: int
    start_us: int
    end_us: int
    world: World
    events: list[Event]  # as sent: in time order, retried copies included
    unique_events: int
    orders: list[Order]  # by paid time
    users: int

    @property
    def start(self) -> dt.datetime:
        return from_us(self.start_us)

    @property
    def end(self) -> dt.datetime:
        return from_us(self.end_us)

    def summary(self) -> dict[str, Any]:
        types: dict[str, int] = {}
        for event in self.events:
            types[event.type] = types.get(event.type, 0) + 1
        return {
            "seed": self.seed,
            "events_sent": len(self.events),
            "unique_events": self.unique_events,
            "users": self.users,
            "contents": len(self.world.contents),
            "products": len(self.world.products),
            "ads": len(self.world.ads),
            "orders": len(self.orders),
            "cancelled": sum(o.cancelled_us is not None for o in self.orders),
            "refunds": sum(o.refund is not None for o in self.orders),
            "by_type": dict(sorted(types.items())),
            "range": [iso(self.start_us), iso(self.end_us)],
        }


def generate(seed: int, events: int, end: dt.datetime, scenario: Scenario = DEMO) -> Month:
    """The month ending at ``end``: its world, exactly ``events`` distinct viewer events (plus
    retried copies), and the orders they led to."""
    if events < 0:
        raise ValueError("events must not be negative")
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    r = random.Random(seed)
    end_us = to_us(end)
    start_us = end_us - DAYS * DAY
    span = scenario.viewing_days * DAY
    world = scenario.world(r, events, start_us, span)
    ids: Ids = (
        DatedIds(f"d{seed}.{end.astimezone(TZ):%Y%m%d}") if scenario.dated_ids else RandomIds(r)
    )
    horizon = end_us if scenario.within_month else None
    times: Times = (LocalTimes if scenario.local_times else FreeTimes)(start_us, span)
    orders: list[Order] = []
    stream: list[Event] = []
    desk = Desk(r, ids, world, scenario.full_refund_rate, scenario.checkout_s, horizon, orders)
    audience = Audience(
        r,
        world,
        ids,
        times,
        desk,
        stream,
        scenario.platform_missing_rate,
        scenario.view_through_rate,
        scenario.live_views,
        horizon,
        scenario.ad_traffic,
    )
    contents = world.contents
    weights = list(
        itertools.accumulate(
            (scenario.live_pull if c.kind == "live" else 1) / (rank + 1) ** ZIPF_S
            for rank, c in enumerate(contents)
        )
    )
    paid_share = scenario.ad_traffic.paid_share
    by_format: dict[str, list[Ad]] = {}
    for ad in world.ads:
        by_format.setdefault(ad.format, []).append(ad)
    paid_ads = [by_format[key] for key in sorted(by_format)]
    content_of = {c.id: c for c in contents}
    users = 0
    while len(stream) < events:
        key = scenario.viewer_key.format(seed=seed, index=users)
        user = hashlib.sha256(key.encode()).hexdigest()
        users += 1
        mark_orders = len(orders)
        sessions = 1 + int(r.expovariate(1 / 5))
        first = r.randrange(span)
        for _ in range(sessions):
            # A viewer's sessions cluster around their first visit (a few days either way).
            offset = first + int(r.gauss(0, 4 * 86_400) * SECOND)
            if paid_share and paid_ads and r.random() < paid_share:
                # A session an ad bought: its video, the ad served; formats share them evenly.
                ad = r.choice(r.choice(paid_ads))
                audience.session(user, content_of[ad.content_id], offset, ad)
                continue
            index = bisect.bisect_left(weights, r.random() * weights[-1])
            audience.session(user, contents[min(index, len(contents) - 1)], offset)
        if len(stream) > events:
            # The last viewer is cut short; drop their orders, whose touches may be gone.
            del stream[events:]
            del orders[mark_orders:]
    stream.sort(key=itemgetter(2))
    orders.sort(key=attrgetter("paid_us"))
    if scenario.scaled_spend:
        world.spend = spend.scaled(world, stream, orders)
    sent = with_retries(r, stream, scenario.retry_rate)
    return Month(seed, start_us, end_us, world, sent, len(stream), orders, users)


def with_retries(r: random.Random, stream: list[Event], rate: float) -> list[Event]:
    """Client retries: a few events sent again, a little later in the stream."""
    n_retried = int(len(stream) * rate)
    if not n_retried:
        return stream
    retried: dict[int, list[Event]] = {}
    for pos in sorted(r.sample(range(len(stream) - 1), n_retried)):
        later = min(len(stream) - 1, pos + r.randrange(1, RETRY_WINDOW))
        retried.setdefault(later, []).append(stream[pos])
    merged: list[Event] = []
    for pos, event in enumerate(stream):
        merged.append(event)
        merged.extend(retried.get(pos, ()))
    return merged
