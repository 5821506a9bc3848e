"""The data-driven report: paths from the range, then Markov or Shapley credits, in money."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.credit.money import quantize_money
from services.attribution.datadriven import repository
from services.attribution.datadriven.markov import markov
from services.attribution.datadriven.paths import Paths, build_paths
from services.attribution.datadriven.repository import ChannelDimension
from services.attribution.datadriven.schemas import (
    ChannelCredit,
    DataDrivenOut,
    Method,
    PathFrequency,
)
from services.attribution.datadriven.shapley import shapley
from services.attribution.settings.service import Rules

TOP_PATHS = 20


async def load_paths(
    session: AsyncSession,
    tenant_id: str,
    dimension: ChannelDimension,
    range_from: dt.datetime,
    range_to: dt.datetime,
    rules: Rules,
) -> Paths:
    window = dt.timedelta(seconds=rules.click_window_seconds)
    touches = await repository.range_touches(
        session, tenant_id, dimension, range_from - window, range_to
    )
    orders = await repository.paid_orders(session, tenant_id, range_from, range_to)
    return build_paths(touches, orders, range_from=range_from, range_to=range_to, window=window)


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
