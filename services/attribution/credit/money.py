"""Currency minor units and exact rounding / allocation helpers for attribution.

Everything here is integer arithmetic on Decimal coefficients, so results never depend
on the caller's ``decimal`` context (precision, rounding, traps).  Rounding is always
ROUND_HALF_EVEN ("banker's rounding") to the currency's minor unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from shared.currencies import minor_units

__all__ = ["allocate", "minor_units", "quantize_money"]


def quantize_money(amount: Decimal, currency: str) -> Decimal:
    """Round ``amount`` half-even to ``currency``'s minor unit (exact, context-free)."""
    places = minor_units(currency)
    num, den = _as_ratio(amount)
    return _from_minor(_div_half_even(num * 10**places, den), places)


def allocate(total: Decimal, shares: Sequence[int], currency: str) -> list[Decimal]:
    """Split ``total`` proportionally to non-negative integer ``shares``.

    Part ``i`` (all but the last) is ``total * shares[i] / sum(shares)`` rounded half-even
    to the minor unit, computed exactly; the last part is ``total`` minus the others, so
    the parts always sum to ``total`` exactly (even if ``total`` carries more decimals
    than the currency, in which case only the last part carries them).
    """
    if not shares:
        return []
    if any(s < 0 for s in shares):
        raise ValueError("shares must be non-negative")
    denominator = sum(shares)
    if denominator == 0:
        raise ValueError("shares must not all be zero")
    places = minor_units(currency)
    num, den = _as_ratio(total)
    scaled_num = num * 10**places
    parts_minor = [_div_half_even(scaled_num * s, den * denominator) for s in shares[:-1]]

    # Remainder in a common scale: `total` may have more decimals than the currency.
    exp = total.as_tuple().exponent
    assert isinstance(exp, int)  # _as_ratio already rejected NaN/Infinity
    scale = max(places, -exp)
    total_scaled = num * 10**scale // den  # exact: den divides 10**scale by construction
    last_scaled = total_scaled - sum(parts_minor) * 10 ** (scale - places)
    return [_from_minor(p, places) for p in parts_minor] + [_from_minor(last_scaled, scale)]


def _as_ratio(amount: Decimal) -> tuple[int, int]:
    """``amount`` as ``(numerator, denominator)`` with a power-of-ten denominator."""
    if not amount.is_finite():
        raise ValueError(f"amount must be finite, got {amount}")
    sign, digits, exp = amount.as_tuple()
    assert isinstance(exp, int)
    coefficient = int("".join(map(str, digits))) if digits else 0
    if sign:
        coefficient = -coefficient
    if exp >= 0:
        return coefficient * 10**exp, 1
    return coefficient, 10**-exp


def _div_half_even(num: int, den: int) -> int:
    """``num / den`` rounded half-even (``den > 0``); floor division keeps negatives right."""
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q % 2 == 1):
        q += 1
    return q


def _from_minor(units: int, places: int) -> Decimal:
    """The Decimal ``units * 10**-places``, built from digits so no context rounding applies."""
    digits = tuple(int(c) for c in str(abs(units)))
    return Decimal((1 if units < 0 else 0, digits, -places))
