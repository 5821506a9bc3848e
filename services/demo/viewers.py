"""Viewers: one session walks the drop-off of a short video or a live room.

A video session is an impression, then perhaps a view (a completion, likes, comments, shares,
follows), a click on the product of the ad served or of one the video links, an add-to-cart
and, for some clicks, an order. A live-room session enters, engages, maybe clicks the pinned
product, and leaves. Sessions that viewed without clicking now and then buy later anyway (a
view-through). Senders on the Chinese platforms stamp China time, the others UTC; some leave
the platform out.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any, NamedTuple

from services.demo.ids import Ids
from services.demo.orders import Desk
from services.demo.timeline import DAY, SECOND, Times, from_us
from services.demo.wire import iso
from services.demo.world import Ad, Content, World
from shared.vocabulary import AdFormat, EventType

# Drop-off rates, per session.
VIEW_RATE = 0.45
COMPLETE_RATE = 0.35
Rates = tuple[tuple[EventType, float], ...]
ENGAGEMENT: Rates = (("like", 0.05), ("comment", 0.015), ("share", 0.01), ("follow", 0.006))
CLICK_RATE: dict[AdFormat | None, float] = {
    None: 0.045,  # organic
    "native": 0.08,
    "pre_roll": 0.035,
    "overlay": 0.045,
    "banner": 0.03,
}
CART_RATE = 0.35
CLICK_ORDER_RATE = 0.22
AD_SERVED_RATE = 0.5
LIVE_ENTER_RATE = 0.42
LIVE_ENGAGEMENT: Rates = (("like", 0.09), ("comment", 0.04), ("share", 0.01))
LIVE_CLICK_RATE = 0.06


@dataclass(frozen=True)
class AdTraffic:
    """How ads reach and convert viewers. The defaults: ads served only on their videos' own
    sessions, clicking and ordering as organic ones do.

    A month's ads reach many more viewers than they convert, so an ad impression and an ad
    click cost what they do on the short-video platforms (CPM of tens of CNY, CPC of a few).
    """

    #: Sessions the ads buy on their videos (the ad served), split evenly between formats.
    paid_share: float = 0.0
    #: The share of a served ad's views that click (None: CLICK_RATE).
    click_rate: dict[AdFormat, float] | None = None
    #: The GMV (CNY) an ad's click brings on average: it orders at that over the product's
    #: price, so dear products convert less (None: CLICK_ORDER_RATE whatever the price).
    click_gmv: dict[AdFormat, float] | None = None
    #: A served session that viewed without a click buys at this times the view-through rate.
    view_through: float = 1.0


PLAIN_ADS = AdTraffic()
#: Senders on these platforms stamp local time (+08:00), the others UTC.
LOCAL_TIME_PLATFORMS = frozenset({"douyin", "kuaishou", "xiaohongshu", "wechat_channels"})


class Event(NamedTuple):
    """One viewer event, as compact as a tuple (a million of them stay a few hundred MB)."""

    event_id: str
    type: EventType
    t_us: int
    user_id: str
    content_id: str | None
    product_id: str | None
    ad_id: str | None
    click_id: str | None
    session_id: str | None
    platform: str | None
    watch_seconds: float | None  # of a view or a completion
    offset_hours: int  # the sender's clock: 0 (UTC) or 8 (China time), for the text only

    @property
    def occurred_at(self) -> dt.datetime:
        return from_us(self.t_us)

    def body(self) -> dict[str, Any]:
        """The event as a sender posts it (absent fields left out)."""
        body: dict[str, Any] = {
            "event_id": self.event_id,
            "type": self.type,
            "occurred_at": iso(self.t_us, self.offset_hours),
            "user_id": self.user_id,
        }
        for index in _OPTIONAL:
            value = self[index]
            if value is not None:
                body[self._fields[index]] = value
        if self.watch_seconds is not None:
            body["properties"] = {"watch_seconds": self.watch_seconds}
        return body


# The fields a sender leaves out when it has no value: content_id … platform.
_OPTIONAL = range(Event._fields.index("content_id"), Event._fields.index("platform") + 1)


@dataclass
class Audience:
    """Walks sessions into ``events``, handing would-be orders to ``desk``.

    ``live_views``: a live entry also sends a view carrying the stay (as platform SDKs do, so
    live rooms count viewers); ``end_us``: events at or after it are not sent (None: all are).
    """

    rng: random.Random
    world: World
    ids: Ids
    times: Times
    desk: Desk
    events: list[Event]
    platform_missing_rate: float
    view_through_rate: float
    live_views: bool
    end_us: int | None
    ad_traffic: AdTraffic = PLAIN_ADS

    def session(self, user: str, content: Content, offset_us: int, paid: Ad | None = None) -> None:
        """One session of ``user`` on ``content``, ``offset_us`` into the month (see Times);
        ``paid``: the ad that bought the session (it is served)."""
        r = self.rng
        rnd = r.random
        ev = self.events
        new_event_id = self.ids.event
        session = self.ids.session()
        platform = None if rnd() < self.platform_missing_rate else content.platform
        tz = 8 if platform in LOCAL_TIME_PLATFORMS else 0
        if paid is not None:
            ad: Ad | None = paid
        else:
            ads = self.world.ads_of(content.id)
            ad = ads[0] if ads and rnd() < AD_SERVED_RATE else None
        ad_id = ad.id if ad else None
        cid = content.id
        t0 = self.times.start(content, offset_us)
        limit, end = self.times.limit(content), self.end_us

        def emit(
            kind: EventType,
            t: int,
            product: str | None = None,
            click: str | None = None,
            watch: float | None = None,
        ) -> str | None:
            if limit is not None and t > limit:
                t = limit
            if end is not None and t >= end:
                return None
            event_id = new_event_id()
            ev.append(
                Event(
                    event_id,
                    kind,
                    t,
                    user,
                    cid,
                    product,
                    ad_id,
                    click,
                    session,
                    platform,
                    watch,
                    tz,
                )
            )
            return event_id

        emit("impression", t0)
        if content.kind == "video":
            if rnd() >= VIEW_RATE:
                return
            t_view = t0 + int((0.5 + 2.5 * rnd()) * SECOND)
            touch = emit("view", t_view, watch=round(rnd() * content.duration_s, 1))
            if rnd() < COMPLETE_RATE:
                complete = t_view + content.duration_s * SECOND
                emit("view_complete", complete, watch=content.duration_s)
            for kind, rate in ENGAGEMENT:
                if rnd() < rate:
                    emit(kind, t_view + int((1 + 30 * rnd()) * SECOND))
            ad_rate = self.ad_traffic.click_rate
            click_rate = (
                ad_rate[ad.format] if ad and ad_rate else CLICK_RATE[ad.format if ad else None]
            )
        else:
            if rnd() >= LIVE_ENTER_RATE:
                return
            t_view = t0 + int((1 + 4 * rnd()) * SECOND)
            touch = emit("live_enter", t_view)
            stay = int(r.expovariate(1 / 300) * SECOND) + SECOND
            if limit is not None:
                stay = min(stay, limit - t_view)
            if self.live_views:
                emit("view", t_view + SECOND, watch=round(stay / SECOND, 1))
            for kind, rate in LIVE_ENGAGEMENT:
                if rnd() < rate:
                    emit(kind, t_view + int(rnd() * stay))
            emit("live_exit", t_view + stay)
            click_rate = LIVE_CLICK_RATE
        # The product clicked or bought: the ad's, the one pinned in the room, or a linked one.
        if rnd() < click_rate:
            product = ad.product_id if ad else self.product_seen(cid, t_view)
            click_id = self.ids.click()
            t_click = t_view + int((2 + 60 * rnd()) * SECOND)
            click = emit("click", t_click, product, click_id)
            if rnd() < CART_RATE:
                emit("add_to_cart", t_click + int((10 + 600 * rnd()) * SECOND), product)
            click_gmv = self.ad_traffic.click_gmv
            rate = (
                min(CLICK_ORDER_RATE, click_gmv[ad.format] / float(self.world.price[product]))
                if ad and click_gmv
                else CLICK_ORDER_RATE
            )
            if rnd() < rate:
                delay = min(int(r.expovariate(1 / 7200) * SECOND), 6 * DAY)
                self.desk.take(user, t_click + 30 * SECOND + delay, product, cid, click_id, click)
        elif rnd() < self.view_through_rate * (self.ad_traffic.view_through if ad else 1.0):
            product = self.product_seen(cid, t_view)
            bought = t_view + int((60 + 72_000 * rnd()) * SECOND)
            self.desk.take(user, bought, product, cid, None, touch)

    def product_seen(self, content_id: str, t_us: int) -> str:
        pinned = self.world.pinned_at(content_id, t_us)
        return pinned or self.rng.choice(self.world.products_of(content_id))
