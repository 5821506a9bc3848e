"""Currency minor units and exact rounding / allocation helpers for attribution.

Everything here is integer arithmetic on Decimal coefficients, so results never depend
on the caller's ``decimal`` context (precision, rounding, traps).  Rounding is always
ROUND_HALF_EVEN ("banker's rounding") to the currency's minor unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

# One ISO-4217 table for the whole repo; attribution only adds the "unknown code -> 2" rule.
from shared.currencies import CURRENCY_MINOR_UNITS

__all__ = ["DEFAULT_MINOR_UNITS", "allocate", "minor_units", "quantize_money"]

DEFAULT_MINOR_UNITS = 2


def minor_units(currency: str) -> int:
    """Decimal places of ``currency``'s minor unit (JPY 0, USD 2, KWD 3, CLF 4).

    The code is case-insensitive.  A well-formed code missing from the ISO table (e.g. a
    currency introduced after the table was written) defaults to 2 decimals, so a new
    currency never blocks attribution; anything that is not three ASCII letters is a bug
    and raises ValueError.
    """
    code = currency.upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValueError(f"invalid currency code {currency!r}: expected 3 letters")
    return CURRENCY_MINOR_UNITS.get(code, DEFAULT_MINOR_UNITS)


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
