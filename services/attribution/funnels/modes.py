"""Funnel modes over whole user streams: strict and unordered funnels, exclusions, and the
time of a user's first conversion. Pure: no database, no HTTP.

A user's *stream* is their items (events and paid orders) ordered by time, then id, each
given as ``(t_us, steps_mask, exclusions_mask, values, held)``: bit ``k`` of ``steps_mask``
when the item matches step ``k + 1``, bit ``i`` of ``exclusions_mask`` when it matches
exclusion ``i``, ``values`` the item's breakdown values, ``held`` the tuples of values of
the held dimensions it has (one per combination of its values; empty when it lacks one).

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

Optional steps (never the first or the last): a chain may skip them. A chain is then a
tuple of times with :data:`SKIP` at the steps it skipped; its level is one more than its
last step (never skipped). Among the chains of the deepest level, the chosen one includes
the earliest optional steps it can (a skipped step compares as later than any time), then
has the latest start, then the earliest later steps. Step ``j`` counts the users whose
chosen chain includes it (a required step: whose level is above ``j``); its times and its
drop-off are measured from the nearest required step before it.

Held dimensions: every item of a chain has one same tuple of held values. A user's chains
are those of the funnels in which only the items having a tuple ``V`` match steps, for
every ``V`` of an item able to start; exclusions are not held.

Breakdown attribution (value ``v``'s funnel): ``first_step`` - ``e1`` has ``v``;
``all_steps`` - every item of the chain has ``v``; ``step`` ``i`` - the chain reaches step
``i`` and its item there has ``v``; ``last_step`` - the chain is of the user's deepest
level and its last item has ``v``.

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
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TypeVar

from services.attribution.funnels.engine import (
    BreakdownResult,
    FunnelAccumulator,
    FunnelResult,
    StepStat,
    longest_cover,
    step_stat,
)

__all__ = [
    "SKIP",
    "ModeAccumulator",
    "ModeSpec",
    "ModeTally",
    "StreamItem",
    "TrendAccumulator",
    "UserOutcome",
    "breakdown_outcomes",
    "evaluate_user",
    "reached_steps",
]

#: One tuple of held values (one per held dimension, in the request's order).
Held = tuple[str, ...]
#: ``(t_us, steps_mask, exclusions_mask, breakdown values, held tuples)``: one stream item.
StreamItem = tuple[int, int, int, frozenset[str], frozenset[Held]]
Chain = tuple[int, ...]
#: A skipped optional step in a chain: later than any time.
SKIP = 1 << 62
NO_HELD: frozenset[Held] = frozenset()
ATTRIBUTIONS = ("first_step", "last_step", "all_steps", "step")


@dataclass(frozen=True, slots=True)
class ModeSpec:
    n_steps: int
    window_us: int
    from_us: int
    to_us: int
    order: str = "ordered"  # ordered | strict | unordered
    exclusions: tuple[tuple[int, int], ...] = ()  # (from_step, to_step) of exclusion bit i
    convert: tuple[int, int] | None = None  # (from_step, to_step) of the first conversion
    optional: int = 0  # bit k: step k + 1 may be skipped (never the first or the last)
    hold: bool = False  # chains keep one tuple of held values
    attribution: str = "first_step"  # first_step | last_step | all_steps | step
    attribution_step: int = 0  # the step of `step` attribution (0-based)


@dataclass(frozen=True, slots=True)
class UserOutcome:
    level: int  # deepest level of a non-void chain (0: counts nowhere)
    chain: Chain | None  # the chosen chain (None for unordered funnels)
    conversion_us: int | None  # time of the first conversion (None: not converted)


_NOWHERE = UserOutcome(0, None, None)


def _skips(chain: Chain) -> tuple[bool, ...]:
    return tuple(t == SKIP for t in chain)


def _nearer(a: Chain, b: Chain, optional: bool) -> bool:
    """Of two chains of one length and start, ``a`` is preferred: it includes the earliest
    optional steps, then has the earliest later steps."""
    if not optional:
        return a < b
    return (_skips(a), a) < (_skips(b), b)


def _reachable(spec: ModeSpec) -> list[tuple[int, ...]]:
    """For a chain of level ``k``: the steps its next item may match (skipping optional ones)."""
    out: list[tuple[int, ...]] = []
    for k in range(spec.n_steps + 1):
        steps: list[int] = []
        p = k
        while p < spec.n_steps:
            steps.append(p)
            if not (k and spec.optional >> p & 1):
                break
            p += 1
        out.append(tuple(steps))
    return out


class _Judge:
    """Whether a chain (or an extension of it) is void, and which of them is the best."""

    def __init__(self, items: Sequence[StreamItem], spec: ModeSpec) -> None:
        self.spec = spec
        self.times = [
            [item[0] for item in items if item[2] >> i & 1] for i in range(len(spec.exclusions))
        ]
        self.best: Chain | None = None
        self.conversion: tuple[int, int, int] | None = None  # (t1, t_to, -t_from)
        self.level = 0  # unordered funnels: the deepest level only

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
        if self._better(chain):
            self.best = chain
        convert = self.spec.convert
        if convert is not None and len(chain) == convert[1] + 1:
            key = (chain[0], chain[-1], -chain[convert[0]])
            if self.conversion is None or key < self.conversion:
                self.conversion = key

    def _better(self, chain: Chain) -> bool:
        """Deeper first; then the earliest optional steps; then the latest start; then the
        earliest later steps."""
        best = self.best
        if best is None or len(best) != len(chain):
            return best is None or len(best) < len(chain)
        if self.spec.optional:
            mine, theirs = _skips(chain), _skips(best)
            if mine != theirs:
                return mine < theirs
        return chain[0] > best[0] or (chain[0] == best[0] and chain < best)

    def outcome(self) -> UserOutcome:
        if self.best is None:
            return UserOutcome(self.level, None, None) if self.level else _NOWHERE
        conversion = None if self.conversion is None else self.conversion[1] + self.conversion[2]
        return UserOutcome(len(self.best), self.best, conversion)


def _time_groups(
    items: Sequence[StreamItem], lo: int, hi: int, value: str | None
) -> Iterator[tuple[int, list[int]]]:
    """The items time by time: each time with the step masks of its items, an item's first
    step cleared when it cannot start a chain (outside ``[lo, hi)``, or without the breakdown
    ``value``); times none of whose items matches a step are left out."""
    i = 0
    total = len(items)
    while i < total:
        t = items[i][0]
        masks: list[int] = []
        while i < total and items[i][0] == t:
            _, m, _, values, _ = items[i]
            if m & 1 and not (lo <= t < hi and (value is None or value in values)):
                m &= ~1  # this item cannot start a chain
            if m:
                masks.append(m)
            i += 1
        if masks:
            yield t, masks


K = TypeVar("K")


def _in_reach(states: dict[K, Chain], t: int, window: int) -> tuple[dict[K, Chain], int]:
    """The states whose chains can still extend at ``t`` (their start within ``window``), and
    the earliest start among them (``t`` when none is left)."""
    kept = {key: c for key, c in states.items() if t - c[0] <= window}
    return kept, min((c[0] for c in kept.values()), default=t)


def _ordered(items: Sequence[StreamItem], spec: ModeSpec, value: str | None, judge: _Judge) -> None:
    if spec.optional:
        _ordered_optional(items, spec, value, judge)
        return
    n, window, lo, hi = spec.n_steps, spec.window_us, spec.from_us, spec.to_us
    convert_from = spec.convert[0] if spec.convert is not None else None
    convert_to = spec.convert[1] if spec.convert is not None else -1
    states: dict[tuple[int, ...], Chain] = {}
    oldest = 0  # the earliest start among the states
    for t, masks in _time_groups(items, lo, hi, value):
        if states and t - oldest > window:
            states, oldest = _in_reach(states, t, window)
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


def _state_key(chain: Chain, judge: _Judge, spec: ModeSpec) -> tuple[int, ...]:
    """What decides a chain's future: its level, start and the times exclusions and the
    first conversion still need (chains of one key extend alike)."""
    size = len(chain)
    key = (size, chain[0], *judge.open_times(chain))
    if spec.convert is not None and spec.convert[0] < size <= spec.convert[1]:
        key = (*key, chain[spec.convert[0]])
    return key


KeyOf = Callable[[Chain], tuple[object, ...]]
Prefer = Callable[[Chain, Chain], bool]


def _optional_states(judge: _Judge, spec: ModeSpec) -> tuple[KeyOf, Prefer]:
    """How the ordered walk with optional steps keeps its chains: by state, and which of two
    chains of one state it keeps.

    Without exclusions or a first conversion to find, a chain's start matters only through
    its window: of two chains of one level that skip the same steps, the later start reaches
    every extension of the earlier one, and is preferred whatever extends both. One chain per
    (level, skipped steps) then suffices. Else the start is part of the state."""
    if spec.exclusions or spec.convert is not None:
        return (lambda chain: _state_key(chain, judge, spec)), (lambda a, b: _nearer(a, b, True))
    return (lambda chain: (len(chain), _skips(chain))), (
        lambda a, b: a[0] > b[0] or (a[0] == b[0] and a < b)
    )


def _ordered_optional(
    items: Sequence[StreamItem], spec: ModeSpec, value: str | None, judge: _Judge
) -> None:
    """The ordered walk when steps may be skipped: a chain's next item may match any step
    up to the next required one; a group of equal-time items extends a chain by any run of
    steps that distinct items of the group match."""
    window, lo, hi = spec.window_us, spec.from_us, spec.to_us
    growth = _Growth(_reachable(spec), judge, *_optional_states(judge, spec))
    prefer = growth.prefer
    states: dict[tuple[object, ...], Chain] = {}
    oldest = 0  # the earliest start among the states
    for t, masks in _time_groups(items, lo, hi, value):
        if states and t - oldest > window:
            states, oldest = _in_reach(states, t, window)
        if len(masks) == 1:
            found = _single_chains(states.values(), masks[0], t, growth)
        else:
            found = _group_chains([(), *states.values()], masks, t, growth)
        for key, chain in found.items():
            current = states.get(key)
            if current is None or prefer(chain, current):
                states[key] = chain
                oldest = min(oldest, chain[0]) if len(states) > 1 else chain[0]


@dataclass(frozen=True, slots=True)
class _Growth:
    """How the walk with optional steps extends its chains: the steps a chain of each level
    may take next, the judge of its exclusions, and how chains are kept (by state, and which
    of two chains of one state)."""

    reach: Sequence[tuple[int, ...]]
    judge: _Judge
    key_of: KeyOf
    prefer: Prefer

    def offer(self, found: dict[tuple[object, ...], Chain], longer: Chain) -> bool:
        """Record the extension ``longer`` and keep it in ``found`` when it is its state's
        preferred chain; False (and nothing done) when an exclusion voids it."""
        if self.judge.extension_void(longer):
            return False
        key = self.key_of(longer)
        current = found.get(key)
        if current is None or self.prefer(longer, current):
            found[key] = longer
        self.judge.record(longer)
        return True


def _single_chains(
    bases: Iterable[Chain], mask: int, t: int, growth: _Growth
) -> dict[tuple[object, ...], Chain]:
    """:func:`_group_chains` for a lone item at ``t``: each chain takes it for one step."""
    reach = growth.reach
    found: dict[tuple[object, ...], Chain] = {}
    candidates: list[Chain] = [(t,)] if mask & 1 else []
    for base in bases:
        k = len(base)
        for p in reach[k]:
            if mask >> p & 1:
                candidates.append((*base, *(SKIP,) * (p - k), t))
    for longer in candidates:
        growth.offer(found, longer)
    return found


def _group_chains(
    bases: Sequence[Chain], masks: Sequence[int], t: int, growth: _Growth
) -> dict[tuple[object, ...], Chain]:
    """Every extension of ``bases`` by items of the group at ``t`` (distinct items on the
    steps added), recorded; the preferred one of each state."""
    reach = growth.reach
    union = 0
    for m in masks:
        union |= m
    found: dict[tuple[object, ...], Chain] = {}
    n = len(reach) - 1

    def grow(chain: Chain, used: int) -> None:
        k = len(chain)
        for p in reach[k]:
            if not union >> p & 1:
                continue
            steps = used | 1 << p
            if len(masks) == 1:
                if used:
                    continue  # one item serves one step of a chain
            elif _matching(steps, masks) < steps.bit_count():
                continue
            longer = (*chain, *(SKIP,) * (p - k), t)
            if growth.offer(found, longer):
                grow(longer, steps)

    for base in bases:
        if len(base) < n:
            grow(base, 0)
    return found


def _strict(items: Sequence[StreamItem], spec: ModeSpec, value: str | None, judge: _Judge) -> None:
    window, lo, hi = spec.window_us, spec.from_us, spec.to_us
    reach = _reachable(spec)
    optional = bool(spec.optional)
    total = len(items)
    for i, (t1, mask, _, values, _) in enumerate(items):
        if not (mask & 1 and lo <= t1 < hi and (value is None or value in values)):
            continue
        first: Chain = (t1,)
        judge.record(first)
        frontier = [first]  # the chains ending at the item just walked
        for j in range(i + 1, total):
            t, m, _, _, _ = items[j]
            if not m or t - t1 > window:
                break
            found: dict[tuple[int, ...], Chain] = {}
            for chain in frontier:
                k = len(chain)
                for p in reach[k]:
                    if not m >> p & 1:
                        continue
                    longer = (*chain, *(SKIP,) * (p - k), t)
                    if judge.extension_void(longer):
                        continue
                    judge.record(longer)
                    key = _state_key(longer, judge, spec)
                    current = found.get(key)
                    if current is None or _nearer(longer, current, optional):
                        found[key] = longer
            if not found:
                break
            frontier = list(found.values())


def _unordered(
    items: Sequence[StreamItem], spec: ModeSpec, value: str | None, judge: _Judge
) -> None:
    n, window, lo, hi = spec.n_steps, spec.window_us, spec.from_us, spec.to_us
    full = (1 << n) - 1
    times = [item[0] for item in items]
    level = judge.level
    # No level is deeper than the steps the user's items match at all: once reached, the
    # remaining starts cannot do better.
    matched = 0
    for item in items:
        matched |= item[1]
    deepest = min((matched & full).bit_count(), len(items))
    # Each item matching one step at most: a start's level is the number of steps its
    # window's items match (the start's own step once), no matching to search.
    single = all((item[1] & full).bit_count() <= 1 for item in items)
    for a, (ta, ma, _, values, _) in enumerate(items):
        ma &= full
        if not (ma and lo <= ta < hi and (value is None or value in values)):
            continue
        first, last = bisect_left(times, ta), bisect_right(times, ta + window)
        if single:
            union = 0
            for b in range(first, last):
                union |= items[b][1]
            level = max(level, (union & full).bit_count())
            if level >= deepest:
                break
            continue
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
        if level >= deepest:
            break
    judge.level = level


@lru_cache(maxsize=64)
def _engine(n_steps: int, window_us: int, from_us: int, to_us: int) -> FunnelAccumulator:
    return FunnelAccumulator(n_steps, window_us, from_us, to_us)


def _ordered_plain(
    items: Sequence[StreamItem], spec: ModeSpec, value: str | None, judge: _Judge
) -> None:
    """The ordered walk without optional steps, exclusions or a first conversion to find:
    the streaming engine's chosen chain (the same definition), fed to the judge."""
    if value is not None:
        items = _restrict(items, 1, value)  # only the value's items may start
    engine = _engine(spec.n_steps, spec.window_us, spec.from_us, spec.to_us)
    chain = engine.best_chain(items)
    if chain is not None:
        judge.record(chain)


