"""The 4C scorecard as pure functions over plain sums (no database, no clock).

Each item (an account, a content or a campaign) gets seventeen metrics in four groups:
consumer, cost, convenience and communication. A metric whose denominator is zero is
``None`` (JSON ``null``), never 0. Money metrics are ``Decimal`` rounded half-even to the
currency's minor unit; every other metric is a float.

- ``percentile``: the item's percentile rank among the items of the range with a value for
  that metric, 100 × (items below + ½ × items equal) / items (scipy's ``kind="mean"``).
- ``change``: (value − previous) / |previous| against the previous period of equal length;
  ``None`` when either is ``None`` or the previous value is 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from services.attribution.reports.metrics import ZERO, money_ratio, rate, rounded_orders
from services.attribution.reports.operations.interactions import quantile

Group = Literal["consumer", "cost", "convenience", "communication"]
GROUPS: tuple[Group, ...] = ("consumer", "cost", "convenience", "communication")
Value = float | Decimal | None


@dataclass(slots=True)
class ItemSums:
    """What one item adds up to over one period."""

    counts: dict[str, int] = field(default_factory=dict)  # events by type
    spend: Decimal = ZERO
    gmv: Decimal = ZERO  # credited revenue under the tenant's model
    direct_gmv: Decimal = ZERO  # … of orders paid while a credited live room was live
    orders: float = 0.0  # Σ order_share
    card_orders: float = 0.0  # Σ order_share of credited clicks on a product card
    seconds_to_order: list[float] = field(default_factory=list)  # one per credited order
    carting_viewers: int = 0  # distinct viewers with an add_to_cart
    carting_buyers: int = 0  # … of whom bought an order credited to the item
    replied_comments: int = 0  # comments with a reply (at any time)
    reply_seconds: list[float] = field(default_factory=list)  # comment → its first reply

    def count(self, event_type: str) -> int:
        return self.counts.get(event_type, 0)

    @property
    def engagements(self) -> int:
        return self.count("like") + self.count("comment") + self.count("share")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    group: Group
    name: str
    money: bool
    formula: str
    compute: Callable[[ItemSums, int], Value]


def _money(amount: Decimal, denominator: float, places: int, per: int = 1) -> Decimal | None:
    return money_ratio(amount, denominator, places, per=per)


def _roas(s: ItemSums, _: int) -> float | None:
    return None if s.spend == 0 else float(s.gmv / s.spend)


def _share(part: Decimal, whole: Decimal) -> float | None:
    return None if whole == 0 else float(part / whole)


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "consumer",
        "completion_rate",
        False,
        "view_complete events / view events",
        lambda s, _: rate(s.count("view_complete"), s.count("view")),
    ),
    MetricSpec(
        "consumer",
        "engagement_rate",
        False,
        "(likes + comments + shares) / views",
        lambda s, _: rate(s.engagements, s.count("view")),
    ),
    MetricSpec(
        "consumer",
        "follow_rate",
        False,
        "follow events / views",
        lambda s, _: rate(s.count("follow"), s.count("view")),
    ),
    MetricSpec(
        "consumer",
        "click_rate",
        False,
        "clicks / impressions",
        lambda s, _: rate(s.count("click"), s.count("impression")),
    ),
    MetricSpec(
        "cost",
        "cpm",
        True,
        "spend / impressions × 1000",
        lambda s, p: _money(s.spend, s.count("impression"), p, 1000),
    ),
    MetricSpec(
        "cost", "cpc", True, "spend / clicks", lambda s, p: _money(s.spend, s.count("click"), p)
    ),
    MetricSpec(
        "cost",
        "cpa",
        True,
        "spend / orders (Σ credited order shares)",
        lambda s, p: _money(s.spend, rounded_orders(s.orders), p),
    ),
    MetricSpec(
        "cost",
        "cost_per_engaged_view",
        True,
        "spend / (likes + comments + shares)",
        lambda s, p: _money(s.spend, s.engagements, p),
    ),
    MetricSpec("cost", "roas", False, "GMV / spend", _roas),
    MetricSpec(
        "convenience",
        "cart_to_order_rate",
        False,
        "viewers with an add_to_cart who bought an order credited to the item / viewers "
        "with an add_to_cart",
        lambda s, _: rate(s.carting_buyers, s.carting_viewers),
    ),
    MetricSpec(
        "convenience",
        "median_seconds_to_order",
        False,
        "median over the orders credited to the item of (paid time − the order's first "
        "touch, its first_touch credit)",
        lambda s, _: quantile(s.seconds_to_order, 0.5),
    ),
    MetricSpec(
        "convenience",
        "direct_gmv_share",
        False,
        "GMV of orders paid while the credited live room was live / GMV",
        lambda s, _: _share(s.direct_gmv, s.gmv),
    ),
    MetricSpec(
        "convenience",
        "product_card_order_share",
        False,
        "orders credited to a click on a content showing the bought product on a "
        "product card / orders",
        lambda s, _: rate(rounded_orders(s.card_orders), rounded_orders(s.orders)),
    ),
    MetricSpec(
        "communication",
        "comment_reply_rate",
        False,
        "comments with a reply (at any time) / comments",
        lambda s, _: rate(s.replied_comments, s.count("comment")),
    ),
    MetricSpec(
        "communication",
        "median_reply_seconds",
        False,
        "median over replied comments of (first reply − comment)",
        lambda s, _: quantile(s.reply_seconds, 0.5),
    ),
    MetricSpec(
        "communication",
        "comments_per_1000_views",
        False,
        "comments / views × 1000",
        lambda s, _: rate(s.count("comment") * 1000, s.count("view")),
    ),
    MetricSpec(
        "communication",
        "share_rate",
        False,
        "shares / views",
        lambda s, _: rate(s.count("share"), s.count("view")),
    ),
)


@dataclass(frozen=True, slots=True)
class Score:
    value: Value
    percentile: float | None
    previous: Value
    change: float | None


def values_of(sums: ItemSums, places: int) -> dict[str, Value]:
    return {spec.name: spec.compute(sums, places) for spec in METRICS}


def percentile_rank(value: Value, population: Sequence[float | Decimal]) -> float | None:
    """100 × (values below + ½ × values equal) / values; None for a missing value."""
    if value is None or not population:
        return None
    below = sum(1 for other in population if other < value)
    equal = sum(1 for other in population if other == value)
    return 100.0 * (below + 0.5 * equal) / len(population)


def change(value: Value, previous: Value) -> float | None:
    if value is None or previous is None or previous == 0:
        return None
    return float((value - previous) / abs(previous))  # type: ignore[operator]  # same kind


def scores(
    current: Mapping[str, ItemSums],
    previous: Mapping[str, ItemSums],
    places: int,
) -> dict[str, dict[str, Score]]:
    """Every item of ``current``: each metric's value, percentile, previous value, change."""
    now = {key: values_of(sums, places) for key, sums in current.items()}
    before = {key: values_of(sums, places) for key, sums in previous.items()}
    populations: dict[str, list[float | Decimal]] = {
        spec.name: [v for values in now.values() if (v := values[spec.name]) is not None]
        for spec in METRICS
    }
    result: dict[str, dict[str, Score]] = {}
    for key, values in now.items():
        earlier = before.get(key, {})
        result[key] = {
            name: Score(
                value,
                percentile_rank(value, populations[name]),
                earlier.get(name),
                change(value, earlier.get(name)),
            )
            for name, value in values.items()
        }
    return result


def seconds_between(later: dt.datetime, earlier: dt.datetime) -> float:
    return max(0.0, (later - earlier).total_seconds())


def distinct_pairs(rows: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {}
    for key, user in rows:
        grouped.setdefault(key, set()).add(user)
    return grouped
