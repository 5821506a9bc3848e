"""Report metric math: pure functions from summed totals to report figures.

Counts are ints, ``orders`` is a float (Σ order_share: fractional under multi-touch models),
money is ``Decimal``. A ratio whose denominator is zero is ``None`` (JSON ``null``).

- Rates (CTR, completion, engagement, CVR) and ROAS are floats (JSON numbers).
- Money and money ratios (GMV, spend, GPM, CPM, CPC, CPA) are ``Decimal`` rounded half-even to
  ``places`` decimals, the report currency's minor unit (decimal strings on the wire).
- ``orders`` is rounded to ``ORDERS_DECIMALS`` places to drop float summation noise; CVR and
  CPA are computed from that rounded figure, so they can be re-derived from what is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import ROUND_HALF_EVEN, Decimal

ZERO = Decimal(0)
ORDERS_DECIMALS = 6


@dataclass(slots=True)
class Totals:
    """Sums over a range for one row (an ad, a content, or an ad format)."""

    impressions: int = 0
    views: int = 0
    completions: int = 0
    likes: int = 0
    comments: int = 0
    shares: int = 0
    clicks: int = 0
    watch_seconds: float = 0.0  # Σ properties.watch_seconds over view/view_complete …
    watch_events: int = 0  # … and how many of those events carried it
    orders: float = 0.0
    gmv: Decimal = ZERO
    direct_gmv: Decimal = ZERO  # live rooms: credited revenue of orders paid while live
    spend: Decimal = ZERO

    def add(self, other: Totals) -> None:
        """Add another row's sums (for per-format totals): every field is a sum."""
        for name in _TOTALS_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


_TOTALS_FIELDS = tuple(f.name for f in fields(Totals))


def money(amount: Decimal, places: int) -> Decimal:
    """``amount`` rounded half-even to ``places`` decimals (never ``-0``)."""
    exponent = Decimal(1).scaleb(-places)
    value = amount.quantize(exponent, rounding=ROUND_HALF_EVEN)
    return value if value != 0 else abs(value)


def money_text(value: Decimal) -> str:
    """A quantized amount as a plain decimal string: ``"129.90"``, ``"1500"`` for JPY."""
    return format(value, "f")


def rate(numerator: float, denominator: float) -> float | None:
    if denominator == 0:
        return None
    return numerator / denominator


def money_ratio(
    amount: Decimal, denominator: int | float | Decimal, places: int, *, per: int = 1
) -> Decimal | None:
    """``amount × per / denominator`` as money, or None when the denominator is zero."""
    if denominator == 0:
        return None
    divisor = denominator if isinstance(denominator, Decimal) else Decimal(repr(denominator))
    return money(amount * per / divisor, places)


def rounded_orders(orders: float) -> float:
    value = round(orders, ORDERS_DECIMALS)
    return value if value != 0 else 0.0


def completion_rate(t: Totals) -> float | None:
    return rate(t.completions, t.views)


def ctr(t: Totals) -> float | None:
    return rate(t.clicks, t.impressions)


def engagement_rate(t: Totals) -> float | None:
    return rate(t.likes + t.comments + t.shares, t.views)


def cvr(t: Totals) -> float | None:
    return rate(rounded_orders(t.orders), t.clicks)


def avg_watch_seconds(t: Totals) -> float | None:
    return rate(t.watch_seconds, t.watch_events)


def gpm(t: Totals, places: int) -> Decimal | None:
    return money_ratio(t.gmv, t.views, places, per=1000)


def cpm(t: Totals, places: int) -> Decimal | None:
    return money_ratio(t.spend, t.impressions, places, per=1000)


def cpc(t: Totals, places: int) -> Decimal | None:
    return money_ratio(t.spend, t.clicks, places)


def cpa(t: Totals, places: int) -> Decimal | None:
    return money_ratio(t.spend, rounded_orders(t.orders), places)


def roas(t: Totals) -> float | None:
    if t.spend == 0:
        return None
    return float(t.gmv / t.spend)
