"""Slow, obviously-correct reference attribution, written independently of the engine.

Used by the property tests as an oracle.  It deliberately shares no code with
``services.attribution.credit``: plain loops, integer microseconds for windows,
``Fraction`` weights, pairwise time-decay ratios computed with 60-digit Decimals, and
Python's own half-even ``round(Fraction)`` for money.  Only reads the attributes of the
engine's input objects (duck typing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any, NamedTuple

# Only the currencies the property tests use; a KeyError here means the test is wrong.
REFERENCE_MINOR_UNITS = {"USD": 2, "EUR": 2, "JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3}

WEEK_US = 7 * 24 * 60 * 60 * 1_000_000


class RefCredit(NamedTuple):
    line_index: int
    event_id: str
    kind: str
    weight: Fraction
    amount: Decimal


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _kind(event_type: str) -> str | None:
    if event_type == "click":
        return "click"
    if event_type in ("view", "view_complete", "live_enter"):
        return "view"
    return None


def _counts_for_line(
    touch: Any, line: Any, match: str, content_products: Mapping[str, frozenset[str]]
) -> bool:
    if match == "any":
        return True
    if touch.product_id == line.product_id:
        return True
    if touch.content_id is None:
        return False
    return line.product_id in content_products.get(touch.content_id, frozenset())


def _two_to_the(exponent: Fraction) -> Fraction:
    """2**exponent, exact for integer exponents, 60 significant digits otherwise."""
    if exponent.denominator == 1:
        return Fraction(2) ** int(exponent)
    with localcontext() as ctx:
        ctx.prec = 60
        power = Decimal(2) ** (Decimal(exponent.numerator) / Decimal(exponent.denominator))
    return Fraction(power)


def reference_weights(model: str, times: Sequence[datetime]) -> list[Fraction]:
    n = len(times)
    if n == 0:
        return []
    if model == "last_touch":
        return [Fraction(1) if i == n - 1 else Fraction(0) for i in range(n)]
    if model == "first_touch":
        return [Fraction(1) if i == 0 else Fraction(0) for i in range(n)]
    if model == "linear":
        return [Fraction(1, n) for _ in range(n)]
    if model == "position_based":
        if n == 1:
            return [Fraction(1)]
        if n == 2:
            return [Fraction(1, 2), Fraction(1, 2)]
        weights = []
        for i in range(n):
            if i in (0, n - 1):
                weights.append(Fraction(2, 5))
            else:
                weights.append(Fraction(1, 5) / (n - 2))
        return weights
    if model == "time_decay":
        # w_i = 2^(-age_i/H) / sum_j 2^(-age_j/H) = 1 / sum_j 2^((age_i - age_j)/H)
        weights = []
        for ti in times:
            denominator = Fraction(0)
            for tj in times:
                exponent = Fraction(_micros(tj - ti), WEEK_US)  # (age_i - age_j) / H
                denominator += _two_to_the(exponent)
            weights.append(1 / denominator)
        return weights
    raise ValueError(model)


def _round_to_minor(value: Fraction, places: int) -> Decimal:
    units = round(value * 10**places)  # Fraction.__round__ rounds half to even
    return Decimal(units) / (Decimal(10) ** places)


def reference_attribute(
    *,
    order_time: datetime,
    lines: Sequence[Any],
    touches: Sequence[Any],
    click_window_seconds: int,
    view_window_seconds: int,
    match: str,
    model: str,
    currency: str,
    content_products: Mapping[str, frozenset[str]],
) -> list[RefCredit]:
    places = REFERENCE_MINOR_UNITS[currency]
    result: list[RefCredit] = []
    for line_index, line in enumerate(lines):
        clicks: list[tuple[Any, str]] = []
        views: list[tuple[Any, str]] = []
        for touch in touches:
            kind = _kind(touch.type)
            if kind is None:
                continue
            age_us = _micros(order_time - touch.occurred_at)
            window = click_window_seconds if kind == "click" else view_window_seconds
            if age_us < 0 or age_us > window * 1_000_000:
                continue
            if not _counts_for_line(touch, line, match, content_products):
                continue
            (clicks if kind == "click" else views).append((touch, kind))
        chosen = clicks if clicks else views
        if not chosen:
            continue
        chosen.sort(key=lambda pair: (_micros(pair[0].occurred_at - order_time), pair[0].event_id))
        weights = reference_weights(model, [t.occurred_at for t, _ in chosen])
        revenue = Fraction(line.revenue)
        given = Decimal(0)
        for i, ((touch, kind), weight) in enumerate(zip(chosen, weights, strict=True)):
            if i < len(chosen) - 1:
                amount = _round_to_minor(revenue * weight, places)
                given += amount
            else:
                amount = line.revenue - given
            result.append(RefCredit(line_index, touch.event_id, kind, weight, amount))
    return result