def _strict_plain(
    items: Sequence[StreamItem], spec: ModeSpec, value: str | None, judge: _Judge
) -> None:
    """The strict walk without optional steps or exclusions: a chain is its first item and
    the run of items directly after it matching the next steps; of the deepest, the latest
    start is chosen (of equal starts the earlier item, whose later steps are earliest)."""
    n, window, lo, hi = spec.n_steps, spec.window_us, spec.from_us, spec.to_us
    total = len(items)
    best_level, best_start, best_t = 0, 0, 0
    for i, item in enumerate(items):
        t1 = item[0]
        if not (item[1] & 1 and lo <= t1 < hi and (value is None or value in item[3])):
            continue
        k, j = 1, i + 1
        while k < n and j < total:
            t, m = items[j][0], items[j][1]
            if not m >> k & 1 or t - t1 > window:
                break
            k += 1
            j += 1
        if k > best_level or (k == best_level and t1 > best_t):
            best_level, best_start, best_t = k, i, t1
    if best_level:
        judge.record(tuple(item[0] for item in items[best_start : best_start + best_level]))


def _void(chain: Chain, judge: _Judge) -> bool:
    """Whether a whole chain is void: an excluded item strictly between its from- and
    to-items, or, stopping before the to-step, after its from-item and within the window."""
    n = len(chain)
    end = chain[0] + judge.spec.window_us
    for i, (f, to) in enumerate(judge.spec.exclusions):
        if n > to:
            if judge._any_after(i, chain[f], chain[to], False):
                return True
        elif f < n and judge._any_after(i, chain[f], end, True):
            return True
    return False


