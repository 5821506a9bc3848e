"""Pure, streaming evaluation of ordered conversion funnels (no database, no HTTP).

Semantics (ClickHouse ``windowFunnel`` plus distinctness)
--------------------------------------------------------
A funnel has ``n`` steps (2..10). Every event carries a bitmask ``steps_mask`` (bit ``k``
set when the event matches step ``k + 1``; one event may match several steps). A user
*reaches level* ``k`` when there are **distinct** events ``e1..ek`` such that

* ``e_i`` matches step ``i``;
* ``from_us <= e1.t < to_us`` (only the first event is range-restricted; later events may
  lie after ``to_us``);
* ``e1.t <= e2.t <= ... <= ek.t`` (equal timestamps may chain in any order);
* ``ek.t - e1.t <= window_us`` (inclusive).

Such a sequence is called a *valid k-chain*. ``users`` of step ``k`` counts the distinct
users reaching at least level ``k``. ``conversion_from_start`` is ``users_k / users_1``
(step 1: ``1.0``) and ``conversion_from_previous`` is ``users_k / users_(k-1)`` (step 1:
``None``); both are ``None`` when the denominator is zero.

Median time between steps (the chosen chain)
--------------------------------------------
For every user let ``D`` be the deepest level reached. The user's *chosen chain* is the
valid D-chain whose key ``(-t1, t2, t3, ..., tD)`` is lexicographically smallest, i.e.
the chain with the **latest start**; among those, the earliest ``t2``; among those, the
earliest ``t3``; and so on (``ti`` is the timestamp of ``e_i``). Only timestamps enter the
key, so the chosen timestamp vector is unique even when several event sets realise it.
``median_seconds_from_previous`` of step ``k >= 2`` is the median, over users reaching
level ``k``, of ``tk - t(k-1)`` taken from each user's chosen chain (even count: mean of
the two middle values), converted to seconds: ``median_us / 1_000_000``;
``average_seconds_from_previous`` is the mean of the same gaps. ``dropped_off`` of step
``k >= 2`` is ``users_(k-1) - users_k`` (step 1: ``None``).

Breakdown
---------
With ``breakdown=True`` each non-``None`` breakdown value ``v`` is its own funnel in which
``e1`` must additionally have ``breakdown_value == v`` (later steps are unrestricted). A
user counts under every value for which a valid chain exists, and the chosen chain for
``v`` is defined as above within that funnel. Results are ordered by step-1 users
descending, then by value.

Algorithm
---------
Users are processed one at a time. For one user a dynamic programme runs over the events
in time order; ``best[k]`` holds the key-minimal valid k-chain (as the tuple
``(t1, ..., tk)``) built from the events processed so far. This is exact because

* a chain's future extensibility depends only on its start (window) and on all of its
  events preceding the new ones, and the key-minimal chain has the latest start;
* appending the same timestamps to two equally long chains preserves their key order.

A group of events sharing one timestamp is processed together: for every entry level
``j`` (``0`` = start a new chain at this timestamp) the longest run of levels
``j+1..j+m`` that can be covered by *distinct* events of the group is found (directly when
every event of the group matches a single step, else with an incremental bipartite
matching by augmenting paths). Users whose timestamps are strictly increasing - the
common case - take a fast path that updates levels from the highest down (so one event
is never used twice in a chain) and only ever replaces a level's chain by one with a
strictly later start; on the first equal timestamp the user is re-run by the tie-aware
DP. With breakdown, the DP is re-run per start value (from that value's first possible
start), except for the value of the overall chosen chain's start, whose result is the
overall one.

:meth:`FunnelAccumulator.add_split` takes a user as two lists instead: the times of the
in-range events matching step 1 only, and the events matching a later step. Only the
latter are walked; the latest start before each is found by bisection (a later-step event
sharing its timestamp with another event sends the user to the tie-aware DP). A user with
no later-step event within reach of a start reaches step 1 only and is counted without a
walk.

Input and memory: :func:`evaluate` takes rows sorted by ``(user_id, t_us)``; a user is a
run of consecutive rows with equal ``user_id``; every row is a distinct event
(``event_key`` is accepted and ignored). Only one user's events are held, plus ``8``
bytes per (funnel, user, reached step >= 2) for the exact medians.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby, islice, repeat
from operator import itemgetter
from typing import Any, cast

__all__ = [
    "MASK_BITS",
    "MAX_STEPS",
    "MIN_STEPS",
    "BreakdownResult",
    "FunnelAccumulator",
    "FunnelResult",
    "FunnelRow",
    "StepStat",
    "Tally",
    "UserEvent",
    "evaluate",
    "longest_cover",
    "merge_split",
    "step_stat",
]

MIN_STEPS = 2
MAX_STEPS = 10
#: Bits of a packed event ``t_us << MASK_BITS | steps_mask``: one per possible step.
MASK_BITS = MAX_STEPS

#: ``(t_us, steps_mask, breakdown_value)`` - one event of one user, as fed to ``add_user``.
UserEvent = tuple[int, int, str | None]
#: ``(user_id, t_us, steps_mask, breakdown_value[, event_key])`` - one row for ``evaluate``.
FunnelRow = tuple[Hashable, int, int, str | None] | tuple[Hashable, int, int, str | None, Any]

Chain = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StepStat:
    users: int
    conversion_from_start: float | None
    conversion_from_previous: float | None
    median_seconds_from_previous: float | None
    average_seconds_from_previous: float | None = None
    dropped_off: int | None = None


@dataclass(frozen=True, slots=True)
class BreakdownResult:
    value: str
    steps: list[StepStat]


@dataclass(frozen=True, slots=True)
class FunnelResult:
    steps: list[StepStat]
    breakdown: list[BreakdownResult]

    @classmethod
    def of(cls, steps: list[StepStat], breakdown: Iterable[BreakdownResult]) -> FunnelResult:
        """The result with its breakdown in order: step-1 users descending, then value."""
        ordered = sorted(breakdown, key=lambda b: (-b.steps[0].users, b.value))
        return cls(steps, ordered)


class Tally:
    """Per-funnel aggregate: users per deepest level and the chosen-chain step gaps."""

    __slots__ = ("deltas", "depth")

    def __init__(self, n_steps: int) -> None:
        self.depth = [0] * (n_steps + 1)  # index d = users whose deepest level is d
        self.deltas = [array("q") for _ in range(n_steps + 1)]  # index k >= 2 used

    def add(self, chain: Chain) -> None:
        d = len(chain)
        self.depth[d] += 1
        if d > 1:
            deltas = self.deltas
            for k in range(1, d):
                deltas[k + 1].append(chain[k] - chain[k - 1])

    def stats(self) -> list[StepStat]:
        users = [0] * len(self.depth)  # index k = users reaching at least level k
        running = 0
        for k in range(len(users) - 1, 0, -1):
            running += self.depth[k]
            users[k] = running
        first = users[1]
        out = [StepStat(first, 1.0 if first else None, None, None)]
        for k in range(2, len(users)):
            out.append(step_stat(users[k], first, users[k - 1], self.deltas[k]))
        return out


def step_stat(users: int, first: int, previous: int, gaps: Sequence[int]) -> StepStat:
    """A step after the first: its users, their share of the first step's and of the previous
    step's, and the median and mean of ``gaps`` (µs from the previous step) in seconds."""
    return StepStat(
        users,
        users / first if first else None,
        users / previous if previous else None,
        _median_seconds(gaps),
        sum(gaps) / len(gaps) / 1_000_000 if gaps else None,
        previous - users,
    )


