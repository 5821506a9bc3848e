"""Markov-chain attribution by removal effect, solved as a linear system (no simulation).

States are the channels (order k: sliding windows of k consecutive channels; a path shorter
than k is one state); consecutive identical states collapse. Transitions run from
``(start)`` through the states to ``(conversion)`` or ``(null)``, weighted by how many paths
take them. P(conversion) is the probability of absorption in ``(conversion)`` from
``(start)``. Removing channel c sends every transition into a state containing c to
``(null)``; its removal effect is 1 − P(conversion without c) / P(conversion), and the
channels share the conversions (and the revenue) in proportion to their removal effects.

Order 1 needs one matrix inverse for every channel at once: the chain converts without
visiting c exactly when it does not hit c or hits c and then fails, so
P(without c) = P − h(c) · x(c), with x(c) = P(conversion from c) and h(c) = N[start, c] /
N[c, c] the probability of ever hitting c (N = (I − Q)⁻¹, the fundamental matrix). Higher
orders solve one reduced system per channel.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from services.attribution.datadriven.paths import Channel, PathCounts

State = tuple[Channel, ...]
START: State = ("(start)",)
MAX_STATES = 3000  # a dense system beyond this is too slow to answer on request


class TooManyStates(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class MarkovResult:
    p_conversion: float
    removal_effects: dict[Channel, float]
    # Each channel's share of the conversions: removal effect / sum of removal effects.
    shares: dict[Channel, float]


def states_of(path: tuple[Channel, ...], order: int) -> list[State]:
    """The path's states: windows of ``order`` channels, consecutive repeats collapsed."""
    if len(path) <= order:
        windows = [path]
    else:
        windows = [path[i : i + order] for i in range(len(path) - order + 1)]
    states: list[State] = []
    for window in windows:
        if not states or states[-1] != window:
            states.append(window)
    return states


def markov(paths: Mapping[tuple[Channel, ...], PathCounts], order: int = 1) -> MarkovResult:
    if order not in (1, 2, 3):
        raise ValueError("order must be 1, 2 or 3")
    edges: dict[State, dict[State | str, int]] = defaultdict(lambda: defaultdict(int))
    conversions = 0
    for path, counts in sorted(paths.items()):
        total = counts.conversions + counts.non_conversions
        if total == 0 or not path:
            continue
        conversions += counts.conversions
        chain = [START, *states_of(path, order)]
        for here, there in pairwise(chain):
            edges[here][there] += total
        if counts.conversions:
            edges[chain[-1]]["(conversion)"] += counts.conversions
        if counts.non_conversions:
            edges[chain[-1]]["(null)"] += counts.non_conversions
    channels = sorted({c for path in paths for c in path})
    if conversions == 0:
        zero = dict.fromkeys(channels, 0.0)
        return MarkovResult(0.0, zero, dict(zero))

    states = [START, *sorted(s for s in edges if s != START)]
    if len(states) > MAX_STATES:
        raise TooManyStates(
            f"{len(states)} Markov states exceed the {MAX_STATES} answered on request; use "
            "order 1, a coarser channel (ad, platform or format) or a shorter range."
        )
    index = {state: i for i, state in enumerate(states)}
    n = len(states)
    q = np.zeros((n, n))
    r = np.zeros(n)
    for state, targets in edges.items():
        row = index[state]
        out = sum(targets.values())
        for target, weight in targets.items():
            if target == "(conversion)":
                r[row] += weight / out
            elif isinstance(target, tuple):
                q[row, index[target]] += weight / out
    system = np.eye(n) - q
    x = np.linalg.solve(system, r)
    p = float(x[0])

    without: dict[Channel, float] = {}
    if order == 1:
        fundamental = np.linalg.inv(system)
        for channel in channels:
            c = index.get((channel,))
            if c is None:
                without[channel] = p
                continue
            hit = fundamental[0, c] / fundamental[c, c]
            without[channel] = p - float(hit * x[c])
    else:
        for channel in channels:
            removed = [i for i, s in enumerate(states) if channel in s]
            reduced, rhs = system.copy(), r.copy()
            reduced[removed, :] = 0.0
            reduced[removed, removed] = 1.0
            rhs[removed] = 0.0
            without[channel] = float(np.linalg.solve(reduced, rhs)[0])

    effects = {c: max(0.0, 1.0 - without[c] / p) for c in channels}
    total_effect = sum(effects.values())
    shares = {c: (e / total_effect if total_effect > 0 else 0.0) for c, e in effects.items()}
    return MarkovResult(p, effects, shares)