def _ordered_unless_void(
    items: Sequence[StreamItem], spec: ModeSpec, value: str | None, judge: _Judge
) -> None:
    """The ordered walk with exclusions, no optional steps and no first conversion to find:
    when the plain funnel's chosen chain is not void, it is the choice here too (it is of
    the deepest level of all chains and preferred to every other chain of that level);
    only when it is void are the non-void chains searched."""
    restricted = items if value is None else _restrict(items, 1, value)
    engine = _engine(spec.n_steps, spec.window_us, spec.from_us, spec.to_us)
    chain = engine.best_chain(restricted)
    if chain is None:
        return
    if not _void(chain, judge):
        judge.record(chain)
        return
    _ordered(items, spec, value, judge)


#: Most optional steps walked as one plain funnel per choice of steps skipped.
_MOST_SKIPPABLE = 3


@lru_cache(maxsize=64)
def _skip_patterns(n_steps: int, optional: int) -> tuple[tuple[tuple[int, ...], int], ...]:
    """For each subset of the optional steps: the steps kept when it is skipped, and the
    first step skipped (``n_steps`` when none is)."""
    skippable = [k for k in range(n_steps) if optional >> k & 1]
    out = []
    for choice in range(1 << len(skippable)):
        skipped = [k for b, k in enumerate(skippable) if choice >> b & 1]
        kept = tuple(k for k in range(n_steps) if k not in skipped)
        out.append((kept, min(skipped, default=n_steps)))
    return tuple(out)


