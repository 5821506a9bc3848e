"""The data-driven report: paths from the range, then Markov or Shapley credits, in money."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.credit.money import quantize_money
from services.attribution.datadriven.markov import markov
from services.attribution.datadriven.paths import Paths
from services.attribution.datadriven.repository import ChannelDimension
from services.attribution.datadriven.schemas import (
    ChannelCredit,
    DataDrivenOut,
    Method,
    PathFrequency,
)
from services.attribution.datadriven.shapley import coalition_of, shapley
from services.attribution.datadriven.source import PathQuery, PathSource, SqlPathSource
from services.attribution.settings.service import Rules

TOP_PATHS = 20


async def load_paths(
    session: AsyncSession,
    tenant_id: str,
    dimension: ChannelDimension,
    range_from: dt.datetime,
    range_to: dt.datetime,
    rules: Rules,
    source: PathSource | None = None,
) -> Paths:
    """The range's paths, from ``source`` (the service's database unless given)."""
    window = dt.timedelta(seconds=rules.click_window_seconds)
    source = source or SqlPathSource(session)
    return await source.paths(PathQuery(tenant_id, dimension, range_from, range_to, window))


def split_money(
    total: Decimal, fractions: Mapping[str, float], currency: str
) -> dict[str, Decimal]:
    """``total`` split by ``fractions`` (which may be negative under Shapley), summing exactly.

    Every part but the last is rounded half-even to the currency's minor unit; the last
    takes the remainder, so the parts always add up to ``total``.
    """
    names = sorted(fractions)
    parts: dict[str, Decimal] = {}
    for name in names[:-1]:
        parts[name] = quantize_money(total * Decimal(repr(fractions[name])), currency)
    if names:
        parts[names[-1]] = total - sum(parts.values(), Decimal(0))
    return parts


@dataclass(frozen=True, slots=True)
class JourneyCredit:
    """One channel's part of one order: its share of the order and of the order's revenue."""

    order_id: str
    paid_at: dt.datetime
    channel: str
    share: float
    amount: Decimal


def journey_weights(paths: Paths, method: Method) -> Callable[[tuple[str, ...]], dict[str, float]]:
    """The data-driven fractions of one converting path's channels (they sum to 1).

    Markov (order 1): the path's distinct channels in proportion to their removal effects
    over the whole range (equal parts when all of them have a zero effect). Shapley: the
    exact Shapley fractions of the path's coalition (which may be negative for a channel
    that lowers the coalition's conversion rate).
    """
    if method == "markov":
        effects = markov(paths.counts, 1).removal_effects

        def by_effect(channels: tuple[str, ...]) -> dict[str, float]:
            distinct = sorted(set(channels))
            total = sum(effects.get(c, 0.0) for c in distinct)
            if total <= 0:
                return {c: 1 / len(distinct) for c in distinct}
            return {c: effects.get(c, 0.0) / total for c in distinct}

        return by_effect
    values = shapley(paths.counts)
    return lambda channels: values.fractions[coalition_of(channels)]


def journey_credits(paths: Paths, method: Method, currency: str | None) -> list[JourneyCredit]:
    """Each order's revenue split over its own path's channels by their data-driven weights
    (the per-journey rule): the parts of an order add up to its revenue exactly."""
    weights = journey_weights(paths, method)
    credits: list[JourneyCredit] = []
    for journey in paths.journeys:
        fractions = weights(journey.channels)
        amounts = (
            split_money(journey.revenue, fractions, currency)
            if currency is not None
            else dict.fromkeys(fractions, Decimal(0))
        )
        credits.extend(
            JourneyCredit(journey.order_id, journey.paid_at, channel, share, amounts[channel])
            for channel, share in sorted(fractions.items())
        )
    return credits


def report(
    paths: Paths, *, method: Method, dimension: ChannelDimension, order: int, currency: str | None
) -> DataDrivenOut:
    """Pure: the report of these paths (``currency`` None only when there is no order yet)."""
    converting, non_converting = paths.converting, paths.non_converting
    total_revenue = sum((c.revenue for c in paths.counts.values()), Decimal(0))
    revenue: dict[str, Decimal] = {}
    effects: dict[str, float] | None = None
    if method == "markov":
        result = markov(paths.counts, order)
        p_conversion = result.p_conversion
        effects = result.removal_effects
        conversions = {c: share * converting for c, share in result.shares.items()}
        if currency is not None:
            revenue = split_money(total_revenue, result.shares, currency)
    else:
        values = shapley(paths.counts)
        seen = converting + non_converting
        p_conversion = converting / seen if seen else 0.0
        conversions = values.conversions
        for coalition, fractions in values.fractions.items():
            if currency is None:
                break
            for channel, amount in split_money(
                values.revenue_by_coalition[coalition], fractions, currency
            ).items():
                revenue[channel] = revenue.get(channel, Decimal(0)) + amount
    channels = [
        ChannelCredit(
            channel=channel,
            removal_effect=None if effects is None else round(effects.get(channel, 0.0), 12),
            conversions=round(credit, 6),
            revenue=revenue.get(channel, Decimal(0)),
        )
        for channel, credit in conversions.items()
    ]
    channels.sort(key=lambda c: (-c.conversions, c.channel))
    frequent = sorted(
        paths.counts.items(),
        key=lambda item: (-item[1].conversions, -item[1].non_conversions, item[0]),
    )[:TOP_PATHS]
    return DataDrivenOut(
        method=method,
        channel=dimension,
        order=order,
        currency=currency,
        converting_paths=converting,
        non_converting_paths=non_converting,
        p_conversion=round(p_conversion, 12),
        channels=channels,
        top_paths=[
            PathFrequency(
                path=" > ".join(path), conversions=c.conversions, non_conversions=c.non_conversions
            )
            for path, c in frequent
        ],
    )
