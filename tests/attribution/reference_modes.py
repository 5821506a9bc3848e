"""Brute-force reference for the funnel modes (strict, unordered, exclusions, time to
convert, the users behind a step), for the small worlds of ``funnel_data``.

Written from the definitions, independently of ``services.attribution.funnels.modes``: for
every user it enumerates *every* chain literally (ordered: every sequence of distinct items
with non-decreasing times; strict: every run of consecutive items of the stream;
unordered: every set of items assigned to distinct steps), checks each against the range,
the window and the exclusions, and takes the deepest non-void one. Optional steps may be
skipped (a chain then has None there); held dimensions keep only the chains whose items share
a value of each; a breakdown value's funnel keeps the chains its attribution names (first
item, every item, the item of a step, or the last item of a chain of the deepest level).

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
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

from tests.attribution.funnel_data import Item, S, step_masks, to_us

DEFAULT_STEP_TYPES = ("impression", "view", "click", "order")


Chain = tuple[int | None, ...]  # item indices; None at a skipped optional step


def _void(
    chain: tuple[int, ...],
    exclusion_times: list[list[int]],
    exclusions: list[dict[str, Any]],
    window: int,
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


def _next_steps(level: int, n: int, optional: list[bool]) -> list[tuple[int, int]]:
    """(step, skipped) for the next item of a chain of ``level`` items: the next step, or a
    later one when every step in between is optional."""
    out = []
    for skip in range(n - level):
        if any(not optional[level + s] for s in range(skip)):
            break
        out.append((level + skip, skip))
    return out


@dataclass(frozen=True)
class _Search:
    """One user's stream as a chain search sees it: its items, their step masks, the number
    of steps, the window, which items may start a chain and which steps are optional."""

    items: list[Item]
    masks: list[int]
    n: int
    window: int
    can_start: Callable[[int], bool]
    optional: list[bool]


def _ordered_chains(s: _Search) -> list[Chain]:
    found: list[Chain] = []

    def extend(chain: Chain) -> None:
        found.append(chain)
        if len(chain) == s.n:
            return
        used = [i for i in chain if i is not None]
        last, t1 = s.items[used[-1]].t, s.items[used[0]].t
        for step, skip in _next_steps(len(chain), s.n, s.optional):
            for j, item in enumerate(s.items):
                if (
                    s.masks[j] >> step & 1
                    and j not in used
                    and item.t >= last
                    and item.t - t1 <= s.window
                ):
                    extend((*chain, *(None,) * skip, j))

    for i in range(len(s.items)):
        if s.masks[i] & 1 and s.can_start(i):
            extend((i,))
    return found


def _strict_chains(s: _Search) -> list[Chain]:
    """Runs of consecutive items of the stream matching steps in order (skipping optional
    steps only)."""
    found: list[Chain] = []

    def extend(chain: Chain, last: int) -> None:
        found.append(chain)
        j = last + 1
        if len(chain) == s.n or j == len(s.items):
            return
        if s.items[j].t - s.items[cast(int, chain[0])].t > s.window:
            return
        for step, skip in _next_steps(len(chain), s.n, s.optional):
            if s.masks[j] >> step & 1:
                extend((*chain, *(None,) * skip, j), j)

    for i in range(len(s.items)):
        if s.masks[i] & 1 and s.can_start(i):
            extend((i,), i)
    return found


def _held(items: list[Item], indices: list[int], hold: list[str]) -> bool:
    """Every item has one same value of each held dimension."""
    return all(bool(frozenset.intersection(*(items[i].dims[key] for i in indices))) for key in hold)


def _unordered_level(
    items: list[Item],
    masks: list[int],
    n: int,
    window: int,
    can_start: Callable[[int], bool],
    fits: Callable[[list[int]], bool],
) -> int:
    """The largest set of items on distinct steps, whose earliest may start, in the window
    (and ``fits``: held dimensions, a value of every item)."""
    best = 0

    def grow(chosen: list[int], used_steps: int, next_index: int) -> None:
        nonlocal best
        if chosen:
            times = [items[i].t for i in chosen]
            earliest = min(times)
            if (
                max(times) - earliest <= window
                and any(items[i].t == earliest and can_start(i) for i in chosen)
                and fits(chosen)
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


def _chain_key(items: list[Item], chain: Chain) -> tuple[Any, ...]:
    """Deepest first; then the earliest optional steps; then the latest start; then the
    earliest later steps."""
    times = [items[i].t for i in chain if i is not None]
    return (-len(chain), tuple(i is None for i in chain), -times[0], *times[1:])


def _times(items: list[Item], chain: Chain) -> tuple[int | None, ...]:
    return tuple(None if i is None else items[i].t for i in chain)


def _user_outcome(
    items: list[Item],
    masks: list[int],
    exclusion_masks: list[int],
    query: dict[str, Any],
    can_start: Callable[[int], bool],
    convert: tuple[int, int] | None,
    value: str | None = None,
) -> tuple[int, tuple[int | None, ...] | None, int | None]:
    """(level, chosen chain's times, first-conversion time) of one user, in ``value``'s
    funnel by the query's breakdown attribution when given."""
    steps = query.get("steps") or [{"type": t} for t in DEFAULT_STEP_TYPES]
    n = len(steps)
    optional = [bool(step.get("optional")) for step in steps]
    window = query.get("window_seconds", 7 * 86400) * S
    order = query.get("order", "ordered")
    exclusions = query.get("exclusions") or []
    hold = query.get("hold_constant") or []
    breakdown = query.get("breakdown") or ""
    attribution = query.get("breakdown_attribution", "first_step")

    def has(i: int | None) -> bool:
        return i is not None and value in items[i].dims[breakdown]

    if order == "unordered":

        def fits(chosen: list[int]) -> bool:
            every = value is None or attribution != "all_steps" or all(map(has, chosen))
            return every and _held(items, chosen, hold)

        def starts(i: int) -> bool:
            first = value is None or attribution != "first_step" or has(i)
            return first and can_start(i)

        return _unordered_level(items, masks, n, window, starts, fits), None, None
    enumerate_chains = _ordered_chains if order == "ordered" else _strict_chains
    exclusion_times = [
        [item.t for item, m in zip(items, exclusion_masks, strict=True) if m >> i & 1]
        for i in range(len(exclusions))
    ]
    chains = []
    for chain in enumerate_chains(_Search(items, masks, n, window, can_start, optional)):
        used = [i for i in chain if i is not None]
        times = cast(tuple[int, ...], _times(items, chain))  # exclusions are on required steps
        if _held(items, used, hold) and not _void(times, exclusion_times, exclusions, window):
            chains.append(chain)
    if not chains:
        return 0, None, None
    if value is not None:
        deepest = max(len(c) for c in chains)
        if attribution == "first_step":
            chains = [c for c in chains if has(c[0])]
        elif attribution == "all_steps":
            chains = [c for c in chains if all(has(i) for i in c if i is not None)]
        elif attribution == "step":
            i = query["breakdown_step"]
            chains = [c for c in chains if len(c) > i and has(c[i])]
        else:  # last_step
            chains = [c for c in chains if len(c) == deepest and has(c[-1])]
        if not chains:
            return 0, None, None
    chosen = min(chains, key=lambda c: _chain_key(items, c))
    conversion = None
    if convert is not None:
        a, b = convert
        ends = [cast(tuple[int, ...], _times(items, c)) for c in chains if len(c) == b + 1]
        if ends:
            first = min(ends, key=lambda c: (c[0], c[b], -c[a]))
            conversion = first[b] - first[a]
    return len(chosen), _times(items, chosen), conversion


def _per_user(items: list[Item]) -> dict[str, list[Item]]:
    users: dict[str, list[Item]] = {}
    for item in sorted(items, key=lambda i: (i.t, i.id, i.type == "order")):
        users.setdefault(item.user, []).append(item)
    return users


Outcome = tuple[int, tuple[int | None, ...] | None, int | None]


def _outcomes(
    items: list[Item], query: dict[str, Any], value: str | None, convert: tuple[int, int] | None
) -> dict[str, Outcome]:
    steps = query.get("steps") or [{"type": t} for t in DEFAULT_STEP_TYPES]
    lo = to_us(dt.datetime.fromisoformat(query["from"]))
    hi = to_us(dt.datetime.fromisoformat(query["to"]))
    global_filters = query.get("filters") or {}
    out = {}
    for user, user_items in _per_user(items).items():
        masks = step_masks(user_items, steps, global_filters)
        exclusion_masks = step_masks(user_items, query.get("exclusions") or [], global_filters)

        def can_start(i: int, user_items: list[Item] = user_items) -> bool:
            return lo <= user_items[i].t < hi

        outcome = _user_outcome(
            user_items, masks, exclusion_masks, query, can_start, convert, value
        )
        if outcome[0]:
            out[user] = outcome
    return out


def _optional(query: dict[str, Any]) -> list[bool]:
    steps = query.get("steps") or [{"type": t} for t in DEFAULT_STEP_TYPES]
    return [bool(step.get("optional")) for step in steps]


def _reached(outcome: Outcome, step: int) -> bool:
    level, chain, _ = outcome
    return level > step and (chain is None or chain[step] is not None)


def _funnel_stats(
    types: list[str], optional: list[bool], outcomes: list[Outcome]
) -> list[dict[str, Any]]:
    """Users per step (an optional one: whose chain has it), conversions, drop-offs and the
    gaps of the chosen chains, each measured from the nearest required step before."""
    users = [sum(_reached(o, k) for o in outcomes) for k in range(len(types))]
    rows = []
    for k, step_type in enumerate(types):
        p = k - 1
        while k and optional[p]:
            p -= 1
        gaps = [
            cast(int, chain[k]) - cast(int, chain[p])
            for _, chain, _ in outcomes
            if k and chain is not None and len(chain) > k and chain[k] is not None
        ]
        rows.append(
            {
                "type": step_type,
                "users": users[k],
                "conversion_from_start": users[k] / users[0] if users[0] else None,
                "conversion_from_previous": (
                    None if k == 0 else users[k] / users[p] if users[p] else None
                ),
                "median_seconds_from_previous": statistics.median(gaps) / S if gaps else None,
                "average_seconds_from_previous": statistics.fmean(gaps) / S if gaps else None,
                "dropped_off": users[p] - users[k] if k else None,
            }
        )
    return rows


def reference_modes(items: list[Item], query: dict[str, Any]) -> dict[str, Any]:
    """The answer of ``POST /v1/funnels`` for a query with any mode."""
    types = [s["type"] for s in query.get("steps") or [{"type": t} for t in DEFAULT_STEP_TYPES]]
    optional = _optional(query)
    overall = _outcomes(items, query, None, None)
    rows: list[dict[str, Any]] = []
    breakdown = query.get("breakdown")
    if breakdown:
        values = sorted({v for item in items for v in item.dims[breakdown]})
        for value in values:
            found = _outcomes(items, query, value, None)
            if found:
                steps = _funnel_stats(types, optional, list(found.values()))
                rows.append({"value": value, "steps": steps})
        rows.sort(key=lambda row: (-row["steps"][0]["users"], row["value"]))
    return {"steps": _funnel_stats(types, optional, list(overall.values())), "breakdown": rows}


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
    """Every user id (ascending) who reached ``step``, or who reached the required step
    before it but not ``step``."""
    outcomes = _outcomes(items, query, None, None)
    if status == "reached":
        return sorted(u for u, o in outcomes.items() if _reached(o, step))
    previous = step - 1
    while _optional(query)[previous]:
        previous -= 1
    return sorted(u for u, o in outcomes.items() if _reached(o, previous) and not _reached(o, step))


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
            masks = step_masks(user_items, steps, global_filters)
            exclusion_masks = step_masks(user_items, query.get("exclusions") or [], global_filters)

            def can_start(
                i: int, user_items: list[Item] = user_items, key: tuple[int, ...] = key
            ) -> bool:
                t = user_items[i].t
                when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=t)
                return lo_us <= t < hi_us and _period_key(when, zone, interval) == key

            hold = query.get("hold_constant") or []
            if not any(
                m & first and can_start(i) and all(user_items[i].dims[key] for key in hold)
                for i, m in enumerate(masks)
            ):
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
