"""Brute-force reference for the funnel engine (exponential; for tiny test inputs only).

Written independently of ``services.attribution.funnels.engine``: it enumerates every
ordered selection of distinct events of a user and checks the funnel definition
literally.

Definition checked:

* a valid k-chain is a tuple of distinct events ``e1..ek`` where ``e_i`` matches step
  ``i`` (bit ``i-1`` of its mask), ``from <= e1.t < to``, timestamps are non-decreasing,
  ``ek.t - e1.t <= window`` and (breakdown funnel of value v) ``e1.value == v``;
* a user reaches level k when a valid k-chain exists; D = deepest level reached;
* the chosen chain is the valid D-chain minimising ``(-t1, t2, ..., tD)``;
* median for step k >= 2 = ``statistics.median`` over users reaching k of
  ``tk - t(k-1)`` in their chosen chain, divided by 1_000_000.

Output is plain data::

    {"steps": [(users, conv_from_start, conv_from_previous, median_s), ...],
     "breakdown": [(value, [(users, ...), ...]), ...]}
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Hashable, Iterable

Event = tuple[int, int, str | None]  # (t, mask, value)
StepRow = tuple[int, float | None, float | None, float | None]

_ANY = object()


def _valid_chains(
    events: list[Event],
    k: int,
    window: int,
    lo: int,
    hi: int,
    value: object,
) -> list[tuple[int, ...]]:
    """Timestamp vectors of all valid k-chains (permutations of distinct event indices)."""
    found = []
    for combo in itertools.permutations(range(len(events)), k):
        chain = [events[i] for i in combo]
        if not all(chain[i][1] >> i & 1 for i in range(k)):
            continue
        times = [e[0] for e in chain]
        if not lo <= times[0] < hi:
            continue
        if value is not _ANY and chain[0][2] != value:
            continue
        if any(times[i] > times[i + 1] for i in range(k - 1)):
            continue
        if times[-1] - times[0] > window:
            continue
        found.append(tuple(times))
    return found


def _chosen_chain(
    events: list[Event], n: int, window: int, lo: int, hi: int, value: object
) -> tuple[int, ...] | None:
    for k in range(n, 0, -1):
        chains = _valid_chains(events, k, window, lo, hi, value)
        if chains:
            return min(chains, key=lambda ts: (-ts[0], *ts[1:]))
    return None


def _stats(chains: list[tuple[int, ...]], n: int) -> list[StepRow]:
    users = [sum(1 for c in chains if len(c) >= k) for k in range(1, n + 1)]
    rows: list[StepRow] = []
    for k in range(1, n + 1):
        u = users[k - 1]
        if k == 1:
            rows.append((u, 1.0 if u > 0 else None, None, None))
            continue
        gaps = [c[k - 1] - c[k - 2] for c in chains if len(c) >= k]
        rows.append(
            (
                u,
                u / users[0] if users[0] > 0 else None,
                u / users[k - 2] if users[k - 2] > 0 else None,
                statistics.median(gaps) / 1_000_000 if gaps else None,
            )
        )
    return rows


def reference_funnel(
    rows: Iterable[tuple[Hashable, int, int, str | None]],
    n_steps: int,
    window_us: int,
    from_us: int,
    to_us: int,
    breakdown: bool = False,
) -> dict[str, object]:
    """Literal funnel evaluation; rows may come in any order (grouped by user here)."""
    per_user: dict[Hashable, list[Event]] = {}
    for user, t, mask, value in rows:
        per_user.setdefault(user, []).append((t, mask, value))

    overall: list[tuple[int, ...]] = []
    by_value: dict[str, list[tuple[int, ...]]] = {}
    for events in per_user.values():
        chain = _chosen_chain(events, n_steps, window_us, from_us, to_us, _ANY)
        if chain is not None:
            overall.append(chain)
        if breakdown:
            for value in sorted({e[2] for e in events if e[2] is not None}):
                vchain = _chosen_chain(events, n_steps, window_us, from_us, to_us, value)
                if vchain is not None:
                    by_value.setdefault(value, []).append(vchain)

    breakdown_rows = [(v, _stats(chains, n_steps)) for v, chains in by_value.items()]
    breakdown_rows.sort(key=lambda item: (-item[1][0][0], item[0]))
    return {"steps": _stats(overall, n_steps), "breakdown": breakdown_rows}
