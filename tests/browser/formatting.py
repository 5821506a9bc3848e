"""What the page should print for an API value, in the en-US locale the tests browse with.

Mirrors ``static/app.js``: browsers format a number from its shortest round-trip decimal
(``repr`` in Python) and round half away from zero, so that is done here too.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

NA = "—"
CENT = Decimal("0.01")


def _round2(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(CENT, rounding=ROUND_HALF_UP)


def fmt_int(value: Any) -> str:
    return NA if value is None else f"{round(float(value)):,}"


def fmt_count(value: Any) -> str:
    """Up to two decimals, trailing zeros dropped (fractional orders under multi-touch)."""
    if value is None:
        return NA
    text = f"{_round2(value):,}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_pct(value: Any) -> str:
    return NA if value is None else f"{_round2(float(value) * 100):,}%"


def fmt_ratio(value: Any) -> str:
    return NA if value is None else f"{_round2(value):,}×"


def fmt_money(value: Any, currency: str | None = None) -> str:
    """A decimal string with its own decimals, grouped; the currency after it when given."""
    if value is None:
        return NA
    amount = f"{Decimal(str(value)):,}"
    return f"{amount} {currency}" if currency else amount


def fmt_duration(value: Any) -> str:
    if value is None:
        return NA
    s = math.floor(float(value) + 0.5)
    if s < 60:
        return f"{s}s"
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if s < 3600:
        return f"{m}m {s % 60}s"
    if s < 86400:
        return f"{h}h {m}m"
    return f"{d}d {h}h"