def _median_seconds(values: Sequence[int]) -> float | None:
    n = len(values)
    if n == 0:
        return None
    ordered = sorted(values)
    mid = n // 2
    if n % 2:
        return ordered[mid] / 1_000_000
    return (ordered[mid - 1] + ordered[mid]) / 2 / 1_000_000


def _better(cand: Chain, cur: Chain | None) -> bool:
    """True when ``cand`` has a smaller key ``(-t1, t2, ...)`` than ``cur`` (same length)."""
    if cur is None:
        return True
    if cand[0] != cur[0]:
        return cand[0] > cur[0]
    return cand < cur


class FunnelAccumulator:
    """Streaming funnel evaluator: feed users one at a time, then call :meth:`result`."""

    def __init__(
        self,
        n_steps: int,
        window_us: int,
        from_us: int,
        to_us: int,
        breakdown: bool = False,
    ) -> None:
        if not MIN_STEPS <= n_steps <= MAX_STEPS:
            raise ValueError(f"n_steps must be in [{MIN_STEPS}, {MAX_STEPS}], got {n_steps}")
        if window_us < 0:
            raise ValueError(f"window_us must be >= 0, got {window_us}")
        self.n_steps = n_steps
        self.window_us = window_us
        self.from_us = from_us
        self.to_us = to_us
        self.breakdown = breakdown
        self._full = (1 << n_steps) - 1
        # For every mask: the matched levels >= 2 (1-based), highest first.
        self._upper: list[tuple[int, ...]] = [
            tuple(k + 1 for k in range(n_steps - 1, 0, -1) if mask >> k & 1)
            for mask in range(1 << n_steps)
        ]
        self._overall = Tally(n_steps)
        self._by_value: dict[str, Tally] = {}

    # ------------------------------------------------------------------ public API

    def add_user(self, events: Sequence[UserEvent]) -> None:
        """Account one user's events ``(t_us, steps_mask, breakdown_value)`` sorted by t."""
        self._add(events, 0, 1, 2)

    def add_split(
        self,
        starts: Sequence[int],
        later: Sequence[int],
        start_values: Sequence[str | None] | None = None,
        later_values: Sequence[str | None] | None = None,
    ) -> None:
        """Account one user given as two sorted lists (the same as :meth:`add_user`).

        * ``starts``: ascending times of the user's events matching step 1 only (mask
          ``1``) with ``from_us <= t < to_us``; such events serve nothing else;
        * ``later``: ascending ``t_us << MASK_BITS | steps_mask`` of every event matching
          some later step (any other events of the user can take part in no chain).

        With breakdown, ``start_values`` and ``later_values`` are the events' values,
        aligned. Most events of a typical funnel start it and nothing more: here only
        ``later`` is walked, and each of its events finds the latest start before it by
        bisection instead of every start being visited.
        """
        shift = MASK_BITS
        lo = self.from_us
        hi = self.to_us
        both = [x >> shift for x in later if x & 1 and lo <= x >> shift < hi]
        every = sorted([*starts, *both]) if both else starts
        if not every:
            return  # no in-range step-1 event: the user counts nowhere
        if not later or (
            later[-1] >> shift < every[0] or later[0] >> shift > every[-1] + self.window_us
        ):
            # No event of a later step lies within reach of a start: step 1 only.
            self._add_single_step(start_values, later, later_values)
            return
        # Later events before the first start or after the last start + window join no chain.
        i = bisect_left(later, every[0] << shift)
        j = bisect_right(later, (every[-1] + self.window_us) << shift | ((1 << shift) - 1))
        if i or j < len(later):
            later = later[i:j]
            if later_values is not None:
                later_values = later_values[i:j]
        chain = self._split_chain(every, starts, later, starts, later, start_values, later_values)
        self._overall.add(chain)
        if self.breakdown:
            self._add_split_breakdown(chain, starts, later, start_values, later_values)

    def _split_chain(
        self,
        every: Sequence[int],
        pure: Sequence[int],
        later: Sequence[int],
        starts: Sequence[int],
        all_later: Sequence[int],
        start_values: Sequence[str | None] | None,
        later_values: Sequence[str | None] | None,
        value: str | None = None,
    ) -> Chain:
        """The chosen chain (of ``value``'s funnel when given) from :meth:`add_split`'s lists.

        ``every``: the funnel's start times; ``pure``: those of events matching step 1
        only; ``later``: the later-step events to walk (``all_later``, possibly pruned).
        """
        chain = self._best_chain_split(every, pure, later)
        if chain is None:  # two events share a timestamp: the exact tie-aware DP
            events = merge_split(starts, all_later, start_values, later_values)
            chain = self._best_chain(events, 0, 1, 2, value is not None, value, 0, ties=True)
        return cast(Chain, chain)  # every holds an in-range start

    def _add_split_breakdown(
        self,
        chain: Chain,
        starts: Sequence[int],
        later: Sequence[int],
        start_values: Sequence[str | None] | None,
        later_values: Sequence[str | None] | None,
    ) -> None:
        """Each start value's funnel: only that value's events may start a chain."""
        shift = MASK_BITS
        lo = self.from_us
        hi = self.to_us
        s0 = chain[0]
        values: Sequence[str | None] = start_values or [None] * len(starts)
        # value -> its step-1-only start times, ascending
        grouped: dict[str | None, list[int]] = {}
        kinds = set(values)
        if len(kinds) == 1:  # the common case: no need to visit every start
            grouped[next(iter(kinds))] = list(starts)
        else:
            for t, v in zip(starts, values, strict=True):
                grouped.setdefault(v, []).append(t)
        grouped.pop(None, None)
        pure = cast(dict[str, list[int]], grouped)
        both: dict[str, list[int]] = {}  # value -> its later-step events that can start too
        # Values of the events able to start `chain`.
        at_s0 = set(values[bisect_left(starts, s0) : bisect_right(starts, s0)])
        for x, v in zip(later, later_values or repeat(None), strict=False):
            t = x >> shift
            if x & 1 and lo <= t < hi:
                if t == s0:
                    at_s0.add(v)
                if v is not None:
                    both.setdefault(v, []).append(t)
        # If every event that can start the overall chosen chain has value v, that chain is
        # also v's chosen chain (v's chains are a subset of all chains).
        shared = next(iter(at_s0)) if len(at_s0) == 1 else None
        by_value = self._by_value
        for value in pure.keys() | both.keys():
            if value == shared:
                vchain = chain
            else:
                vpure = pure.get(value) or []
                vboth = both.get(value)
                every = sorted([*vpure, *vboth]) if vboth else vpure
                vchain = self._split_chain(
                    every, vpure, later, starts, later, start_values, later_values, value
                )
            tally = by_value.get(value)
            if tally is None:
                tally = by_value[value] = Tally(self.n_steps)
            tally.add(vchain)

    def _add_single_step(
        self,
        start_values: Sequence[str | None] | None,
        later: Sequence[int],
        later_values: Sequence[str | None] | None,
    ) -> None:
        self._overall.depth[1] += 1
        if not self.breakdown:
            return
        shift = MASK_BITS
        lo = self.from_us
        hi = self.to_us
        values = set(start_values or ())
        if later_values is not None:
            values.update(
                v
                for x, v in zip(later, later_values, strict=True)
                if x & 1 and lo <= x >> shift < hi
            )
        values.discard(None)
        for value in values:
            tally = self._by_value.get(cast(str, value))
            if tally is None:
                tally = self._by_value[cast(str, value)] = Tally(self.n_steps)
            tally.depth[1] += 1

    def tally(self, value: str | None = None) -> Tally:
        """The overall tally (``None``) or a breakdown value's, created when first asked:
        where chains found elsewhere (an analytic store) are added to this one's."""
        if value is None:
            return self._overall
        tally = self._by_value.get(value)
        if tally is None:
            tally = self._by_value[value] = Tally(self.n_steps)
        return tally

    def result(self) -> FunnelResult:
        return FunnelResult.of(
            self._overall.stats(),
            (BreakdownResult(value, tally.stats()) for value, tally in self._by_value.items()),
        )

    def best_chain(self, events: Sequence[Sequence[Any]]) -> Chain | None:
        """The chosen chain of one user's events ``(t_us, steps_mask, …)`` sorted by time
        (None: no in-range start), without accounting it."""
        return self._best_chain(events, 0, 1, 2, False, None, 0) if events else None

    # ------------------------------------------------------------------ internals

    def _add(self, events: Sequence[Sequence[Any]], it: int, im: int, ib: int) -> None:
        """Account one user's events; ``it``/``im``/``ib`` index t, mask and value."""
        if not events:
            return
        chain = self._best_chain(events, it, im, ib, False, None, 0)
        if chain is None:
            return  # no in-range step-1 event: the user counts nowhere
        self._overall.add(chain)
        if self.breakdown:
            self._add_breakdown(events, it, im, ib, chain)

    def _add_breakdown(
        self, events: Sequence[Sequence[Any]], it: int, im: int, ib: int, chain: Chain
    ) -> None:
        lo = self.from_us
        hi = self.to_us
        # value -> index of the first event sharing the timestamp of its first possible start
        # (the DP for that value may skip everything before it).
        first: dict[str, int] = {}
        # Breakdown values of the events able to start the overall chosen chain.
        start_values: set[str | None] = set()
        s0 = chain[0]
        idx = -1
        for e in events:
            idx += 1
            if e[im] & 1:
                t = e[it]
                if lo <= t < hi:
                    v = e[ib]
                    if t == s0:
                        start_values.add(v)
                    if v is not None and v not in first:
                        group_start = idx
                        while group_start and events[group_start - 1][it] == t:
                            group_start -= 1
                        first[v] = group_start
        by_value = self._by_value
        n = self.n_steps
        # If every event that can start the overall chosen chain has value v, that chain is
        # also v's chosen chain (v's chains are a subset of all chains).
        shared = next(iter(start_values)) if len(start_values) == 1 else None
        for value, start in first.items():
            if value == shared:
                vchain: Chain | None = chain
            else:
                vchain = self._best_chain(events, it, im, ib, True, value, start)
            if vchain is None:  # pragma: no cover - value came from an in-range start
                continue
            tally = by_value.get(value)
            if tally is None:
                tally = by_value[value] = Tally(n)
            tally.add(vchain)

    def _best_chain(
        self,
        events: Sequence[Sequence[Any]],
        it: int,
        im: int,
        ib: int,
        restrict: bool,
        value: str | None,
        start: int,
        ties: bool = False,
    ) -> Chain | None:
        """Key-minimal valid chain of the deepest reachable level, or None.

        ``events[start:]`` are considered (callers only skip events that cannot take part in
        any chain). With ``restrict`` only events whose breakdown value equals ``value`` may
        start a chain. A fast walk serves users whose timestamps are strictly increasing; on
        the first tie (or with ``ties``) the exact DP runs instead, handling a group of
        events sharing a timestamp together.
        """
        n = self.n_steps
        lo = self.from_us
        hi = self.to_us
        window = self.window_us
        full = self._full
        upper = self._upper
        best: list[Chain | None] = [None] * (n + 1)
        if not ties:
            prev_t: int | None = None
            for e in islice(events, start, None) if start else events:
                t: int = e[it]
                if prev_t is not None and t <= prev_t:
                    if t < prev_t:
                        raise ValueError("events of a user must be sorted by timestamp")
                    best = [None] * (n + 1)
                    break  # a tie: start again with the exact DP
                prev_t = t
                m: int = e[im] & full
                if m:
                    starts = bool(m & 1) and lo <= t < hi and (not restrict or e[ib] == value)
                    _extend(best, upper[m], t, window, starts)
            else:
                return _deepest(best)
        total = len(events)
        i = start
        while i < total:
            e = events[i]
            t = e[it]
            j = i + 1
            if j < total:
                t_next: int = events[j][it]
                if t_next < t:
                    raise ValueError("events of a user must be sorted by timestamp")
                if t_next == t:
                    masks: list[int] = []
                    while j < total and events[j][it] == t:
                        j += 1
                    if j < total and events[j][it] < t:
                        raise ValueError("events of a user must be sorted by timestamp")
                    for g in range(i, j):
                        eg = events[g]
                        m = eg[im] & full
                        if m & 1 and (not lo <= t < hi or (restrict and eg[ib] != value)):
                            m &= ~1  # this event cannot start a chain
                        if m:
                            masks.append(m)
                    if masks:
                        self._apply_group(best, masks, t, window)
                    i = j
                    continue
            i = j
            m = e[im] & full
            if m:
                starts = bool(m & 1) and lo <= t < hi and (not restrict or e[ib] == value)
                _extend(best, upper[m], t, window, starts)
        return _deepest(best)

    def _best_chain_split(
        self, every: Sequence[int], starts: Sequence[int], later: Sequence[int]
    ) -> Chain | None:
        """:meth:`_best_chain` (no breakdown) for :meth:`add_split`'s lists.

        ``every``: all in-range start times, ascending. None when two events share a
        timestamp (the caller then runs the exact tie-aware DP instead).
        """
        n = self.n_steps
        window = self.window_us
        full = self._full
        upper = self._upper
        shift = MASK_BITS
        n_starts = len(starts)
        best: list[Chain | None] = [None] * (n + 1)
        prev_t: int | None = None
        for x in later:
            t = x >> shift
            if t == prev_t:
                return None
            prev_t = t
            i = bisect_left(starts, t)
            if i < n_starts and starts[i] == t:
                return None
            m = x & full
            for k in upper[m]:
                if k == 2:
                    # Level 1 is the latest start before t (times are distinct here).
                    i = bisect_left(every, t)
                    if not i:
                        continue
                    s = every[i - 1]
                    p: Chain = (s,)
                else:
                    q = best[k - 1]
                    if q is None:
                        continue
                    p = q
                    s = p[0]
                if t - s > window:
                    continue
                c = best[k]
                # As in _extend: only a strictly later start can improve a level.
                if c is None or s > c[0]:
                    best[k] = (*p, t)
        for k in range(n, 1, -1):
            if best[k] is not None:
                return best[k]
        return (every[-1],)

    def _apply_group(self, best: list[Chain | None], masks: list[int], t: int, window: int) -> None:
        """Update ``best`` with a group of >= 2 events sharing timestamp ``t``."""
        n = self.n_steps
        old = best[:]
        union = 0
        single_step = True
        for mask in masks:
            union |= mask
            if mask & (mask - 1):
                single_step = False
        for j in range(n):
            if not union >> j & 1:
                continue  # no event of the group can serve as level j + 1
            base: Chain
            if j == 0:
                base = ()
            else:
                prefix = old[j]
                if prefix is None or t - prefix[0] > window:
                    continue
                base = prefix
            if single_step:
                # Each event serves one step only, so distinct levels use distinct events:
                # the run of consecutive matched levels is the answer.
                top = j + 1
                while top < n and union >> top & 1:
                    top += 1
                cover = top - j
            else:
                cover = longest_cover(masks, j + 1, n)
            for length in range(1, cover + 1):
                cand = base + (t,) * length
                if _better(cand, best[j + length]):
                    best[j + length] = cand


