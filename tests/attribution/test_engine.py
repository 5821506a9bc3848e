"""Hand-computed cases for the pure attribution engine (expected numbers written by hand)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest

from services.attribution.credit.engine import (
    MODELS,
    Credit,
    Line,
    Model,
    Rules,
    Touch,
    attribute,
    credited_fraction,
    eligible_touches,
    model_weights,
    order_shares,
    touch_kind,
)
from services.attribution.credit.money import allocate, minor_units, quantize_money

T = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)
D = Decimal


def touch(
    event_id: str,
    type_: str = "click",
    ago: timedelta = HOUR,
    *,
    product: str | None = "p1",
    content: str | None = None,
    ad: str | None = None,
) -> Touch:
    return Touch(
        event_id=event_id,
        type=type_,
        occurred_at=T - ago,
        content_id=content,
        ad_id=ad,
        product_id=product,
    )


def run(
    touches: Sequence[Touch],
    lines: Sequence[Line] = (Line("p1", D("100.00")),),
    *,
    model: Model = "last_touch",
    rules: Rules = Rules(),
    currency: str = "USD",
    links: Mapping[str, frozenset[str]] | None = None,
) -> list[Credit]:
    return attribute(
        order_time=T,
        lines=lines,
        touches=touches,
        rules=rules,
        model=model,
        currency=currency,
        content_products=links or {},
    )


def amounts(credits: Sequence[Credit]) -> list[Decimal]:
    return [c.amount for c in credits]


def ids(credits: Sequence[Credit]) -> list[str]:
    return [c.event_id for c in credits]


def weights(credits: Sequence[Credit]) -> list[float]:
    return [c.weight for c in credits]


THREE_CLICKS = [touch("a", ago=3 * HOUR), touch("b", ago=2 * HOUR), touch("c", ago=HOUR)]


# ------------------------------------------------------------------------------ models


def test_last_touch_gives_everything_to_the_last_touch() -> None:
    credits = run(THREE_CLICKS, model="last_touch")
    assert ids(credits) == ["a", "b", "c"]
    assert amounts(credits) == [D("0.00"), D("0.00"), D("100.00")]
    assert weights(credits) == [0.0, 0.0, 1.0]


def test_first_touch_gives_everything_to_the_first_touch() -> None:
    credits = run(THREE_CLICKS, model="first_touch")
    assert amounts(credits) == [D("100.00"), D("0.00"), D("0.00")]
    assert weights(credits) == [1.0, 0.0, 0.0]


def test_linear_three_touches_last_gets_the_rounding_remainder() -> None:
    credits = run(THREE_CLICKS, model="linear")
    assert amounts(credits) == [D("33.33"), D("33.33"), D("33.34")]
    assert weights(credits) == pytest.approx([1 / 3] * 3)


def test_linear_remainder_can_make_the_last_share_smaller() -> None:
    # 0.05 / 3 = 0.01666.. -> 0.02, 0.02, and the last gets 0.05 - 0.04 = 0.01.
    credits = run(THREE_CLICKS, [Line("p1", D("0.05"))], model="linear")
    assert amounts(credits) == [D("0.02"), D("0.02"), D("0.01")]


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, ["100.00"]),
        (2, ["50.00", "50.00"]),
        (3, ["40.00", "20.00", "40.00"]),
        (4, ["40.00", "10.00", "10.00", "40.00"]),
        # middles 20/3 = 6.666.. -> 6.67 each; the last gets 100 - 40 - 20.01 = 39.99
        (5, ["40.00", "6.67", "6.67", "6.67", "39.99"]),
    ],
)
def test_position_based(n: int, expected: list[str]) -> None:
    touches = [touch(f"e{i}", ago=(n - i) * HOUR) for i in range(n)]
    credits = run(touches, model="position_based")
    assert amounts(credits) == [D(x) for x in expected]
    assert sum(amounts(credits)) == D("100.00")


def test_position_based_weights_are_exact_fractions() -> None:
    times = [T - (5 - i) * HOUR for i in range(5)]
    assert model_weights("position_based", times, T) == [
        Fraction(2, 5),
        Fraction(1, 15),
        Fraction(1, 15),
        Fraction(1, 15),
        Fraction(2, 5),
    ]


def test_time_decay_one_half_life_apart_is_one_third_two_thirds() -> None:
    # 2^-1 : 2^0 = 1 : 2 -> 1/3, 2/3 of 90.00
    touches = [touch("old", ago=7 * DAY), touch("new", ago=timedelta(0))]
    credits = run(touches, [Line("p1", D("90.00"))], model="time_decay")
    assert amounts(credits) == [D("30.00"), D("60.00")]
    assert weights(credits) == pytest.approx([1 / 3, 2 / 3], abs=1e-12)
    assert model_weights("time_decay", [T - 7 * DAY, T], T) == [Fraction(1, 3), Fraction(2, 3)]


def test_time_decay_three_touches_over_two_half_lives() -> None:
    # ages 14d, 7d, 0 -> 1/4 : 1/2 : 1 = 1/7, 2/7, 4/7 of 70.00
    touches = [touch("a", ago=14 * DAY), touch("b", ago=7 * DAY), touch("c", ago=timedelta(0))]
    rules = Rules(click_window_seconds=14 * 86_400)
    credits = run(touches, [Line("p1", D("70.00"))], model="time_decay", rules=rules)
    assert amounts(credits) == [D("10.00"), D("20.00"), D("40.00")]


def test_time_decay_half_a_half_life_apart() -> None:
    # 2^-0.5 / (1 + 2^-0.5) = 1 / (sqrt2 + 1) = sqrt2 - 1 = 0.41421..; the rest 0.58578..
    touches = [touch("old", ago=timedelta(days=3.5) + DAY), touch("new", ago=DAY)]
    credits = run(touches, model="time_decay")
    assert weights(credits) == pytest.approx([2**0.5 - 1, 2 - 2**0.5], abs=1e-12)
    assert amounts(credits) == [D("41.42"), D("58.58")]


def test_time_decay_does_not_underflow_with_huge_windows() -> None:
    # 2^-10000 underflows a float; weights are measured from the newest touch instead.
    far = 70_000 * DAY
    rules = Rules(click_window_seconds=int(far.total_seconds()) + 86_400)
    credits = run([touch("old", ago=far), touch("new")], model="time_decay", rules=rules)
    assert amounts(credits) == [D("0.00"), D("100.00")]
    assert weights(credits) == [0.0, 1.0]


def test_model_weights_sum_to_exactly_one_and_empty_is_empty() -> None:
    times = [T - 3 * HOUR, T - 2 * HOUR, T - HOUR]
    for model in MODELS:
        assert sum(model_weights(model, times, T)) == 1
        assert model_weights(model, [], T) == []
    assert model_weights("linear", times, T) == [Fraction(1, 3)] * 3


def test_model_weights_rejects_unsorted_times_and_unknown_models() -> None:
    with pytest.raises(ValueError, match="sorted"):
        model_weights("linear", [T, T - HOUR], T)
    with pytest.raises(ValueError, match="last_touch, first_touch, linear"):
        model_weights("u_shaped", [T], T)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ windows


@pytest.mark.parametrize(
    ("type_", "ago", "counts"),
    [
        ("click", 7 * DAY, True),  # exactly at the click window start: inclusive
        ("click", 7 * DAY + SECOND, False),
        ("click", timedelta(0), True),  # exactly at the order time: inclusive
        ("click", -SECOND, False),  # after the order
        ("view", DAY, True),  # exactly at the view window start: inclusive
        ("view", DAY + SECOND, False),
        ("view", timedelta(0), True),
        ("view", -SECOND, False),
        ("view", 2 * DAY, False),  # inside the click window, but views have 24h
        ("view_complete", DAY, True),
        ("live_enter", DAY + SECOND, False),
    ],
)
def test_window_edges(type_: str, ago: timedelta, counts: bool) -> None:
    credits = run([touch("e", type_, ago)])
    assert ids(credits) == (["e"] if counts else [])


def test_custom_windows() -> None:
    rules = Rules(click_window_seconds=3600, view_window_seconds=60)
    touches = [
        touch("click-in", "click", HOUR),
        touch("click-out", "click", HOUR + SECOND),
    ]
    assert ids(run(touches, rules=rules)) == ["click-in"]
    views = [touch("view-in", "view", 60 * SECOND), touch("view-out", "view", 61 * SECOND)]
    assert ids(run(views, rules=rules)) == ["view-in"]


def test_windows_compare_instants_across_timezones() -> None:
    tokyo = timezone(timedelta(hours=9))
    edge = Touch("e", "view", (T - DAY).astimezone(tokyo), None, None, "p1")
    assert ids(run([edge])) == ["e"]


def test_non_touch_event_types_are_ignored() -> None:
    touches = [
        touch("imp", "impression"),
        touch("cart", "add_to_cart"),
        touch("paid", "paid"),
        touch("v", "view_complete", 2 * HOUR),
        touch("l", "live_enter", 3 * HOUR),
    ]
    credits = run(touches, model="linear")
    assert ids(credits) == ["l", "v"]
    assert {c.touch for c in credits} == {"view"}
    assert touch_kind("click") == "click"
    assert touch_kind("view") == "view"
    assert touch_kind("order") is None


# ------------------------------------------------------------------------------ clicks beat views


def test_click_beats_views_even_if_views_are_later() -> None:
    touches = [touch("click", "click", 5 * HOUR), touch("view", "view", HOUR)]
    credits = run(touches, model="linear")
    assert ids(credits) == ["click"]
    assert amounts(credits) == [D("100.00")]
    assert credits[0].touch == "click"


def test_views_count_when_the_only_click_is_outside_its_window() -> None:
    touches = [
        touch("old-click", "click", 8 * DAY),
        touch("v1", "view", 2 * HOUR),
        touch("v2", "view", HOUR),
    ]
    credits = run(touches, model="linear")
    assert ids(credits) == ["v1", "v2"]
    assert amounts(credits) == [D("50.00"), D("50.00")]


def test_clicks_beat_views_per_line() -> None:
    touches = [
        touch("click-p2", "click", 3 * HOUR, product="p2"),
        touch("view-p1", "view", 2 * HOUR, product="p1"),
        touch("view-p2", "view", HOUR, product="p2"),
    ]
    lines = [Line("p1", D("10.00")), Line("p2", D("20.00"))]
    credits = run(touches, lines, model="linear")
    assert [(c.line_index, c.event_id) for c in credits] == [(0, "view-p1"), (1, "click-p2")]


# ------------------------------------------------------------------------------ matching


def test_product_match_ignores_other_products() -> None:
    assert run([touch("e", product="p2")]) == []  # organic: no credit at all


def test_product_match_via_content_link() -> None:
    links = {"video-1": frozenset({"p1", "p3"})}
    touches = [touch("linked", content="video-1", product=None), touch("unlinked", product=None)]
    credits = run(touches, links=links, model="linear")
    assert ids(credits) == ["linked"]
    assert credits[0].content_id == "video-1"


def test_touch_matching_both_directly_and_by_link_is_credited_once() -> None:
    links = {"video-1": frozenset({"p1", "p2"})}
    credits = run(
        [touch("e", content="video-1", product="p1")],
        [Line("p1", D("10.00")), Line("p2", D("5.00"))],
        links=links,
    )
    assert [(c.line_index, c.event_id, c.amount) for c in credits] == [
        (0, "e", D("10.00")),
        (1, "e", D("5.00")),
    ]


def test_any_match_credits_every_touch_to_every_line() -> None:
    touches = [touch("x", product="p9", ago=2 * HOUR), touch("y", product=None)]
    lines = [Line("p1", D("10.00")), Line("p2", D("30.00"))]
    credits = run(touches, lines, model="linear", rules=Rules(match="any"))
    assert [(c.line_index, c.event_id, c.amount) for c in credits] == [
        (0, "x", D("5.00")),
        (0, "y", D("5.00")),
        (1, "x", D("15.00")),
        (1, "y", D("15.00")),
    ]


def test_multi_line_order_split_across_two_contents() -> None:
    links = {"short-1": frozenset({"p1"}), "live-7": frozenset({"p2"})}
    touches = [
        touch("v-short", "view_complete", 5 * HOUR, product=None, content="short-1"),
        touch("c-short", "click", 4 * HOUR, product=None, content="short-1", ad="ad-1"),
        touch("enter-live", "live_enter", 3 * HOUR, product=None, content="live-7"),
        touch("v-live", "view", 2 * HOUR, product=None, content="live-7"),
    ]
    lines = [Line("p1", D("100.00")), Line("p2", D("50.00")), Line("p3", D("50.00"))]
    credits = run(touches, lines, model="linear", links=links)
    assert [(c.line_index, c.content_id, c.ad_id, c.touch, c.amount) for c in credits] == [
        (0, "short-1", "ad-1", "click", D("100.00")),  # its click beats the view
        (1, "live-7", None, "view", D("25.00")),
        (1, "live-7", None, "view", D("25.00")),
    ]
    # orders metric: line 0 is 100/200 of the order, line 1 is 50/200 split in two
    assert order_shares(lines, credits) == pytest.approx([0.5, 0.125, 0.125])
    assert credited_fraction(lines, credits) == pytest.approx(0.75)  # p3 is organic


def test_same_product_on_two_lines() -> None:
    lines = [Line("p1", D("30.00")), Line("p1", D("10.00"))]
    credits = run([touch("a", ago=2 * HOUR), touch("b")], lines, model="first_touch")
    assert [(c.line_index, c.event_id, c.amount) for c in credits] == [
        (0, "a", D("30.00")),
        (0, "b", D("0.00")),
        (1, "a", D("10.00")),
        (1, "b", D("0.00")),
    ]
    assert credited_fraction(lines, credits) == pytest.approx(1.0)


def test_eligible_touches_for_a_single_line() -> None:
    touches = [
        touch("late", "click", -SECOND),
        touch("v", "view", HOUR),
        touch("c2", "click", 2 * HOUR),
        touch("c1", "click", 2 * HOUR),
        touch("other", "click", HOUR, product="p2"),
    ]
    result = eligible_touches(Line("p1", D("1.00")), touches, T, Rules(), {})
    assert [t.event_id for t in result] == ["c1", "c2"]
    result = eligible_touches(Line("p1", D("1.00")), touches, T, Rules(match="any"), {})
    assert [t.event_id for t in result] == ["c1", "c2", "other"]


# ------------------------------------------------------------------------------ ordering


def test_equal_timestamps_are_ordered_by_event_id() -> None:
    touches = [touch("e2", ago=HOUR), touch("e1", ago=HOUR), touch("e0", ago=2 * HOUR)]
    assert ids(run(touches, model="last_touch")) == ["e0", "e1", "e2"]
    assert amounts(run(touches, model="last_touch")) == [D("0.00"), D("0.00"), D("100.00")]
    first = run(touches[:2], model="first_touch")
    assert [(c.event_id, c.amount) for c in first] == [("e1", D("100.00")), ("e2", D("0.00"))]


def test_credits_are_ordered_by_line_then_time_regardless_of_input_order() -> None:
    touches = [
        touch("p2-late", product="p2", ago=HOUR),
        touch("p1-late", product="p1", ago=HOUR),
        touch("p2-early", product="p2", ago=3 * HOUR),
        touch("p1-early", product="p1", ago=3 * HOUR),
    ]
    lines = [Line("p2", D("1.00")), Line("p1", D("1.00"))]
    assert ids(run(touches, lines, model="linear")) == [
        "p2-early",
        "p2-late",
        "p1-early",
        "p1-late",
    ]


# ------------------------------------------------------------------------------ money


def test_jpy_has_no_decimals() -> None:
    credits = run(THREE_CLICKS, [Line("p1", D("1000"))], model="linear", currency="JPY")
    assert amounts(credits) == [D("333"), D("333"), D("334")]
    assert all(c.amount.as_tuple().exponent == 0 for c in credits)


def test_kwd_has_three_decimals() -> None:
    credits = run(THREE_CLICKS, [Line("p1", D("10.000"))], model="linear", currency="KWD")
    assert amounts(credits) == [D("3.333"), D("3.333"), D("3.334")]
    # 4 touches of 1.005: 0.402, 0.1005 -> 0.100 (half-even), 0.100, last 1.005 - 0.602
    four = [touch(f"e{i}", ago=(4 - i) * HOUR) for i in range(4)]
    credits = run(four, [Line("p1", D("1.005"))], model="position_based", currency="KWD")
    assert amounts(credits) == [D("0.402"), D("0.100"), D("0.100"), D("0.403")]


def test_exact_half_cent_shares_round_half_even() -> None:
    # 0.03 / 6 = 0.005 exactly -> 0.00 (to even) five times; the last touch gets 0.03.
    six = [touch(f"e{i}", ago=(6 - i) * HOUR) for i in range(6)]
    credits = run(six, [Line("p1", D("0.03"))], model="linear")
    assert amounts(credits) == [D("0.00")] * 5 + [D("0.03")]
    # 0.10 / 4 = 0.025 -> 0.02 (to even); the last gets 0.10 - 0.06 = 0.04
    credits = run(six[:4], [Line("p1", D("0.10"))], model="linear")
    assert amounts(credits) == [D("0.02"), D("0.02"), D("0.02"), D("0.04")]


def test_rounding_remainder_keeps_line_sums_exact() -> None:
    lines = [Line("p1", D("0.01")), Line("p1", D("99999.99")), Line("p1", D("7.77"))]
    for model in MODELS:
        credits = run(THREE_CLICKS, lines, model=model)
        for index, line in enumerate(lines):
            assert sum(c.amount for c in credits if c.line_index == index) == line.revenue


def test_revenue_with_more_decimals_than_the_currency() -> None:
    # 10.005 / 2 = 5.0025 -> 5.00; the last touch absorbs the sub-cent part: 5.005.
    credits = run(THREE_CLICKS[:2], [Line("p1", D("10.005"))], model="linear")
    assert amounts(credits) == [D("5.00"), D("5.005")]


def test_zero_revenue_lines_get_zero_credits_and_orders_still_count() -> None:
    lines = [Line("p1", D("0")), Line("p2", D("0.00"))]
    credits = run(THREE_CLICKS, lines, model="linear")
    assert [(c.line_index, c.amount) for c in credits] == [(0, D("0.00"))] * 3
    # zero-revenue order: lines share the order equally; p2 is organic
    assert credited_fraction(lines, credits) == pytest.approx(0.5)
    assert order_shares(lines, credits) == pytest.approx([1 / 6] * 3)


def test_empty_inputs() -> None:
    assert run([]) == []
    assert run(THREE_CLICKS, []) == []
    assert credited_fraction([], []) == 0.0


def test_order_shares_rejects_credits_of_unknown_lines() -> None:
    credits = run(THREE_CLICKS)
    with pytest.raises(ValueError, match="unknown line"):
        order_shares([], credits)


def test_quantize_money_is_half_even_and_context_free() -> None:
    assert quantize_money(D("2.345"), "USD") == D("2.34")
    assert quantize_money(D("2.355"), "USD") == D("2.36")
    assert quantize_money(D("-2.345"), "USD") == D("-2.34")
    assert quantize_money(D("2.5"), "JPY") == D("2")
    assert quantize_money(D("3.5"), "jpy") == D("4")
    assert quantize_money(D("1.0005"), "KWD") == D("1.000")
    assert str(quantize_money(D("1E+3"), "USD")) == "1000.00"
    with localcontext() as ctx:
        ctx.prec = 3  # a caller's odd context must not round our money
        assert quantize_money(D("123456789.125"), "USD") == D("123456789.12")
        credits = run(THREE_CLICKS, [Line("p1", D("123456789.00"))], model="linear")
        assert amounts(credits) == [D("41152263.00")] * 3


def test_minor_units() -> None:
    assert [minor_units(c) for c in ("JPY", "KRW", "VND", "CLP", "ISK")] == [0] * 5
    assert [minor_units(c) for c in ("BHD", "KWD", "OMR", "JOD", "IQD", "LYD", "TND")] == [3] * 7
    assert minor_units("USD") == 2
    assert minor_units("eur") == 2
    with pytest.raises(ValueError, match="ISO-4217"):
        minor_units("XYZ")  # well-formed but not a currency: refused, never guessed
    for bad in ("", "US", "USDT", "U$D", "ДОЛ"):
        with pytest.raises(ValueError, match="currency"):
            minor_units(bad)


def test_allocate() -> None:
    assert allocate(D("1.00"), [1, 1, 1], "USD") == [D("0.33"), D("0.33"), D("0.34")]
    assert allocate(D("5"), [0, 3], "JPY") == [D("0"), D("5")]
    assert allocate(D("5"), [], "JPY") == []
    with pytest.raises(ValueError):
        allocate(D("5"), [0, 0], "JPY")
    with pytest.raises(ValueError):
        allocate(D("5"), [1, -1], "JPY")
    with pytest.raises(ValueError):
        allocate(D("NaN"), [1], "JPY")


# ------------------------------------------------------------------------------ validation


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Touch("e", "click", datetime(2024, 6, 1, 12), None, None, "p1")
    with pytest.raises(ValueError, match="timezone-aware"):
        attribute(
            order_time=datetime(2024, 6, 1, 12),
            lines=[Line("p1", D("1.00"))],
            touches=[],
            rules=Rules(),
            model="linear",
            currency="USD",
            content_products={},
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        model_weights("linear", [datetime(2024, 6, 1)], T)


def test_unknown_model_lists_the_allowed_models() -> None:
    with pytest.raises(ValueError, match="position_based") as excinfo:
        run(THREE_CLICKS, model="u_shaped")  # type: ignore[arg-type]
    assert all(model in str(excinfo.value) for model in MODELS)


def test_unknown_model_is_rejected_even_without_touches() -> None:
    with pytest.raises(ValueError, match="allowed"):
        run([], model="nope")  # type: ignore[arg-type]


def test_invalid_currency_is_rejected_even_for_organic_orders() -> None:
    with pytest.raises(ValueError, match="currency"):
        run([], currency="dollars")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"click_window_seconds": -1},
        {"view_window_seconds": -5},
        {"view_window_seconds": 1.5},
        {"click_window_seconds": True},
        {"match": "content"},
    ],
)
def test_invalid_rules(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Rules"):
        Rules(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("revenue", [D("-0.01"), D("NaN"), D("Infinity"), 5])
def test_invalid_line_revenue(revenue: object) -> None:
    with pytest.raises(ValueError, match="revenue"):
        Line("p1", revenue)  # type: ignore[arg-type]
