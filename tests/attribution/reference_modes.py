"""Brute-force reference for the funnel modes (strict, unordered, exclusions, time to
convert, the users behind a step), for the small worlds of ``funnel_data``.

Written from the definitions, independently of ``services.attribution.funnels.modes``: for
every user it enumerates *every* chain literally (ordered: every sequence of distinct items
with non-decreasing times; strict: every run of consecutive items of the stream;
unordered: every set of items assigned to distinct steps), checks each against the range,
the window and the exclusions, and takes the deepest non-void one.

A user's stream is their items ordered by time, then id, then events before orders.
Exclusions match on their type, their filters and the global filters; a chain is void when
an excluded item's time lies strictly between its ``from_step`` and ``to_step`` items', or,
for a chain having ``from_step`` but stopping before ``to_step``, after the ``from_step``
item and no later than ``t1 + window``.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from tests.attribution.funnel_data import Item, S, _matches, _stats, to_us

Chain = tuple[int, ...]
DEFAULT_STEP_TYPES = ("impression", "view", "click", "order")


def _masks(
    items: list[Item], specs: list[dict[str, Any]], global_filters: dict[str, str]
) -> list[int]:
    return [
        sum(
            1 << k
            for k, spec in enumerate(specs)
            if _matches(item, spec["type"], global_filters)
            and _matches(item, spec["type"], spec.get("filters") or {})
        )
        for item in items
    ]


def _void(
    chain: Chain, exclusion_times: list[list[int]], exclusions: list[dict[str, Any]], window: int
) -> bool:
    for times, x in zip(exclusion_times, exclusions, strict=True):
        f, g = x["from_step"], x["to_step"]
        if len(chain) <= f:
            continue
        if len(chain) > g:
            if any(chain[f] < t < chain[g] for t in times):
                return True
        elif any(chain[f] < t <= chain[0] + window for t in times):
            return True
    return False


def _ordered_chains(
    items: list[Item], masks: list[int], n: int, window: int, can_start: Callable[[int], bool]
) -> list[Chain]:
    found: list[Chain] = []

    def extend(used: list[int], times: Chain) -> None:
        found.append(times)
        level = len(times)
        if level == n:
            return
        for j, item in enumerate(items):
            if (
                masks[j] >> level & 1
                and j not in used
                and item.t >= times[-1]
                and item.t - times[0] <= window
            ):
                extend([*used, j], (*times, item.t))

    for i, item in enumerate(items):
        if masks[i] & 1 and can_start(i):
            extend([i], (item.t,))
    return found


def _strict_chains(
    items: list[Item], masks: list[int], n: int, window: int, can_start: Callable[[int], bool]
) -> list[Chain]:
    found: list[Chain] = []
    for i in range(len(items)):
        if not (masks[i] & 1 and can_start(i)):
            continue
        for k in range(1, n + 1):
            run = items[i : i + k]
            if len(run) < k:
                break
            if all(masks[i + j] >> j & 1 for j in range(k)) and run[-1].t - run[0].t <= window:
                found.append(tuple(item.t for item in run))
    return found


def _unordered_level(
    items: list[Item], masks: list[int], n: int, window: int, can_start: Callable[[int], bool]
) -> int:
    """The largest set of items on distinct steps, whose earliest may start, in the window."""
    best = 0

    def grow(chosen: list[int], used_steps: int, next_index: int) -> None:
        nonlocal best
        if chosen:
            times = [items[i].t for i in chosen]
            earliest = min(times)
            if max(times) - earliest <= window and any(
                items[i].t == earliest and can_start(i) for i in chosen
            ):
                best = max(best, len(chosen))
        if len(chosen) == n:
            return
        for j in range(next_index, len(items)):
            if chosen and items[j].t - items[chosen[0]].t > window:
                break  # items come in time order: the rest lie further still
            for step in range(n):
                if masks[j] >> step & 1 and not used_steps >> step & 1:
                    grow([*chosen, j], used_steps | 1 << step, j + 1)

    grow([], 0, 0)
    return best


def _user_outcome(
    items: list[Item],
    masks: list[int],
    exclusion_masks: list[int],
    query: dict[str, Any],
    can_start: Callable[[int], bool],
    convert: tuple[int, int] | None,
) -> tuple[int, Chain | None, int | None]:
    """(level, chosen chain, first-conversion time) of one user."""
    n = len(query.get("steps") or DEFAULT_STEP_TYPES)
    window = query.get("window_seconds", 7 * 86400) * S
    order = query.get("order", "ordered")
    exclusions = query.get("exclusions") or []
    if order == "unordered":
        return _unordered_level(items, masks, n, window, can_start), None, None
    enumerate_chains = _ordered_chains if order == "ordered" else _strict_chains
    exclusion_times = [
        [item.t for item, m in zip(items, exclusion_masks, strict=True) if m >> i & 1]
        for i in range(len(exclusions))
    ]
    chains = [
        c
        for c in enumerate_chains(items, masks, n, window, can_start)
        if not _void(c, exclusion_times, exclusions, window)
    ]
    if not chains:
        return 0, None, None
    chosen = min(chains, key=lambda c: (-len(c), -c[0], *c[1:]))
    conversion = None
    if convert is not None:
        a, b = convert
        ends = [c for c in chains if len(c) == b + 1]
        if ends:
            first = min(ends, key=lambda c: (c[0], c[b], -c[a]))
            conversion = first[b] - first[a]
    return len(chosen), chosen, conversion


def _per_user(items: list[Item]) -> dict[str, list[Item]]:
    users: dict[str, list[Item]] = {}
    for item in sorted(items, key=lambda i: (i.t, i.id, i.type == "order")):
        users.setdefault(item.user, []).append(item)
    return users


def _outcomes(
    items: list[Item], query: dict[str, Any], value: str | None, convert: tuple[int, int] | None
) -> dict[str, tuple[int, Chain | None, int | None]]:
    steps = query.get("steps") or [{"type": t} for t in DEFAULT_STEP_TYPES]
    lo = to_us(dt.datetime.fromisoformat(query["from"]))
    hi = to_us(dt.datetime.fromisoformat(query["to"]))
    global_filters = query.get("filters") or {}
    breakdown = query.get("breakdown")
    out = {}
    for user, user_items in _per_user(items).items():
        masks = _masks(user_items, steps, global_filters)
        exclusion_masks = _masks(user_items, query.get("exclusions") or [], global_filters)

        def can_start(i: int, user_items: list[Item] = user_items) -> bool:
            item = user_items[i]
            return lo <= item.t < hi and (value is None or value in item.dims[breakdown or ""])

        outcome = _user_outcome(user_items, masks, exclusion_masks, query, can_start, convert)
        if outcome[0]:
            out[user] = outcome
    return out


def _level_stats(types: list[str], levels: list[int]) -> list[dict[str, Any]]:
    rows = _stats(types, [(0,) * level for level in levels])
    for row in rows:
        row["median_seconds_from_previous"] = None
        row["average_seconds_from_previous"] = None
    return rows


def _funnel_stats(
    types: list[str], outcomes: list[tuple[int, Chain | None, int | None]]
) -> list[dict[str, Any]]:
    chains = [chain for _, chain, _ in outcomes]
    if any(chain is None for chain in chains):
        return _level_stats(types, [level for level, _, _ in outcomes])
    return _stats(types, [c for c in chains if c is not None])


def reference_modes(items: list[Item], query: dict[str, Any]) -> dict[str, Any]:
    """The answer of ``POST /v1/funnels`` for a query with any mode."""
    types = [s["type"] for s in query.get("steps") or [{"type": t} for t in DEFAULT_STEP_TYPES]]
    overall = _outcomes(items, query, None, None)
    rows = []
    breakdown = query.get("breakdown")
    if breakdown:
        values = sorted({v for item in items for v in item.dims[breakdown]})
        for value in values:
            found = _outcomes(items, query, value, None)
            if found:
                rows.append({"value": value, "steps": _funnel_stats(types, list(found.values()))})
        rows.sort(key=lambda row: (-row["steps"][0]["users"], row["value"]))
    steps = _funnel_stats(types, list(overall.values())) if overall else _stats(types, [])
    return {"steps": steps, "breakdown": rows}


def reference_conversion_times(items: list[Item], query: dict[str, Any]) -> list[int]:
    n = len(query.get("steps") or DEFAULT_STEP_TYPES)
    to_step = query.get("to_step", n - 1)
    convert = (query.get("from_step", 0), to_step)
    found = _outcomes(items, query, None, convert)
    return sorted(c for _, _, c in found.values() if c is not None)


def reference_time_to_convert(items: list[Item], query: dict[str, Any]) -> dict[str, Any]:
    """The answer of ``POST /v1/funnels/time-to-convert``, bins computed literally."""
    times = reference_conversion_times(items, query)
    if not times:
        return {"users": 0, "average_seconds": None, "median_seconds": None, "bins": []}
    bins = query.get("bins") or min(100, (len(times) - 1).bit_length() + 1)
    low, high = min(times), max(times)
    width = (high - low) // bins + 1
    return {
        "users": len(times),
        "average_seconds": sum(times) / len(times) / S,
        "median_seconds": statistics.median(times) / S,
        "bins": [
            {
                "from_seconds": (low + i * width) / S,
                "to_seconds": (low + (i + 1) * width) / S,
                "users": sum(1 for t in times if low + i * width <= t < low + (i + 1) * width),
            }
            for i in range(bins)
        ],
    }


def reference_users(items: list[Item], query: dict[str, Any], step: int, status: str) -> list[str]:
    """Every user id (ascending) who reached ``step``, or dropped off right before it."""
    levels = {user: level for user, (level, _, _) in _outcomes(items, query, None, None).items()}
    if status == "reached":
        return sorted(u for u, level in levels.items() if level >= step + 1)
    return sorted(u for u, level in levels.items() if level == step)


def _period_key(when: dt.datetime, zone: ZoneInfo, interval: str) -> tuple[int, ...]:
    day = when.astimezone(zone).date()
    if interval == "week":
        year, week, _ = day.isocalendar()
        return (year, week)
    if interval == "month":
        return (day.year, day.month)
    return (day.year, day.month, day.day)


def _key_start(key: tuple[int, ...], zone: ZoneInfo, interval: str) -> str:
    if interval == "week":
        day = dt.date.fromisocalendar(key[0], key[1], 1)
    elif interval == "month":
        day = dt.date(key[0], key[1], 1)
    else:
        day = dt.date(*key)
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    return midnight.astimezone(dt.UTC).astimezone(zone).isoformat()


def reference_trends(items: list[Item], query: dict[str, Any], timezone: str) -> dict[str, Any]:
    """The answer of ``POST /v1/funnels/trends``: every local period met by the range (found
    by walking the range a quarter-hour at a time), users entering (an item able to start a
    chain, in the range, in the period) and converting (a full non-void chain whose first
    item lies in the period), each chain enumerated as for the funnel."""
    zone = ZoneInfo(timezone)
    interval = query.get("interval", "day")
    lo = dt.datetime.fromisoformat(query["from"])
    hi = dt.datetime.fromisoformat(query["to"])
    keys: list[tuple[int, ...]] = []
    probe = lo
    while probe < hi:
        keys.append(_period_key(probe, zone, interval))
        probe += dt.timedelta(minutes=15)
    keys.append(_period_key(hi - dt.timedelta(microseconds=1), zone, interval))
    keys = sorted(set(keys))
    steps = query.get("steps") or [{"type": t} for t in DEFAULT_STEP_TYPES]
    n = len(steps)
    global_filters = query.get("filters") or {}
    lo_us, hi_us = to_us(lo), to_us(hi)
    first = (1 << n) - 1 if query.get("order") == "unordered" else 1
    points = []
    for key in keys:
        entered = converted = 0
        for user_items in _per_user(items).values():
            masks = _masks(user_items, steps, global_filters)
            exclusion_masks = _masks(user_items, query.get("exclusions") or [], global_filters)

            def can_start(
                i: int, user_items: list[Item] = user_items, key: tuple[int, ...] = key
            ) -> bool:
                t = user_items[i].t
                when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=t)
                return lo_us <= t < hi_us and _period_key(when, zone, interval) == key

            if not any(m & first and can_start(i) for i, m in enumerate(masks)):
                continue
            entered += 1
            level, _, _ = _user_outcome(user_items, masks, exclusion_masks, query, can_start, None)
            converted += level == n
        points.append(
            {
                "period_start": _key_start(key, zone, interval),
                "entered": entered,
                "converted": converted,
                "conversion_rate": converted / entered if entered else None,
            }
        )
    return {"timezone": timezone, "points": points}
