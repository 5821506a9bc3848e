"""Funnel modes over whole user streams: strict and unordered funnels, exclusions, and the
time of a user's first conversion. Pure: no database, no HTTP.

A user's *stream* is their items (events and paid orders) ordered by time, then id, each
given as ``(t_us, steps_mask, exclusions_mask, values)``: bit ``k`` of ``steps_mask`` when
the item matches step ``k + 1``, bit ``i`` of ``exclusions_mask`` when it matches exclusion
``i``, ``values`` the item's breakdown values.

Chains (``t1..tk`` below are the items' times; ``e1`` must lie in ``[from, to)`` and, in a
breakdown value's funnel, have that value; ``tk - t1 <= window``):

* ``ordered`` - distinct items ``e1..ek`` matching steps ``1..k`` with non-decreasing
  times (as :mod:`.engine`);
* ``strict`` - as ordered, and each ``e(i+1)`` is the item directly after ``e(i)`` in the
  stream: any other item between them breaks the chain;
* ``unordered`` - a user reaches level ``k`` when ``k`` different steps have distinct
  matching items within the window of the earliest of them, which lies in ``[from, to)``
  (that item plays the part of ``e1`` for the range and the breakdown).

An exclusion ``(from_step, to_step)`` (0-based) voids a chain when an item matching it has
a time strictly between those of the chain's ``from_step`` and ``to_step`` items; a chain
that has its ``from_step`` item but stops before ``to_step`` is void when such an item lies
after the ``from_step`` item and no later than ``t1 + window``. A user reaches the deepest
level of their non-void chains (none: the user counts nowhere); the chosen chain (for
median times) is, among those, the one with the latest start, then the earliest later
steps, as in :mod:`.engine`.

The *first conversion* from step ``a`` to step ``b`` is the non-void chain ending at step
``b`` that starts earliest, then reaches ``b`` earliest, then has the latest ``a`` item; its
time is ``t(b) - t(a)``.

Algorithm (ordered): the items are walked by groups of equal time, keeping for each state
``(level, t1, times of the from-items of the exclusions still open)`` the chain of that
state with the smallest later times; two chains of one state extend alike, and a group of
equal-time items covers a run of levels by distinct items (a bipartite matching). Strict
chains are determined by their first item; unordered levels are a matching of steps to the
items within the window of each possible earliest item.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from services.attribution.funnels.engine import (
    BreakdownResult,
    FunnelResult,
    Tally,
    longest_cover,
)

__all__ = [
    "ModeAccumulator",
    "ModeSpec",
    "StreamItem",
    "TrendAccumulator",
    "UserOutcome",
    "evaluate_user",
]

#: ``(t_us, steps_mask, exclusions_mask, breakdown values)``: one item of a user's stream.
StreamItem = tuple[int, int, int, frozenset[str]]
Chain = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ModeSpec:
    n_steps: int
    window_us: int
    from_us: int
    to_us: int
    order: str = "ordered"  # ordered | strict | unordered
    exclusions: tuple[tuple[int, int], ...] = ()  # (from_step, to_step) of exclusion bit i
    convert: tuple[int, int] | None = None  # (from_step, to_step) of the first conversion


@dataclass(frozen=True, slots=True)
class UserOutcome:
    level: int  # deepest level of a non-void chain (0: counts nowhere)
    chain: Chain | None  # the chosen chain (None for unordered funnels)
    conversion_us: int | None  # time of the first conversion (None: not converted)


_NOWHERE = UserOutcome(0, None, None)


class _Judge:
    """Whether a chain (or an extension of it) is void, and which of them is the best."""

    def __init__(self, items: Sequence[StreamItem], spec: ModeSpec) -> None:
        self.spec = spec
        self.times = [
            [t for t, _, x, _ in items if x >> i & 1] for i in range(len(spec.exclusions))
        ]
        self.best: Chain | None = None
        self.conversion: tuple[int, int, int] | None = None  # (t1, t_to, -t_from)

    def _any_after(self, i: int, after: int, until: int, inclusive: bool) -> bool:
        xs = self.times[i]
        j = bisect_right(xs, after)
        return j < len(xs) and (xs[j] <= until if inclusive else xs[j] < until)

    def extension_void(self, chain: Chain) -> bool:
        """The chain's last item is a ``to_step`` with an excluded item since its from-item."""
        g = len(chain) - 1
        return any(
            to == g and self._any_after(i, chain[f], chain[g], False)
            for i, (f, to) in enumerate(self.spec.exclusions)
        )

    def open_times(self, chain: Chain) -> tuple[int, ...]:
        """Times of the from-items of the exclusions whose to-step the chain has not yet."""
        n = len(chain)
        return tuple(chain[f] for f, to in self.spec.exclusions if f < n <= to)

    def record(self, chain: Chain) -> None:
        """Account a non-void-on-extension chain: the best chain and the first conversion."""
        n = len(chain)
        end = chain[0] + self.spec.window_us
        for i, (f, to) in enumerate(self.spec.exclusions):
            if f < n <= to and self._any_after(i, chain[f], end, True):
                return  # void as a chain stopping before to_step
        best = self.best
        # Deeper first; then the latest start; then the earliest later steps.
        if (
            best is None
            or (n, chain[0]) > (len(best), best[0])
            or ((n, chain[0]) == (len(best), best[0]) and chain < best)
        ):
            self.best = chain
        convert = self.spec.convert
        if convert is not None and n == convert[1] + 1:
            key = (chain[0], chain[-1], -chain[convert[0]])
            if self.conversion is None or key < self.conversion:
                self.conversion = key

    def outcome(self) -> UserOutcome:
        if self.best is None:
            return _NOWHERE
        conversion = None if self.conversion is None else self.conversion[1] + self.conversion[2]
        return UserOutcome(len(self.best), self.best, conversion)