@lru_cache(maxsize=64)
def _kept_masks(n_steps: int, kept: tuple[int, ...]) -> tuple[int, ...]:
    """Each step mask (by its value) over the kept steps only, renumbered."""
    return tuple(
        sum(1 << b for b, k in enumerate(kept) if mask >> k & 1) for mask in range(1 << n_steps)
    )


def _ordered_skipping(
    items: Sequence[StreamItem], spec: ModeSpec, value: str | None, judge: _Judge
) -> None:
    """The ordered walk with optional steps, without exclusions or a first conversion to
    find, as one plain funnel per choice of optional steps skipped.

    The chosen chain skips some steps before its last one; in the funnel of the steps it
    keeps it is of the deepest level (a deeper one would be deeper here with the same
    skips) and the preferred one of that level (the same order, the skipped places being
    the same). So the choice is the best of the plain funnels' chosen chains."""
    if value is not None:
        items = _restrict(items, 1, value)
    n, window, lo, hi = spec.n_steps, spec.window_us, spec.from_us, spec.to_us
    matched = 0
    for item in items:
        matched |= item[1]
    for kept, first_skipped in _skip_patterns(n, spec.optional):
        if len(kept) == n:
            chain = _engine(n, window, lo, hi).best_chain(items)
        elif not matched >> (first_skipped + 1):
            # No item matches a step after the first one skipped: this funnel's chains skip
            # nothing before their last step, and are the first funnel's.
            continue
        else:
            table = _kept_masks(n, kept)
            renumbered = [(item[0], table[item[1]]) for item in items]
            chain = _engine(len(kept), window, lo, hi).best_chain(renumbered)
        if chain is None:
            continue
        last = kept[len(chain) - 1]
        times = dict(zip(kept, chain, strict=False))
        judge.record(tuple(times.get(k, SKIP) for k in range(last + 1)))


