"""Pure multi-touch attribution engine: no database, no HTTP, no clock.

Given an order (its paid time and lines) and the touches its buyer had, decide which
touches get credit for each line and how much of the line's revenue each one gets.

Rules
-----
* Touches: ``click`` is a click-through touch; ``view``, ``view_complete`` and
  ``live_enter`` are view-through touches.  Any other event type is ignored.
* Windows: with ``T`` the order's paid time, a click counts iff
  ``T - click_window <= t <= T`` and a view iff ``T - view_window <= t <= T``
  (both bounds inclusive; touches after ``T`` never count).
* Matching: ``product`` -- a touch counts for a line iff its ``product_id`` is the
  line's product or its ``content_id`` is linked to that product in the catalog;
  ``any`` -- every touch counts for every line.
* Clicks beat views: per line, if any eligible click exists its views are ignored.
* Models over the line's touches sorted by ``(occurred_at, event_id)``: see
  :func:`model_weights`.
* Money: each touch but the last gets ``revenue * weight`` rounded half-even to the
  currency's minor unit; the last touch (in time order) gets the remainder, so a line's
  credits sum exactly to its revenue.  Lines without an eligible touch are organic and
  get no credit.  Zero-revenue lines still get credits (amount 0) so the touches that
  preceded the order remain visible in reports.

Weights are exact rationals (:class:`fractions.Fraction`) that sum to exactly 1, and
amounts are computed from them with integer arithmetic, so a 0.03 line split six ways
rounds each 0.005 share half-even instead of by whichever way a 28-digit Decimal of
1/6 happened to round.  ``time_decay`` uses float exponentials (irrational in general)
that are then normalised exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Literal, get_args

from shared.vocabulary import CLICK_TYPES, VIEW_TYPES

from .money import allocate, minor_units

__all__ = [
    "CLICK_TYPES",
    "MODELS",
    "TIME_DECAY_HALF_LIFE",
    "VIEW_TYPES",
    "Credit",
    "Line",
    "Match",
    "Model",
    "Rules",
    "Touch",
    "TouchKind",
    "attribute",
    "credited_fraction",
    "eligible_touches",
    "line_fractions",
    "model_weights",
    "order_shares",
    "touch_kind",
]

Model = Literal["last_touch", "first_touch", "linear", "time_decay", "position_based"]
MODELS: tuple[Model, ...] = get_args(Model)
Match = Literal["product", "any"]
TouchKind = Literal["click", "view"]

TIME_DECAY_HALF_LIFE = timedelta(days=7)

_EMPTY: frozenset[str] = frozenset()


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")


@dataclass(frozen=True, slots=True)
class Touch:
    """One tracked event of the buyer; only click/view types are attribution touches."""

    event_id: str
    type: str
    occurred_at: datetime
    content_id: str | None = None
    ad_id: str | None = None
    product_id: str | None = None

    def __post_init__(self) -> None:
        _require_aware(self.occurred_at, "Touch.occurred_at")


@dataclass(frozen=True, slots=True)
class Line:
    """An order line; ``revenue`` (qty x unit price - refunds) is computed by the caller."""

    product_id: str
    revenue: Decimal

    def __post_init__(self) -> None:
        # Negative revenue means the caller refunded more than was paid: fail loudly.
        if not isinstance(self.revenue, Decimal) or not self.revenue.is_finite():
            raise ValueError(f"Line.revenue must be a finite Decimal, got {self.revenue!r}")
        if self.revenue < 0:
            raise ValueError(f"Line.revenue must be >= 0, got {self.revenue}")


@dataclass(frozen=True, slots=True)
class Rules:
    """Attribution windows (seconds) and how touches are matched to lines."""

    click_window_seconds: int = 604_800  # 7 days
    view_window_seconds: int = 86_400  # 24 hours
    match: Match = "product"

    def __post_init__(self) -> None:
        for name in ("click_window_seconds", "view_window_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Rules.{name} must be an int >= 0, got {value!r}")
        if self.match not in get_args(Match):
            raise ValueError(f"Rules.match must be one of {get_args(Match)}, got {self.match!r}")


@dataclass(frozen=True, slots=True)
class Credit:
    """Credit of one touch for one order line.

    ``line_index`` is the line's position in the ``lines`` passed to :func:`attribute`
    (an order may contain the same product twice).  ``weight`` is the model weight as a
    float; ``amount`` is the money credited, in the order currency.
    """

    line_index: int
    product_id: str
    content_id: str | None
    ad_id: str | None
    event_id: str
    touch: TouchKind
    occurred_at: datetime
    weight: float
    amount: Decimal


def touch_kind(event_type: str) -> TouchKind | None:
    """``"click"``/``"view"`` for attribution touches, ``None`` for any other event type."""
    if event_type in CLICK_TYPES:
        return "click"
    if event_type in VIEW_TYPES:
        return "view"
    return None


# --------------------------------------------------------------------------- weights


def model_weights(
    model: Model, touch_times: Sequence[datetime], order_time: datetime
) -> list[Fraction]:
    """Weights of ``model`` for touches at ``touch_times`` (sorted ascending).

    * ``last_touch``: 1 to the last; ``first_touch``: 1 to the first;
    * ``linear``: ``1/n`` each;
    * ``time_decay``: ``2 ** -((order_time - t) / 7 days)``, normalised to sum 1;
    * ``position_based``: 1 touch -> 1; 2 -> 1/2 each; n >= 3 -> 2/5 first, 2/5 last and
      1/5 shared equally by the middle ones.

    Returns exact fractions summing to exactly 1 (``[]`` for no touches).
    """
    _require_aware(order_time, "order_time")
    for t in touch_times:
        _require_aware(t, "touch time")
    if any(a > b for a, b in pairwise(touch_times)):
        raise ValueError("touch_times must be sorted ascending")
    shares = _shares(model, touch_times)
    total = sum(shares)
    return [Fraction(s, total) for s in shares]


def _shares(model: Model, times: Sequence[datetime]) -> list[int]:
    """Integer numerators proportional to the weights; ``weight_i = s_i / sum(s)``.

    Integers keep everything exact and cheap: amounts are then ``revenue * s_i / sum(s)``
    in integer arithmetic.
    """
    n = len(times)
    if model not in MODELS:
        raise ValueError(f"unknown attribution model {model!r}; allowed: {', '.join(MODELS)}")
    if n == 0:
        return []
    if model == "last_touch":
        return [0] * (n - 1) + [1]
    if model == "first_touch":
        return [1] + [0] * (n - 1)
    if model == "linear" or (model == "position_based" and n <= 2):
        return [1] * n
    if model == "position_based":
        # Over a denominator of 5(n-2): ends get 2(n-2) each (2/5), middles 1 each.
        end = 2 * (n - 2)
        return [end] + [1] * (n - 2) + [end]
    # time_decay.  2^(-(T-t)/H) is proportional to 2^(-(t_last-t)/H), so measure from the
    # newest touch: its weight is exactly 1 (no underflow to an all-zero sum for long
    # windows) and touches a whole number of half-lives apart get exact powers of two.
    newest = times[-1]
    raw = [2.0 ** -((newest - t) / TIME_DECAY_HALF_LIFE) for t in times]
    ratios = [r.as_integer_ratio() for r in raw]
    common = max(den for _, den in ratios)  # all powers of two, so max == lcm
    return [num * (common // den) for num, den in ratios]


# --------------------------------------------------------------------------- eligibility


@dataclass(frozen=True, slots=True)
class _Candidate:
    touch: Touch
    kind: TouchKind


def _in_window(touches: Sequence[Touch], order_time: datetime, rules: Rules) -> list[_Candidate]:
    """Attribution touches inside their window, sorted by (time, event_id). One pass."""
    _require_aware(order_time, "order_time")
    click_start = order_time - timedelta(seconds=rules.click_window_seconds)
    view_start = order_time - timedelta(seconds=rules.view_window_seconds)
    kept: list[_Candidate] = []
    for touch in touches:
        kind = touch_kind(touch.type)
        if kind is None:
            continue
        start = click_start if kind == "click" else view_start
        if start <= touch.occurred_at <= order_time:
            kept.append(_Candidate(touch, kind))
    kept.sort(key=lambda c: (c.touch.occurred_at, c.touch.event_id))
    return kept


def _index_by_product(
    candidates: Sequence[_Candidate], content_products: Mapping[str, frozenset[str]]
) -> dict[str, list[_Candidate]]:
    """product_id -> candidates that match it (own product or linked content), in order."""
    index: dict[str, list[_Candidate]] = {}
    for cand in candidates:
        touch = cand.touch
        if touch.product_id is not None:
            index.setdefault(touch.product_id, []).append(cand)
        if touch.content_id is not None:
            for product_id in content_products.get(touch.content_id, _EMPTY):
                if product_id != touch.product_id:  # never list a touch twice per product
                    index.setdefault(product_id, []).append(cand)
    return index


def _clicks_beat_views(candidates: list[_Candidate]) -> list[_Candidate]:
    clicks = [c for c in candidates if c.kind == "click"]
    return clicks or candidates


def eligible_touches(
    line: Line,
    touches: Sequence[Touch],
    order_time: datetime,
    rules: Rules,
    content_products: Mapping[str, frozenset[str]],
) -> list[Touch]:
    """Touches that get credit for ``line``: in window, matched, clicks beat views.

    Sorted by ``(occurred_at, event_id)``.  For whole orders use :func:`attribute`,
    which filters the touches once for all lines.
    """
    candidates = _in_window(touches, order_time, rules)
    if rules.match == "product":
        candidates = _index_by_product(candidates, content_products).get(line.product_id, [])
    return [c.touch for c in _clicks_beat_views(candidates)]


# --------------------------------------------------------------------------- attribution


def attribute(
    *,
    order_time: datetime,
    lines: Sequence[Line],
    touches: Sequence[Touch],
    rules: Rules,
    model: Model,
    currency: str,
    content_products: Mapping[str, frozenset[str]],
) -> list[Credit]:
    """Credits for every line of one order, ordered by line then touch time.

    ``order_time`` is the time of the order's ``paid`` status.  ``touches`` may contain
    any event types (non-touch types are ignored) in any order.  Event ids are expected
    to be unique; a duplicated event would be credited twice.
    """
    if model not in MODELS:
        raise ValueError(f"unknown attribution model {model!r}; allowed: {', '.join(MODELS)}")
    minor_units(currency)  # validate even when every line turns out organic
    candidates = _in_window(touches, order_time, rules)
    index = _index_by_product(candidates, content_products) if rules.match == "product" else {}

    credits: list[Credit] = []
    # Lines of the same product see the same touches: compute their shares once.
    per_product: dict[str, tuple[list[_Candidate], list[int]]] = {}
    for line_index, line in enumerate(lines):
        cached = per_product.get(line.product_id)
        if cached is None:
            matched = candidates if rules.match == "any" else index.get(line.product_id, [])
            chosen = _clicks_beat_views(matched)
            cached = (chosen, _shares(model, [c.touch.occurred_at for c in chosen]))
            per_product[line.product_id] = cached
        chosen, shares = cached
        if not chosen:
            continue  # organic line
        total = sum(shares)
        amounts = allocate(line.revenue, shares, currency)
        for cand, share, amount in zip(chosen, shares, amounts, strict=True):
            touch = cand.touch
            credits.append(
                Credit(
                    line_index=line_index,
                    product_id=line.product_id,
                    content_id=touch.content_id,
                    ad_id=touch.ad_id,
                    event_id=touch.event_id,
                    touch=cand.kind,
                    occurred_at=touch.occurred_at,
                    weight=share / total,  # int/int true division is correctly rounded
                    amount=amount,
                )
            )
    return credits


# --------------------------------------------------------------------------- order shares


def _line_shares(lines: Sequence[Line]) -> list[Fraction]:
    """Each line's fraction of the order: revenue / order revenue.

    A zero-revenue order (free gifts, fully refunded) weighs its lines equally instead,
    so an attributed free order still counts as one order rather than dividing by zero.
    """
    order_revenue = sum((line.revenue for line in lines), Decimal(0))
    if order_revenue == 0:
        return [Fraction(1, len(lines))] * len(lines)
    total = Fraction(order_revenue)
    return [Fraction(line.revenue) / total for line in lines]


def line_fractions(lines: Sequence[Line]) -> list[float]:
    """Each line's fraction of the order as a float (see :func:`order_shares`)."""
    return [float(share) for share in _line_shares(lines)] if lines else []


def order_shares(
    lines: Sequence[Line],
    credits: Sequence[Credit],
    fractions: Sequence[float] | None = None,
) -> list[float]:
    """Per credit, its fraction of the "orders" metric: line share x weight.

    Summed over all credits of an order this is the order's credited fraction (1 when
    every line is attributed, less when some lines are organic); summed over one
    content's credits it is the number of orders that content is credited with.
    ``fractions`` is :func:`line_fractions` of ``lines``, when the caller already has it
    (one order attributed under every model).
    """
    shares = line_fractions(lines) if fractions is None else fractions
    result: list[float] = []
    for credit in credits:
        if not 0 <= credit.line_index < len(lines):
            raise ValueError(f"credit {credit.event_id!r} refers to unknown line")
        result.append(shares[credit.line_index] * credit.weight)
    return result


def credited_fraction(lines: Sequence[Line], credits: Sequence[Credit]) -> float:
    """Σ :func:`order_shares`: 1 for a fully attributed order (up to float rounding),
    0 for a fully organic one, the attributed revenue fraction in between."""
    return math.fsum(order_shares(lines, credits))
