"""Touches that fraud cannot buy: the rules that flag or reject a touch before it earns credit.

Pure. Each rule has a threshold and a mode: ``flag`` credits the touch but marks it,
``reject`` keeps it from earning credit (the order falls to the next eligible touch, or is
organic). The verdicts are per order: a click injected seconds before one order may be an
honest touch for another, later one.

- ``click_injection``: a click less than ``min_click_to_order_seconds`` before the order.
- ``click_flood``: a click by a user who clicked more than ``max_clicks_per_user_hour``
  times in the hour up to and including it; or a click on an ad whose clicks that UTC day
  exceed ``max_clicks_per_order`` times the orders credited to it that day (this one included).
- ``rate_cap``: a touch by a user with more than ``max_events_per_user_minute`` events (of
  any type) in the minute up to and including it.
- ``duplicate_click_id``: a click whose click id was also reported for another user.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.attribution.credit.engine import CLICK_TYPES, Touch
from services.attribution.settings.fraud import FraudRules, Mode, Reason

HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Verdict:
    event_id: str
    reason: Reason
    mode: Mode


@dataclass(frozen=True, slots=True)
class BuyerActivity:
    """What the rules look at beyond the touches themselves, read once per order."""

    # The buyer's event times (every type) and click times, from an hour before the lookback
    # to the order, sorted.
    event_times: Sequence[dt.datetime] = ()
    click_times: Sequence[dt.datetime] = ()
    # Click id -> the users it was reported for (only the touches' click ids).
    click_users: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # (ad id, UTC day) -> (clicks on the ad that day, other orders credited to it that day).
    ad_days: Mapping[tuple[str, dt.date], tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SeenTouch:
    """A touch with the fields the rules need that the engine's Touch does not carry."""

    touch: Touch
    user_id: str | None
    click_id: str | None


def judge(
    touches: Sequence[SeenTouch],
    *,
    order_time: dt.datetime,
    activity: BuyerActivity,
    rules: FraudRules,
) -> list[Verdict]:
    """Every rule a touch breaks for this order, in touch order then rule order."""
    clicks, times = activity.click_times, activity.event_times
    verdicts: list[Verdict] = []
    for seen in sorted(touches, key=lambda s: (s.touch.occurred_at, s.touch.event_id)):
        touch = seen.touch
        broken: list[Reason] = []
        is_click = touch.type in CLICK_TYPES
        if is_click:
            before = (order_time - touch.occurred_at).total_seconds()
            if 0 <= before < rules.min_click_to_order_seconds:
                broken.append("click_injection")
            in_hour = bisect.bisect_right(clicks, touch.occurred_at) - bisect.bisect_left(
                clicks, touch.occurred_at - HOUR
            )
            if in_hour > rules.max_clicks_per_user_hour or _ad_flooded(touch, activity, rules):
                broken.append("click_flood")
        in_minute = bisect.bisect_right(times, touch.occurred_at) - bisect.bisect_left(
            times, touch.occurred_at - MINUTE
        )
        if in_minute > rules.max_events_per_user_minute:
            broken.append("rate_cap")
        if is_click and seen.click_id is not None:
            others = activity.click_users.get(seen.click_id, frozenset()) - {seen.user_id}
            if others:
                broken.append("duplicate_click_id")
        verdicts.extend(Verdict(touch.event_id, reason, rules.mode(reason)) for reason in broken)
    return verdicts


def ad_day(touch: Touch) -> tuple[str, dt.date] | None:
    """The (ad, UTC day) a click's ad flood is counted in; None for a click without an ad."""
    if touch.ad_id is None:
        return None
    return touch.ad_id, touch.occurred_at.astimezone(dt.UTC).date()


def _ad_flooded(touch: Touch, activity: BuyerActivity, rules: FraudRules) -> bool:
    key = ad_day(touch)
    if key is None or key not in activity.ad_days:
        return False
    clicks, other_orders = activity.ad_days[key]
    return clicks > rules.max_clicks_per_order * (other_orders + 1)


def rejected_ids(verdicts: Sequence[Verdict]) -> set[str]:
    return {v.event_id for v in verdicts if v.mode == "reject"}


def flags_by_touch(verdicts: Sequence[Verdict]) -> dict[str, list[str]]:
    """Event id -> the reasons its credit is marked with (flag mode only), in rule order."""
    flags: dict[str, list[str]] = {}
    for verdict in verdicts:
        if verdict.mode == "flag":
            flags.setdefault(verdict.event_id, []).append(verdict.reason)
    return flags
