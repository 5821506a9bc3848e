"""Markov and Shapley attribution against hand-solved chains and independent references."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.attribution.datadriven.markov import markov, states_of
from services.attribution.datadriven.paths import (
    PaidOrder,
    PathCounts,
    Paths,
    PathTouch,
    build_paths,
)
from services.attribution.datadriven.service import report, split_money
from services.attribution.datadriven.shapley import MAX_PLAYERS, coalition_of, shapley
from tests.attribution.reference_datadriven import markov_reference, shapley_reference


def counts(spec: dict[str, tuple[int, int]]) -> dict[tuple[str, ...], PathCounts]:
    return {
        tuple(path.split(">")) if path else (): PathCounts(conv, null, Decimal(100 * conv))
        for path, (conv, null) in spec.items()
    }


def test_the_textbook_example_gives_0_2_0_4_0_4() -> None:
    # C1 > C2 > C3 converts; C1 and C2 > C3 do not.
    result = markov(counts({"C1>C2>C3": (1, 0), "C1": (0, 1), "C2>C3": (0, 1)}))
    assert result.p_conversion == pytest.approx(1 / 3)
    assert result.removal_effects == pytest.approx({"C1": 0.5, "C2": 1.0, "C3": 1.0})
    assert result.shares == pytest.approx({"C1": 0.2, "C2": 0.4, "C3": 0.4})


def test_a_loop_solved_by_hand() -> None:
    # A > B > A converts, A does not: from A, 1/3 each to B, conversion, null; B returns to A.
    # x_A = 1/3 + x_B/3 and x_B = x_A, so P = 1/2; without B, P = 1/3: effect 1/3; A: 1.
    result = markov(counts({"A>B>A": (1, 0), "A": (0, 1)}))
    assert result.p_conversion == pytest.approx(0.5)
    assert result.removal_effects == pytest.approx({"A": 1.0, "B": 1 / 3})
    assert result.shares == pytest.approx({"A": 0.75, "B": 0.25})


def test_repeats_collapse_and_higher_orders_use_windows() -> None:
    assert states_of(("A", "A", "B"), 1) == [("A",), ("B",)]
    assert states_of(("A", "B", "C"), 2) == [("A", "B"), ("B", "C")]
    assert states_of(("A",), 3) == [("A",)]
    # Order 2: (A,B) -> (B,C) -> conversion, (A,B) -> null; each channel is indispensable.
    result = markov(counts({"A>B>C": (1, 0), "A>B": (0, 1)}), order=2)
    assert result.p_conversion == pytest.approx(0.5)
    assert result.shares == pytest.approx({"A": 1 / 3, "B": 1 / 3, "C": 1 / 3})


def test_no_conversion_gives_no_credit() -> None:
    result = markov(counts({"A>B": (0, 3)}))
    assert result.p_conversion == 0.0
    assert result.shares == {"A": 0.0, "B": 0.0}


random_paths = st.dictionaries(
    st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=5).map(">".join),
    st.tuples(st.integers(0, 4), st.integers(0, 4)).filter(lambda t: sum(t) > 0),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(random_paths, st.sampled_from([1, 2, 3]))
def test_markov_matches_the_exact_reference(spec: dict[str, tuple[int, int]], order: int) -> None:
    expected = markov_reference({tuple(p.split(">")): v for p, v in spec.items()}, order)
    result = markov(counts(spec), order)
    assert result.shares == pytest.approx({c: float(f) for c, f in expected.items()}, abs=1e-9)
    conversions = sum(c for c, _ in spec.values())
    if conversions:
        assert sum(result.shares.values()) == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(random_paths)
def test_shapley_matches_the_brute_force_over_orderings(spec: dict[str, tuple[int, int]]) -> None:
    expected = shapley_reference({tuple(p.split(">")): v for p, v in spec.items()})
    result = shapley(counts(spec))
    assert result.conversions == pytest.approx({c: float(f) for c, f in expected.items()})
    assert sum(result.conversions.values()) == pytest.approx(sum(c for c, _ in spec.values()))


def test_a_channel_never_on_a_converting_path_gets_nothing_under_shapley_only() -> None:
    # D is only ever on non-converting paths: Shapley gives it nothing. Markov credits what
    # leads into a converting state: start → A 3/5, → D 1/5, → B 1/5; D and B → A; A converts
    # 3/5, so P = 3/5; without D it is 4/5 · 3/5 = 12/25, a removal effect of 1/5.
    spec = {"A": (2, 1), "D>A": (0, 1), "B>A": (1, 0)}
    assert shapley(counts(spec)).conversions["D"] == 0.0
    same = markov(counts(spec))
    assert same.removal_effects["D"] == pytest.approx(0.2)
    assert same.shares["D"] > 0
    assert shapley(counts({"D>A": (0, 1), "A": (1, 0)})).conversions["D"] == 0.0


def test_a_coalition_keeps_its_most_recent_channels() -> None:
    path = tuple(f"c{i}" for i in range(MAX_PLAYERS + 5))
    kept = coalition_of(path)
    assert len(kept) == MAX_PLAYERS
    assert kept == frozenset(path[-MAX_PLAYERS:])


T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def test_paths_claim_the_window_and_leave_the_rest_as_one_non_converting_path() -> None:
    touches = [
        PathTouch("u1", at(1), "e1", "v1"),
        PathTouch("u1", at(30), "e2", "v2"),  # inside the 24 h window of the order at 40 h
        PathTouch("u1", at(39), "e3", None),  # no channel: left out
        PathTouch("u1", at(39), "e0", "v3"),  # same instant: ordered by event id
        PathTouch("u2", at(5), "e4", "v1"),
        PathTouch("u3", at(-30), "e5", "v9"),  # before the range: no path of its own
    ]
    orders = [PaidOrder("o1", "u1", at(40), Decimal("80.00"))]
    paths = build_paths(
        touches, orders, range_from=T0, range_to=at(72), window=dt.timedelta(hours=24)
    )
    assert {p: (c.conversions, c.non_conversions) for p, c in paths.counts.items()} == {
        ("v2", "v3"): (1, 0),
        ("v1",): (0, 2),
    }
    assert paths.counts[("v2", "v3")].revenue == Decimal("80.00")
    assert [(j.order_id, j.channels) for j in paths.journeys] == [("o1", ("v2", "v3"))]


@pytest.mark.parametrize("seed", range(5))
def test_money_splits_sum_exactly_even_with_negative_fractions(seed: int) -> None:
    rng = random.Random(seed)
    fractions = {f"c{i}": rng.uniform(-0.3, 1.0) for i in range(rng.randint(1, 7))}
    total = Decimal(rng.randint(1, 10**7)) / 100
    parts = split_money(total, fractions, "USD")
    assert sum(parts.values()) == total


def test_the_report_splits_revenue_by_the_model() -> None:
    spec = counts({"C1>C2>C3": (1, 0), "C1": (0, 1), "C2>C3": (0, 1)})
    out = report(Paths(spec), method="markov", dimension="content", order=1, currency="CNY")
    assert [(c.channel, c.conversions, c.revenue) for c in out.channels] == [
        ("C2", 0.4, Decimal("40.00")),
        ("C3", 0.4, Decimal("40.00")),
        ("C1", 0.2, Decimal("20.00")),
    ]
    assert (out.converting_paths, out.non_converting_paths) == (1, 2)
    assert out.top_paths[0].path == "C1 > C2 > C3"
