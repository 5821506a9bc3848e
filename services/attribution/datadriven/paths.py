"""Journeys as the data-driven models see them: ordered channel paths, counted.

Pure: the repository hands in touches and orders; this module builds the paths. A buyer's
paid order gives a converting path (its touches in the click window before the order, in
time order); a user's touches in the range that no order claims give one non-converting
path. Touches without the chosen channel dimension are left out; empty paths are dropped.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter

Channel = str


@dataclass(frozen=True, slots=True)
class PathTouch:
    user_id: str
    occurred_at: dt.datetime
    event_id: str  # ties in time are broken by event id, so paths are deterministic
    channel: Channel | None


@dataclass(frozen=True, slots=True)
class PaidOrder:
    order_id: str
    buyer_id: str
    paid_at: dt.datetime
    revenue: Decimal


_IN_TIME_ORDER = attrgetter("occurred_at", "event_id")
_OCCURRED_AT = attrgetter("occurred_at")


@dataclass(slots=True)
class PathCounts:
    """One distinct channel sequence with how often it converted, or did not, and the GMV."""

    conversions: int = 0
    non_conversions: int = 0
    revenue: Decimal = field(default_factory=Decimal)


@dataclass(frozen=True, slots=True)
class Journey:
    """One order's path, kept for splitting that order's revenue over its own channels."""

    order_id: str
    channels: tuple[Channel, ...]
    revenue: Decimal
    paid_at: dt.datetime


@dataclass(slots=True)
class Paths:
    counts: dict[tuple[Channel, ...], PathCounts] = field(default_factory=dict)
    journeys: list[Journey] = field(default_factory=list)

    @property
    def converting(self) -> int:
        return sum(c.conversions for c in self.counts.values())

    @property
    def non_converting(self) -> int:
        return sum(c.non_conversions for c in self.counts.values())

    def add(
        self, channels: tuple[Channel, ...], *, converted: bool, revenue: Decimal, times: int = 1
    ) -> None:
        """Count ``channels`` as a path taken ``times`` more times (with ``revenue`` in all)."""
        counts = self.counts.setdefault(channels, PathCounts())
        if converted:
            counts.conversions += times
            counts.revenue += revenue
        else:
            counts.non_conversions += times


def build_paths(
    touches: Iterable[PathTouch],
    orders: Iterable[PaidOrder],
    *,
    range_from: dt.datetime,
    range_to: dt.datetime,
    window: dt.timedelta,
) -> Paths:
    """Converting paths of the orders paid in ``[range_from, range_to)``, non-converting rest.

    ``touches`` must cover ``[range_from - window, range_to)`` so an order early in the range
    still sees its whole window; only touches inside the range make non-converting paths.
    """
    by_user: dict[str, list[PathTouch]] = defaultdict(list)
    for touch in touches:
        by_user[touch.user_id].append(touch)
    orders_by_buyer: dict[str, list[PaidOrder]] = defaultdict(list)
    for order in orders:
        if range_from <= order.paid_at < range_to:
            orders_by_buyer[order.buyer_id].append(order)

    paths = Paths()
    # Most users never buy: their one path is their touches in the range, in order. That
    # loop is the hot one, so it stays lean (counts are integers: the visiting order of
    # users cannot change any figure, only the journeys' order, which comes sorted below).
    for user, user_touches in by_user.items():
        if user in orders_by_buyer:
            continue
        if len(user_touches) > 1:
            # By time alone (no key tuples), then by event id only where two share an instant.
            user_touches.sort(key=_OCCURRED_AT)
            if len(set(map(_OCCURRED_AT, user_touches))) < len(user_touches):
                user_touches.sort(key=_IN_TIME_ORDER)
        if range_from <= user_touches[0].occurred_at and user_touches[-1].occurred_at < range_to:
            channels = tuple([t.channel for t in user_touches if t.channel is not None])
        else:
            channels = tuple(
                [
                    t.channel
                    for t in user_touches
                    if t.channel is not None and range_from <= t.occurred_at < range_to
                ]
            )
        if channels:
            paths.add(channels, converted=False, revenue=Decimal(0))

    for user in sorted(orders_by_buyer):
        user_touches = sorted(by_user.get(user, []), key=_IN_TIME_ORDER)
        times = [t.occurred_at for t in user_touches]
        claimed = [False] * len(user_touches)
        for order in sorted(orders_by_buyer[user], key=lambda o: (o.paid_at, o.order_id)):
            first = bisect.bisect_left(times, order.paid_at - window)
            last = bisect.bisect_right(times, order.paid_at)
            for index in range(first, last):
                claimed[index] = True
            channels = _channels(user_touches[first:last])
            if channels:
                paths.add(channels, converted=True, revenue=order.revenue)
                paths.journeys.append(
                    Journey(order.order_id, channels, order.revenue, order.paid_at)
                )
        unclaimed = [
            touch
            for touch, was_claimed in zip(user_touches, claimed, strict=True)
            if not was_claimed and range_from <= touch.occurred_at < range_to
        ]
        channels = _channels(unclaimed)
        if channels:
            paths.add(channels, converted=False, revenue=Decimal(0))
    return paths


def _channels(touches: Sequence[PathTouch]) -> tuple[Channel, ...]:
    return tuple(t.channel for t in touches if t.channel is not None)