_MODES = {"ordered": _ordered, "strict": _strict, "unordered": _unordered}


def _walker(
    spec: ModeSpec,
) -> Callable[[Sequence[StreamItem], ModeSpec, str | None, _Judge], None]:
    if spec.order == "ordered" and not (spec.optional or spec.exclusions or spec.convert):
        return _ordered_plain
    return _MODES[spec.order]


def _restrict(items: Sequence[StreamItem], bits: int, keep: str) -> list[StreamItem]:
    """The items, those lacking breakdown value ``keep`` matching none of ``bits``' steps."""
    return [
        item if keep in item[3] or not item[1] & bits else (item[0], item[1] & ~bits, *item[2:])
        for item in items
    ]


def _held_candidates(items: Sequence[StreamItem], spec: ModeSpec, value: str | None) -> set[Held]:
    """The held tuples of the items able to start a chain."""
    first = (1 << spec.n_steps) - 1 if spec.order == "unordered" else 1
    out: set[Held] = set()
    for t, mask, _, values, held in items:
        if mask & first and spec.from_us <= t < spec.to_us and (value is None or value in values):
            out.update(held)
    return out


def _converts(items: Sequence[StreamItem], spec: ModeSpec) -> bool:
    """Whether some item matches the step a first conversion ends at (one is looked for)."""
    if spec.convert is None:
        return False
    bit = 1 << spec.convert[1]
    return any(item[1] & bit for item in items)


