"""Shapley-value attribution over channel coalitions, computed exactly.

A path's coalition is its set of distinct channels; v(T) is the conversion rate of the paths
whose set is exactly T (0 when there is none, and v(∅) = 0). Inside each converting
coalition C the channels of C get their exact Shapley values of the game v restricted to the
subsets of C; those are scaled to C's conversions (and revenue) and summed over coalitions.
A channel never on a converting path gets nothing.

Exact Shapley is 2^|C| subsets: a coalition keeps its ``MAX_PLAYERS`` most recent distinct
channels (the older ones drop out of that path's set), the rule the README documents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from itertools import combinations
from math import factorial

from services.attribution.datadriven.paths import Channel, PathCounts

MAX_PLAYERS = 15

Coalition = frozenset[Channel]


@dataclass(frozen=True, slots=True)
class ShapleyResult:
    # Per channel: its share of the conversions, summed over coalitions (sums to conversions).
    conversions: dict[Channel, float]
    # Per converting coalition, each member's fraction of that coalition's value (sums to 1).
    fractions: dict[Coalition, dict[Channel, float]]
    revenue_by_coalition: dict[Coalition, Decimal]


def coalition_of(path: tuple[Channel, ...]) -> Coalition:
    """The path's distinct channels, at most ``MAX_PLAYERS``, the most recent kept."""
    distinct = frozenset(path)
    if len(distinct) <= MAX_PLAYERS:
        return distinct
    kept: list[Channel] = []
    for channel in reversed(path):
        if channel not in kept:
            kept.append(channel)
            if len(kept) == MAX_PLAYERS:
                break
    return frozenset(kept)


def shapley_values(players: Coalition, value: Mapping[Coalition, float]) -> dict[Channel, float]:
    """Exact Shapley values of the game ``value`` (missing coalitions are worth 0).

    phi_i = sum over T ⊆ C∖{i} of w(|T|)·(v(T ∪ {i}) − v(T)), w(k) = k!(n−k−1)!/n!. Each
    worth v(S) enters once per player: +w(|S|−1)·v(S) for the members of S and −w(|S|)·v(S)
    for the others, so only the subsets with a worth need visiting — the observed ones, found
    by enumerating the subsets of C or by scanning the observed coalitions, whichever is
    fewer.
    """
    members = sorted(players)
    n = len(members)
    weights = [factorial(k) * factorial(n - k - 1) / factorial(n) for k in range(n)]
    if 2**n <= len(value):
        worths = [
            (subset, value[subset])
            for size in range(1, n + 1)
            for combo in combinations(members, size)
            if (subset := frozenset(combo)) in value
        ]
    else:
        worths = [(s, v) for s, v in value.items() if s and s <= players]
    result = dict.fromkeys(members, 0.0)
    for subset, worth in sorted(worths, key=lambda item: sorted(item[0])):
        if not worth:
            continue
        inside = weights[len(subset) - 1] * worth
        outside = weights[len(subset)] * worth if len(subset) < n else 0.0
        for player in members:
            result[player] += inside if player in subset else -outside
    return result


def shapley(paths: Mapping[tuple[Channel, ...], PathCounts]) -> ShapleyResult:
    conversions: dict[Coalition, int] = defaultdict(int)
    seen: dict[Coalition, int] = defaultdict(int)
    revenue: dict[Coalition, Decimal] = defaultdict(Decimal)
    for path, counts in paths.items():
        if not path:
            continue
        coalition = coalition_of(path)
        conversions[coalition] += counts.conversions
        seen[coalition] += counts.conversions + counts.non_conversions
        revenue[coalition] += counts.revenue
    value = {c: conversions[c] / seen[c] for c in seen if seen[c]}
    credit: dict[Channel, float] = defaultdict(float)
    fractions: dict[Coalition, dict[Channel, float]] = {}
    for coalition in sorted((c for c, n in conversions.items() if n), key=sorted):
        phi = shapley_values(coalition, value)
        total = sum(phi.values())  # = v(coalition) > 0 by efficiency
        fractions[coalition] = {c: phi[c] / total for c in sorted(phi)}
        for channel, fraction in fractions[coalition].items():
            credit[channel] += fraction * conversions[coalition]
    for channel in set().union(*paths) - credit.keys():
        credit[channel] = 0.0
    return ShapleyResult(
        dict(sorted(credit.items())),
        fractions,
        {c: revenue[c] for c in fractions},
    )
