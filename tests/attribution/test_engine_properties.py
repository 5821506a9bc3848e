"""Property tests: engine invariants, and agreement with the independent reference."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from random import Random

from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.attribution.credit import engine
from tests.attribution.reference_attribution import (
    REFERENCE_MINOR_UNITS,
    reference_attribute,
    reference_weights,
)

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)

T = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
DAY_S = 86_400
WEEK_S = 7 * DAY_S
EVENT_TYPES = ["click", "click", "view", "view_complete", "live_enter", "impression", "add_to_cart"]
PRODUCTS = ["p1", "p2", "p3"]
CONTENTS = ["c1", "c2", "c3"]
CURRENCIES = ["USD", "JPY", "KWD"]
# sampled_from favours its first elements: keep the product defaults first.
CLICK_WINDOWS = [WEEK_S, DAY_S, 2 * WEEK_S, 3_600, 60, 0]
VIEW_WINDOWS = [DAY_S, 3 * DAY_S, WEEK_S, 3_600, 60, 0]

micros = st.one_of(st.just(0), st.integers(0, 999_999))


def ages(rules: engine.Rules) -> st.SearchStrategy[int]:
    """Seconds before the order: mostly inside the windows, plus this scenario's window
    edges (+-1 s), whole half-lives (exact time-decay fractions) and after the order.
    Hypothesis favours first branches and elements, so in-window values come first."""
    edges = [
        w + d
        for w in (rules.click_window_seconds, rules.view_window_seconds, WEEK_S, 2 * WEEK_S)
        for d in (0, 1, -1)
    ]
    return st.one_of(
        st.integers(0, max(rules.click_window_seconds, 1)),
        st.integers(0, max(rules.view_window_seconds, 1)),
        st.sampled_from([*edges, 0, -1, -3_600]),
        st.integers(-600, 15 * DAY_S),
    )


@dataclass(frozen=True)
class Scenario:
    lines: list[engine.Line]
    touches: list[engine.Touch]
    rules: engine.Rules
    model: engine.Model
    currency: str
    links: dict[str, frozenset[str]]


@st.composite
def touch_lists(draw: st.DrawFn, rules: engine.Rules, max_size: int = 12) -> list[engine.Touch]:
    # Hypothesis favours tiny sizes (and first elements); make most buyers busy.
    busy = draw(st.sampled_from([True, True, False]))
    n = draw(st.integers(4, max_size) if busy else st.integers(0, 3))
    # Ids are a shuffled range so input order, time order and id order all disagree;
    # few distinct ages make equal timestamps (tie-breaking by event id) common.
    numbers = draw(st.permutations(range(n)))
    pool = draw(st.lists(ages(rules), min_size=1, max_size=4))
    touches = []
    for number in numbers:
        age = timedelta(seconds=draw(st.sampled_from(pool)), microseconds=-draw(micros))
        touches.append(
            engine.Touch(
                event_id=f"e{number:02d}",
                type=draw(st.sampled_from(EVENT_TYPES)),
                occurred_at=T - age,
                content_id=draw(st.sampled_from([*CONTENTS, None])),
                ad_id=draw(st.sampled_from(["ad1", None])),
                product_id=draw(st.sampled_from([*PRODUCTS, None])),
            )
        )
    return touches


@st.composite
def revenues(draw: st.DrawFn, currency: str) -> Decimal:
    places = REFERENCE_MINOR_UNITS[currency]
    if draw(st.integers(0, 9)) == 0:
        places += 1  # more decimals than the currency: the last credit absorbs them
    units = draw(st.one_of(st.sampled_from([0, 1, 3, 5, 10]), st.integers(0, 10**9)))
    return Decimal(units).scaleb(-places)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    currency = draw(st.sampled_from(CURRENCIES))
    lines = [
        engine.Line(draw(st.sampled_from(PRODUCTS)), draw(revenues(currency)))
        for _ in range(draw(st.integers(0, 4)))
    ]
    links = draw(
        st.dictionaries(
            st.sampled_from(CONTENTS),
            st.frozensets(st.sampled_from(PRODUCTS), max_size=3),
        )
    )
    rules = engine.Rules(
        click_window_seconds=draw(st.sampled_from(CLICK_WINDOWS)),
        view_window_seconds=draw(st.sampled_from(VIEW_WINDOWS)),
        match=draw(st.sampled_from(["product", "product", "any"])),
    )
    model: engine.Model = draw(st.sampled_from(engine.MODELS))
    return Scenario(lines, draw(touch_lists(rules)), rules, model, currency, links)


def run(s: Scenario, touches: list[engine.Touch] | None = None) -> list[engine.Credit]:
    return engine.attribute(
        order_time=T,
        lines=s.lines,
        touches=s.touches if touches is None else touches,
        rules=s.rules,
        model=s.model,
        currency=s.currency,
        content_products=s.links,
    )


def by_line(credits: list[engine.Credit]) -> dict[int, list[engine.Credit]]:
    grouped: dict[int, list[engine.Credit]] = {}
    for credit in credits:
        grouped.setdefault(credit.line_index, []).append(credit)
    return grouped


@PROPERTY_SETTINGS
@given(
    model=st.sampled_from(engine.MODELS),
    offsets=st.lists(
        st.one_of(st.sampled_from([0, WEEK_S, 2 * WEEK_S]), st.integers(0, 5 * WEEK_S))
    ),
)
def test_model_weights_are_exact_non_negative_and_sum_to_one(
    model: engine.Model, offsets: list[int]
) -> None:
    times = sorted(T - timedelta(seconds=o) for o in offsets)
    weights = engine.model_weights(model, times, T)
    assert len(weights) == len(times)
    assert all(w >= 0 for w in weights)
    if times:
        assert sum(weights) == 1  # exact: weights are Fractions
    # independent oracle; exact for rational models, ~1e-60 for time decay
    expected = reference_weights(model, times)
    assert all(abs(float(w - e)) <= 1e-9 for w, e in zip(weights, expected, strict=True))
    if model == "time_decay":  # newer touches never weigh less
        assert all(a <= b for a, b in pairwise(weights))
    else:
        assert weights == expected


@PROPERTY_SETTINGS
@given(scenarios())
def test_credits_sum_exactly_to_line_revenue(s: Scenario) -> None:
    credits = run(s)
    grouped = by_line(credits)
    for index, line_credits in grouped.items():
        line = s.lines[index]
        assert sum(c.amount for c in line_credits) == line.revenue
        assert all(c.weight >= 0 for c in line_credits)
        assert abs(math.fsum(c.weight for c in line_credits) - 1) <= 1e-9
        assert all(c.product_id == line.product_id for c in line_credits)
        # every credit but the last is a whole number of minor units
        places = REFERENCE_MINOR_UNITS[s.currency]
        for c in line_credits[:-1]:
            assert c.amount == c.amount.quantize(Decimal(1).scaleb(-places))
        # time order, ties by event id; a line mixes no clicks and views
        keys = [(c.occurred_at, c.event_id) for c in line_credits]
        assert keys == sorted(keys)
        assert len({c.touch for c in line_credits}) == 1
    # ordered by line
    assert [c.line_index for c in credits] == sorted(c.line_index for c in credits)
    for c in credits:
        window = s.rules.click_window_seconds if c.touch == "click" else s.rules.view_window_seconds
        assert T - timedelta(seconds=window) <= c.occurred_at <= T


@PROPERTY_SETTINGS
@given(scenarios())
def test_engine_agrees_with_reference(s: Scenario) -> None:
    credits = run(s)
    expected = reference_attribute(
        order_time=T,
        lines=s.lines,
        touches=s.touches,
        click_window_seconds=s.rules.click_window_seconds,
        view_window_seconds=s.rules.view_window_seconds,
        match=s.rules.match,
        model=s.model,
        currency=s.currency,
        content_products=s.links,
    )
    assert [(c.line_index, c.event_id, c.touch, c.amount) for c in credits] == [
        (e.line_index, e.event_id, e.kind, e.amount) for e in expected
    ]
    for credit, ref in zip(credits, expected, strict=True):
        assert abs(credit.weight - float(ref.weight)) <= 1e-9
    # visible with --hypothesis-show-statistics: is the generator exercising the engine?
    sizes = [len(v) for v in by_line(credits).values()]
    event("credited lines", len(sizes))
    event("largest credited line", max(sizes, default=0))
    event("lines", len(s.lines))
    event("touches", len(s.touches) // 4 * 4)


@PROPERTY_SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_input_order_and_non_touch_events_do_not_matter(s: Scenario, rnd: Random) -> None:
    noise = [
        engine.Touch(f"n{i}", kind, T - timedelta(hours=i), "c1", None, "p1")
        for i, kind in enumerate(["impression", "add_to_cart", "paid", "order"])
    ]
    shuffled = [*s.touches, *noise]
    rnd.shuffle(shuffled)
    assert run(s, shuffled) == run(s)


@PROPERTY_SETTINGS
@given(scenarios())
def test_eligible_touches_are_the_credited_touches(s: Scenario) -> None:
    grouped = by_line(run(s))
    for index, line in enumerate(s.lines):
        eligible = engine.eligible_touches(line, s.touches, T, s.rules, s.links)
        assert [t.event_id for t in eligible] == [c.event_id for c in grouped.get(index, [])]


@PROPERTY_SETTINGS
@given(scenarios())
def test_credited_fraction_is_the_attributed_share_of_the_order(s: Scenario) -> None:
    credits = run(s)
    shares = engine.order_shares(s.lines, credits)
    assert len(shares) == len(credits)
    assert all(x >= 0 for x in shares)
    attributed = {c.line_index for c in credits}
    order_revenue = sum((line.revenue for line in s.lines), Decimal(0))
    if order_revenue == 0:
        expected = Fraction(len(attributed), len(s.lines)) if s.lines else Fraction(0)
    else:
        expected = sum((Fraction(s.lines[i].revenue) for i in attributed), Fraction(0)) / Fraction(
            order_revenue
        )
    assert abs(engine.credited_fraction(s.lines, credits) - float(expected)) <= 1e-9