def _deepest(best: list[Chain | None]) -> Chain | None:
    """The chain of the deepest level reached, or None (not even a start)."""
    for chain in reversed(best):
        if chain is not None:
            return chain
    return None


def _extend(
    best: list[Chain | None], levels: tuple[int, ...], t: int, window: int, starts: bool
) -> None:
    """Update ``best`` with one event at ``t`` (no other event of the user at ``t``).

    ``levels``: the levels >= 2 it matches, highest first (so it is used once per chain);
    ``starts``: it may start a chain. With timestamps strictly increasing, a level's chain
    for a given start is final once set: the only way to build one is extending
    ``best[k - 1]`` with that start, which never changes either, and later extensions end
    later. Hence only a strictly later start improves ``best[k]``; the equal-start
    comparison guards what tie groups (:meth:`FunnelAccumulator._apply_group`) leave.
    """
    for k in levels:
        p = best[k - 1]
        if p is None:
            continue
        s = p[0]
        if t - s > window:
            continue
        c = best[k]
        if c is None or s > c[0]:
            best[k] = (*p, t)
        elif s == c[0]:
            cand = (*p, t)
            if cand < c:
                best[k] = cand
    if starts:
        c = best[1]
        if c is None or c[0] < t:
            best[1] = (t,)


def longest_cover(masks: list[int], first: int, n: int) -> int:
    """Largest m such that levels first..first+m-1 match distinct events (by mask)."""
    owner: list[int] = [0] * len(masks)  # level matched to each event, 0 = free

    def augment(level: int, seen: list[bool]) -> bool:
        bit = 1 << (level - 1)
        for idx, mask in enumerate(masks):
            if mask & bit and not seen[idx]:
                seen[idx] = True
                if owner[idx] == 0 or augment(owner[idx], seen):
                    owner[idx] = level
                    return True
        return False

    covered = 0
    for level in range(first, min(n, first + len(masks) - 1) + 1):
        if not augment(level, [False] * len(masks)):
            break
        covered += 1
    return covered