def evaluate_user(
    items: Sequence[StreamItem], spec: ModeSpec, value: str | None = None, restrict: int = 0
) -> UserOutcome:
    """One user's outcome. In value's funnel: with ``restrict`` (a mask of steps), only the
    items having ``value`` match those steps; without, only they may start a chain."""
    if value is not None and restrict:
        items = _restrict(items, restrict, value)
        value = None
    judge = _Judge(items, spec)
    walk = _walker(spec)
    if walk is not _unordered and not _converts(items, spec):
        # No first conversion to find: the walks that keep fewer states serve.
        unvoidable = not any(judge.times)
        if walk is _strict and not spec.optional and unvoidable:
            walk = _strict_plain
        elif walk is _ordered and not spec.optional:
            # No item of this user matches an exclusion (no chain of theirs can be void):
            # the funnel is, for them, the plain ordered one.
            walk = _ordered_plain if unvoidable else _ordered_unless_void
        elif walk is _ordered and unvoidable and spec.optional.bit_count() <= _MOST_SKIPPABLE:
            walk = _ordered_skipping
    if not spec.hold:
        walk(items, spec, value, judge)
        return judge.outcome()
    steps = (1 << spec.n_steps) - 1
    lo, hi = spec.from_us, spec.to_us
    if spec.order == "strict":
        for held in sorted(_held_candidates(items, spec, value)):
            # Every item stays in the stream: one lacking the values breaks chains.
            kept = [
                item if held in item[4] or not item[1] else (item[0], item[1] & ~steps, *item[2:])
                for item in items
            ]
            walk(kept, spec, value, judge)
        return judge.outcome()
    # The judge has the excluded items; each walk needs only the matching ones. One pass
    # groups them by held values and finds the values of the items able to start.
    first = steps if spec.order == "unordered" else 1
    by_held: defaultdict[Held, list[StreamItem]] = defaultdict(list)
    starting: set[Held] = set()
    for item in items:
        mask = item[1]
        if mask:
            for held in item[4]:
                by_held[held].append(item)
            if mask & first and lo <= item[0] < hi and (value is None or value in item[3]):
                starting.update(item[4])
    # Without excluded items, a funnel whose items match the first step only has one chain
    # worth keeping: its latest start (any deeper chain is preferred to it anyway).
    lone_starts = walk is not _unordered and not any(judge.times)
    latest: int | None = None
    for held in sorted(starting):
        group = by_held[held]
        if lone_starts and all(item[1] == 1 for item in group):
            for t, _, _, values, _ in group:
                if lo <= t < hi and (value is None or value in values):
                    latest = t if latest is None else max(latest, t)
            continue
        walk(group, spec, value, judge)
    if latest is not None:
        judge.record((latest,))
    return judge.outcome()