def _ordered(items: Sequence[StreamItem], spec: ModeSpec, value: str | None) -> UserOutcome:
    n, window, lo, hi = spec.n_steps, spec.window_us, spec.from_us, spec.to_us
    judge = _Judge(items, spec)
    convert_from = spec.convert[0] if spec.convert is not None else None
    convert_to = spec.convert[1] if spec.convert is not None else -1
    states: dict[tuple[int, ...], Chain] = {}
    oldest = 0  # the earliest start among the states
    i = 0
    total = len(items)
    while i < total:
        t = items[i][0]
        masks: list[int] = []
        while i < total and items[i][0] == t:
            _, m, _, values = items[i]
            if m & 1 and not (lo <= t < hi and (value is None or value in values)):
                m &= ~1  # this item cannot start a chain
            if m:
                masks.append(m)
            i += 1
        if not masks:
            continue
        if states and t - oldest > window:  # chains out of reach can extend no more
            states = {key: c for key, c in states.items() if t - c[0] <= window}
            oldest = min((c[0] for c in states.values()), default=t)
        single = masks[0] if len(masks) == 1 else 0  # the common case: one item at t
        for base in [(), *states.values()]:
            k = len(base)
            if k == n:
                continue
            cover = (single >> k & 1) if single else longest_cover(masks, k + 1, n)
            for length in range(1, cover + 1):
                chain = base + (t,) * length
                if judge.extension_void(chain):
                    break  # and so is every longer run from this base
                size = k + length
                key = (size, chain[0], *judge.open_times(chain))
                if convert_from is not None and convert_from < size <= convert_to:
                    key = (*key, chain[convert_from])
                current = states.get(key)
                if current is None or chain < current:
                    states[key] = chain
                judge.record(chain)
    return judge.outcome()


def _strict(items: Sequence[StreamItem], spec: ModeSpec, value: str | None) -> UserOutcome:
    n, window, lo, hi = spec.n_steps, spec.window_us, spec.from_us, spec.to_us
    judge = _Judge(items, spec)
    total = len(items)
    for i, (t1, mask, _, values) in enumerate(items):
        if not (mask & 1 and lo <= t1 < hi and (value is None or value in values)):
            continue
        chain: Chain = (t1,)
        judge.record(chain)
        for k in range(1, min(n, total - i)):
            t, m, _, _ = items[i + k]
            if not m >> k & 1 or t - t1 > window:
                break
            chain = (*chain, t)
            if judge.extension_void(chain):
                break
            judge.record(chain)
    return judge.outcome()


def _matching(steps: int, masks: Sequence[int]) -> int:
    """Most steps (bits of ``steps``) matched to distinct items (by their masks)."""
    owner = [-1] * len(masks)

    def augment(step: int, seen: list[bool]) -> bool:
        bit = 1 << step
        for idx, mask in enumerate(masks):
            if mask & bit and not seen[idx]:
                seen[idx] = True
                if owner[idx] < 0 or augment(owner[idx], seen):
                    owner[idx] = step
                    return True
        return False

    wanted = [step for step in range(steps.bit_length()) if steps >> step & 1]
    return sum(augment(step, [False] * len(masks)) for step in wanted)


def _unordered(items: Sequence[StreamItem], spec: ModeSpec, value: str | None) -> UserOutcome:
    n, window, lo, hi = spec.n_steps, spec.window_us, spec.from_us, spec.to_us
    full = (1 << n) - 1
    times = [item[0] for item in items]
    level = 0
    for a, (ta, ma, _, values) in enumerate(items):
        ma &= full
        if not (ma and lo <= ta < hi and (value is None or value in values)):
            continue
        first, last = bisect_left(times, ta), bisect_right(times, ta + window)
        # Items of one mask are interchangeable: n of each are enough for any matching.
        counts: dict[int, int] = {}
        for b in range(first, last):
            m = items[b][1] & full
            if b != a and m and counts.get(m, 0) < n:
                counts[m] = counts.get(m, 0) + 1
        others = [m for m, count in counts.items() for _ in range(count)]
        for step in range(n):
            if ma >> step & 1:
                level = max(level, 1 + _matching(full & ~(1 << step), others))
        if level == n:
            break
    return UserOutcome(level, None, None) if level else _NOWHERE