def merge_split(
    starts: Sequence[int],
    later: Sequence[int],
    start_values: Sequence[str | None] | None,
    later_values: Sequence[str | None] | None,
) -> list[UserEvent]:
    """:meth:`FunnelAccumulator.add_split`'s lists as one time-ordered event list."""
    shift = MASK_BITS
    low = (1 << shift) - 1
    no_values = repeat(None)
    events: list[UserEvent] = [
        (t, 1, v) for t, v in zip(starts, start_values or no_values, strict=False)
    ]
    events.extend(
        (x >> shift, x & low, v) for x, v in zip(later, later_values or no_values, strict=False)
    )
    events.sort(key=itemgetter(0))
    return events


def evaluate(
    rows: Iterable[FunnelRow],
    n_steps: int,
    window_us: int,
    from_us: int,
    to_us: int,
    breakdown: bool = False,
) -> FunnelResult:
    """Evaluate a funnel over rows ``(user_id, t_us, steps_mask, breakdown_value[, key])``.

    Rows must be sorted by ``(user_id, t_us)``; consecutive rows with equal ``user_id`` form
    one user. Each row is a distinct event (``event_key`` is accepted and ignored). Mask
    bits ``>= n_steps`` are ignored. Raises ``ValueError`` for invalid parameters or when a
    user's timestamps decrease.
    """
    acc = FunnelAccumulator(n_steps, window_us, from_us, to_us, breakdown)
    add = acc._add
    for _user, group in groupby(rows, key=itemgetter(0)):
        add(list(group), 1, 2, 3)
    return acc.result()
