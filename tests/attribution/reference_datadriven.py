"""Independent references for the data-driven models, written from their definitions.

Markov: the chain is built afresh and every absorption probability is solved in exact
fractions by Gauss–Jordan elimination, one system per removed channel (no shortcut).
Shapley: the average marginal contribution over every ordering of the players.
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction
from itertools import pairwise, permutations


def _windows(path: tuple[str, ...], order: int) -> list[tuple[str, ...]]:
    raw = (
        [path]
        if len(path) <= order
        else [path[i : i + order] for i in range(len(path) - order + 1)]
    )
    out: list[tuple[str, ...]] = []
    for w in raw:
        if not out or out[-1] != w:
            out.append(w)
    return out


def _absorb(edges: dict, removed: set) -> Fraction:
    states = sorted(
        {s for s in edges if s != "S"}
        | {t for ts in edges.values() for t in ts if isinstance(t, tuple)}
    )
    unknowns = ["S", *states]
    idx = {s: i for i, s in enumerate(unknowns)}
    n = len(unknowns)
    a = [[Fraction(0)] * (n + 1) for _ in range(n)]
    for s in unknowns:
        i = idx[s]
        a[i][i] = Fraction(1)
        if s in removed:
            continue  # x_s = 0
        targets = edges.get(s, {})
        out = sum(targets.values())
        for t, w in targets.items():
            p = Fraction(w, out)
            if t == "conv":
                a[i][n] += p
            elif t != "null":
                a[i][idx[t]] -= p
    for col in range(n):
        pivot = next(r for r in range(col, n) if a[r][col] != 0)
        a[col], a[pivot] = a[pivot], a[col]
        inv = 1 / a[col][col]
        a[col] = [v * inv for v in a[col]]
        for r in range(n):
            if r != col and a[r][col] != 0:
                f = a[r][col]
                a[r] = [v - f * pv for v, pv in zip(a[r], a[col], strict=True)]
    return a[0][n]


def markov_reference(
    paths: dict[tuple[str, ...], tuple[int, int]], order: int
) -> dict[str, Fraction]:
    """Channel -> share of the conversions (removal effects normalised), exact."""
    edges: dict = defaultdict(lambda: defaultdict(int))
    for path, (conv, null) in paths.items():
        chain = ["S", *_windows(path, order)]
        for a, b in pairwise(chain):
            edges[a][b] += conv + null
        if conv:
            edges[chain[-1]]["conv"] += conv
        if null:
            edges[chain[-1]]["null"] += null
    p = _absorb(edges, set())
    channels = sorted({c for path in paths for c in path})
    if p == 0:
        return dict.fromkeys(channels, Fraction(0))
    states = {s for s in edges if s != "S"}
    effects = {}
    for c in channels:
        removed = {s for s in states if c in s}
        effects[c] = max(Fraction(0), 1 - _absorb(edges, removed) / p)
    total = sum(effects.values())
    return {c: (e / total if total else Fraction(0)) for c, e in effects.items()}


def shapley_reference(paths: dict[tuple[str, ...], tuple[int, int]]) -> dict[str, Fraction]:
    """Channel -> conversions credited, by averaging marginal contributions over orderings."""
    conv: dict[frozenset, int] = defaultdict(int)
    seen: dict[frozenset, int] = defaultdict(int)
    for path, (c, n) in paths.items():
        key = frozenset(path)
        conv[key] += c
        seen[key] += c + n
    v = {k: Fraction(conv[k], seen[k]) for k in seen if seen[k]}
    credit: dict[str, Fraction] = defaultdict(Fraction)
    for coalition, conversions in conv.items():
        if not conversions:
            continue
        players = sorted(coalition)
        phi = dict.fromkeys(players, Fraction(0))
        orderings = list(permutations(players))
        for ordering in orderings:
            so_far: frozenset = frozenset()
            for player in ordering:
                phi[player] += v.get(so_far | {player}, Fraction(0)) - v.get(so_far, Fraction(0))
                so_far = so_far | {player}
        total = sum(phi.values())
        for player in players:
            credit[player] += phi[player] / total * conversions
    for path in paths:
        for c in path:
            credit.setdefault(c, Fraction(0))
    return dict(credit)