_MODES = {"ordered": _ordered, "strict": _strict, "unordered": _unordered}


def evaluate_user(
    items: Sequence[StreamItem], spec: ModeSpec, value: str | None = None
) -> UserOutcome:
    """One user's outcome (in value's funnel when given: only its items may start)."""
    return _MODES[spec.order](items, spec, value)


def _start_values(items: Sequence[StreamItem], spec: ModeSpec) -> set[str]:
    """Values of the items that can start a chain (unordered: any matching item in range)."""
    first = (1 << spec.n_steps) - 1 if spec.order == "unordered" else 1
    out: set[str] = set()
    for t, mask, _, values in items:
        if mask & first and spec.from_us <= t < spec.to_us:
            out.update(values)
    return out


class ModeAccumulator:
    """Users' outcomes → step counts (and breakdowns), first conversions, levels per user."""

    def __init__(self, spec: ModeSpec, *, breakdown: bool = False, levels: bool = False) -> None:
        self.spec = spec
        self.breakdown = breakdown
        self._overall = Tally(spec.n_steps)
        self._by_value: dict[str, Tally] = {}
        self.conversions: list[int] = []  # first-conversion times, one per converted user
        self.levels: dict[str, int] | None = {} if levels else None

    def _tally(self, tally: Tally, outcome: UserOutcome) -> None:
        if outcome.chain is not None:
            tally.add(outcome.chain)
        else:
            tally.depth[outcome.level] += 1  # unordered: no step order, no step times

    def add_user(self, user_id: str, items: Sequence[StreamItem]) -> None:
        outcome = evaluate_user(items, self.spec)
        if self.levels is not None and outcome.level:
            self.levels[user_id] = outcome.level
        if not outcome.level:
            return
        self._tally(self._overall, outcome)
        if outcome.conversion_us is not None:
            self.conversions.append(outcome.conversion_us)
        if self.breakdown:
            for value in _start_values(items, self.spec):
                found = evaluate_user(items, self.spec, value)
                if found.level:
                    tally = self._by_value.get(value)
                    if tally is None:
                        tally = self._by_value[value] = Tally(self.spec.n_steps)
                    self._tally(tally, found)

    def add_users(self, users: Iterable[tuple[str, Sequence[StreamItem]]]) -> None:
        for user_id, items in users:
            self.add_user(user_id, items)

    def result(self) -> FunnelResult:
        return FunnelResult.of(
            self._overall.stats(),
            (BreakdownResult(value, tally.stats()) for value, tally in self._by_value.items()),
        )


class TrendAccumulator:
    """Users entering and converting per period ``[lo, hi)`` of the range.

    A user *enters* a period when one of their items able to start a chain (matching step 1;
    unordered: any step) lies in it and in the range; they *convert* in it when the funnel
    whose range is the period (cut to the range) takes them to the last step, i.e. a full
    non-void chain starts in it. Periods are ascending and do not overlap.
    """

    def __init__(self, spec: ModeSpec, bounds: Sequence[tuple[int, int]]) -> None:
        self.spec = spec
        self.bounds = list(bounds)
        self._starts = [lo for lo, _ in self.bounds]
        self.entered = [0] * len(self.bounds)
        self.converted = [0] * len(self.bounds)
        self._first = (1 << spec.n_steps) - 1 if spec.order == "unordered" else 1

    def _periods(self, items: Sequence[StreamItem]) -> list[int]:
        lo, hi, first = self.spec.from_us, self.spec.to_us, self._first
        found: set[int] = set()
        for t, mask, _, _ in items:
            if mask & first and lo <= t < hi:
                i = bisect_right(self._starts, t) - 1
                if i >= 0 and t < self.bounds[i][1]:
                    found.add(i)
        return sorted(found)

    def add_user(self, user_id: str, items: Sequence[StreamItem]) -> None:
        spec = self.spec
        for i in self._periods(items):
            self.entered[i] += 1
            lo, hi = self.bounds[i]
            period = replace(spec, from_us=max(lo, spec.from_us), to_us=min(hi, spec.to_us))
            if evaluate_user(items, period).level == spec.n_steps:
                self.converted[i] += 1

    def add_users(self, users: Iterable[tuple[str, Sequence[StreamItem]]]) -> None:
        for user_id, items in users:
            self.add_user(user_id, items)