def reached_steps(outcome: UserOutcome, spec: ModeSpec) -> int:
    """Bit ``j`` when the user counts at step ``j`` (an optional one: their chain has it)."""
    reached = (1 << outcome.level) - 1
    if outcome.chain is not None and spec.optional:
        for j, t in enumerate(outcome.chain):
            if t == SKIP:
                reached &= ~(1 << j)
    return reached


class ModeTally:
    """Per-funnel aggregate of chosen chains: users per step and the gaps between steps.

    Step ``j`` is measured from the nearest required step before it (its *previous* step):
    the previous step of an optional step or of the step after one skips optional steps.
    """

    def __init__(self, n_steps: int, optional: int = 0) -> None:
        self.n = n_steps
        self.optional = optional
        self.previous = [0] * n_steps
        for j in range(1, n_steps):
            p = j - 1
            while optional >> p & 1:
                p -= 1
            self.previous[j] = p
        self.users = [0] * n_steps
        self.gaps: list[list[int]] = [[] for _ in range(n_steps)]

    def add(self, outcome: UserOutcome) -> None:
        chain = outcome.chain
        if chain is None:  # unordered: no step order, no step times
            for j in range(outcome.level):
                self.users[j] += 1
            return
        previous = self.previous
        for j, t in enumerate(chain):
            if t == SKIP:
                continue
            self.users[j] += 1
            if j:
                self.gaps[j].append(t - chain[previous[j]])

    def stats(self) -> list[StepStat]:
        users = self.users
        first = users[0]
        out = [StepStat(first, 1.0 if first else None, None, None)]
        for j in range(1, self.n):
            out.append(step_stat(users[j], first, users[self.previous[j]], self.gaps[j]))
        return out


def _candidate_values(items: Sequence[StreamItem], spec: ModeSpec, bits: int) -> set[str]:
    """Values of the items matching one of ``bits``' steps (in range, for a start)."""
    out: set[str] = set()
    for t, mask, _, values, _ in items:
        if mask & bits and (bits != 1 or spec.from_us <= t < spec.to_us):
            out.update(values)
    return out


def _shared_values(items: Sequence[StreamItem], spec: ModeSpec, restrict: int) -> frozenset[str]:
    """The values every item a value's funnel restricts has: those matching ``restrict``'s
    steps, or without, those able to start. In such a value's funnel nothing changes."""
    if restrict:
        restricted = [values for _, mask, _, values, _ in items if mask & restrict]
    else:
        first = (1 << spec.n_steps) - 1 if spec.order == "unordered" else 1
        lo, hi = spec.from_us, spec.to_us
        restricted = [values for t, mask, _, values, _ in items if mask & first and lo <= t < hi]
    if not restricted:
        return frozenset()
    return restricted[0].intersection(*restricted[1:])


