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

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import groupby, pairwise

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
    if order == 1:
        return [(channel,) for channel, _ in groupby(path)]
    if len(path) <= order:
        windows = [path]
    else:
        windows = [path[i : i + order] for i in range(len(path) - order + 1)]
    return [window for window, _ in groupby(windows)]


_BEGIN, _CONVERTED, _LOST = object(), object(), object()  # never equal to a channel


def _transitions(
    paths: Mapping[tuple[Channel, ...], PathCounts], order: int
) -> tuple[dict[State, dict[State | str, int]], int]:
    """Transition counts between states (and the number of conversions).

    Counts are integers, so the order paths are visited in cannot change them. A path seen
    once (most are) is counted by ``Counter.update`` in C, and at order 1 on the channel
    strings themselves; the states are named only once per distinct transition.
    """
    moves: Counter[tuple[object, object]] = Counter()
    conversions = 0
    for path, counts in paths.items():
        total = counts.conversions + counts.non_conversions
        if total == 0 or not path:
            continue
        conversions += counts.conversions
        chain: list[object] = [_BEGIN]
        if order == 1:
            chain.extend([channel for channel, _ in groupby(path)])
        else:
            chain.extend(states_of(path, order))
        if total == 1:
            moves.update(pairwise(chain))
        else:
            for move in pairwise(chain):
                moves[move] += total
        if counts.conversions:
            moves[chain[-1], _CONVERTED] += counts.conversions
        if counts.non_conversions:
            moves[chain[-1], _LOST] += counts.non_conversions

    def named(key: object) -> State | str:
        if key is _BEGIN:
            return START
        if key is _CONVERTED:
            return "(conversion)"
        if key is _LOST:
            return "(null)"
        return (key,) if order == 1 else key  # type: ignore[return-value]  # a state key

    edges: dict[State, dict[State | str, int]] = defaultdict(dict)
    for (here, there), weight in moves.items():
        edges[named(here)][named(there)] = weight  # type: ignore[index]  # sources are states
    return edges, conversions


def markov(paths: Mapping[tuple[Channel, ...], PathCounts], order: int = 1) -> MarkovResult:
    if order not in (1, 2, 3):
        raise ValueError("order must be 1, 2 or 3")
    edges, conversions = _transitions(paths, order)
    channels = sorted(set[Channel]().union(*paths))
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