def breakdown_outcomes(
    items: Sequence[StreamItem], spec: ModeSpec, outcome: UserOutcome
) -> Iterator[tuple[str, UserOutcome]]:
    """The user's outcome in each breakdown value's funnel they count in, by the spec's
    breakdown attribution (``outcome``: their whole funnel's, of a level above 0)."""
    full = (1 << spec.n_steps) - 1
    attribution = spec.attribution
    restrict, least = 0, 1  # the steps restricted to the value; the level it needs
    if attribution == "all_steps":
        restrict = full
    elif attribution == "step":
        restrict, least = 1 << spec.attribution_step, spec.attribution_step + 1
    elif attribution == "last_step":
        restrict, least = 1 << (outcome.level - 1), outcome.level
    if spec.order == "unordered":
        bits = full
    else:
        bits = restrict if attribution in ("step", "last_step") else 1
    shared = _shared_values(items, spec, restrict)
    for value in _candidate_values(items, spec, bits):
        # A value every restricted item has: its funnel is the user's whole funnel.
        found = outcome if value in shared else evaluate_user(items, spec, value, restrict)
        if found.level >= least:
            yield value, found


class ModeAccumulator:
    """Users' outcomes → step counts (and breakdowns), first conversions, reached steps."""

    def __init__(self, spec: ModeSpec, *, breakdown: bool = False, levels: bool = False) -> None:
        self.spec = spec
        self.breakdown = breakdown
        self._overall = ModeTally(spec.n_steps, spec.optional)
        self._by_value: dict[str, ModeTally] = {}
        self.conversions: list[int] = []  # first-conversion times, one per converted user
        #: User id → bit ``j`` for each step ``j`` the user counts at (with ``levels``).
        self.levels: dict[str, int] | None = {} if levels else None

    def add_user(self, user_id: str, items: Sequence[StreamItem]) -> None:
        spec = self.spec
        outcome = evaluate_user(items, spec)
        if self.levels is not None and outcome.level:
            self.levels[user_id] = reached_steps(outcome, spec)
        if not outcome.level:
            return
        self._overall.add(outcome)
        if outcome.conversion_us is not None:
            self.conversions.append(outcome.conversion_us)
        if self.breakdown:
            self._add_breakdown(items, outcome)

    def _add_breakdown(self, items: Sequence[StreamItem], outcome: UserOutcome) -> None:
        spec = self.spec
        for value, found in breakdown_outcomes(items, spec, outcome):
            tally = self._by_value.get(value)
            if tally is None:
                tally = self._by_value[value] = ModeTally(spec.n_steps, spec.optional)
            tally.add(found)

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
    unordered: any step; with held dimensions: having them) lies in it and in the range;
    they *convert* in it when the funnel whose range is the period (cut to the range) takes
    them to the last step, i.e. a full non-void chain starts in it. Periods are ascending
    and do not overlap.
    """

    def __init__(self, spec: ModeSpec, bounds: Sequence[tuple[int, int]]) -> None:
        self.spec = spec
        self.bounds = list(bounds)
        self._starts = [lo for lo, _ in self.bounds]
        self.entered = [0] * len(self.bounds)
        self.converted = [0] * len(self.bounds)
        self._first = (1 << spec.n_steps) - 1 if spec.order == "unordered" else 1

    def _periods(self, items: Sequence[StreamItem]) -> list[int]:
        lo, hi, first, hold = self.spec.from_us, self.spec.to_us, self._first, self.spec.hold
        found: set[int] = set()
        for t, mask, _, _, held in items:
            if mask & first and lo <= t < hi and (held or not hold):
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
