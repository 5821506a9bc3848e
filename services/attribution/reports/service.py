"""Reports: gather the sums (``repository``), derive the figures (``metrics``), build the rows.

Row rules: events count by ``occurred_at`` in ``[from, to)``; orders and GMV come from the
stored credits of the chosen model whose order was paid in the range; spend comes from the
catalog's per-day spend for the local days (tenant timezone) that begin in the range. A row
exists for every ad/content with events, credits or spend in the range; ``include_inactive``
adds the rest of the catalog read model with zeros. Rows are sorted by GMV descending, then id.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypedDict, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.datadriven.repository import ChannelDimension
from services.attribution.datadriven.service import JourneyCredit, journey_credits, load_paths
from services.attribution.reports import metrics, repository
from services.attribution.reports.buckets import make_buckets, spend_days
from services.attribution.reports.metrics import ZERO, Totals
from services.attribution.reports.query import (
    DATA_DRIVEN,
    AdsQuery,
    ContentsQuery,
    DataDriven,
    Metric,
    Scope,
    TimeseriesQuery,
)
from services.attribution.reports.schemas import (
    AdMetrics,
    AdRow,
    AdsReport,
    ContentRow,
    ContentsReport,
    FormatRow,
    Point,
    Timeseries,
)
from services.attribution.reports.viewers import SqlViewers, ViewerCounter
from services.attribution.settings.service import Rules
from shared.currencies import minor_units
from shared.vocabulary import AD_FORMATS, AdFormat

AD_EVENT_TYPES = ("impression", "view", "view_complete", "click")
CONTENT_EVENT_TYPES = ("impression", "view", "view_complete", "like", "comment", "share", "click")
METRIC_EVENT_TYPES: dict[Metric, str] = {
    "impressions": "impression",
    "views": "view",
    "clicks": "click",
}
LISTED_IDS = 10  # ids named in one warning before "and N more"
# A report has no currency only while the tenant has taken no order and no spend is counted
# in it: every amount in it is zero, written with the usual two decimals.
NO_CURRENCY_PLACES = 2
R = TypeVar("R", bound=AdMetrics)


def _places(currency: str | None) -> int:
    return NO_CURRENCY_PLACES if currency is None else minor_units(currency)


class _Header(TypedDict):
    currency: str | None
    model: str
    timezone: str
    from_: dt.datetime
    to: dt.datetime


def _header(currency: str | None, rules: Rules, scope: Scope) -> _Header:
    """What every report starts with: its currency, model, timezone and range."""
    return {
        "currency": currency,
        "model": scope.model,
        "timezone": rules.timezone,
        "from_": scope.start,
        "to": scope.end,
    }


def _credits(tenant_id: str, scope: Scope) -> repository.CreditRange:
    return repository.CreditRange(tenant_id, scope.model, scope.start, scope.end)


async def _events(
    session: AsyncSession, tenant_id: str, scope: Scope, key: str, **options: Any
) -> dict[str, repository.EventSums]:
    """:func:`repository.event_sums` per ``key`` over the scope's range; ``options``: its
    ``types``, ``only``, ``watch`` and ``viewers``."""
    return await repository.event_sums(
        session, tenant_id, key=key, start=scope.start, end=scope.end, **options
    )


async def _data_driven(
    session: AsyncSession,
    tenant_id: str,
    rules: Rules,
    scope: Scope,
    dimension: ChannelDimension,
    only: Select[tuple[str]] | None,
) -> list[JourneyCredit]:
    """Under markov or shapley: each order paid in the range split over its own touches'
    channels (ads or contents) by their weights for the range; only the ids in ``only``."""
    paths = await load_paths(session, tenant_id, dimension, scope.start, scope.end, rules)
    method: DataDriven = "markov" if scope.model == "markov" else "shapley"
    parts = journey_credits(paths, method, rules.currency)
    if only is None:
        return parts
    kept = set((await session.execute(only)).scalars())
    return [part for part in parts if part.channel in kept]


def _summed(parts: Iterable[JourneyCredit]) -> dict[str, repository.MoneySums]:
    sums: dict[str, repository.MoneySums] = {}
    shares: dict[str, list[float]] = {}
    for part in parts:
        total = sums.setdefault(part.channel, repository.MoneySums())
        total.amount += part.amount
        total.rows += 1
        shares.setdefault(part.channel, []).append(part.share)
    for channel, total in sums.items():
        total.share = math.fsum(shares[channel])
    return sums


def _live_at(info: repository.ContentInfo | None, at: dt.datetime) -> bool:
    """Whether ``at`` falls while the live room was live (started, and not yet ended)."""
    if info is None or info.kind != "live" or info.started_at is None:
        return False
    return info.started_at <= at and (info.ended_at is None or at <= info.ended_at)


def _name_ids(ids: Iterable[str]) -> str:
    ordered = sorted(ids)
    named = ", ".join(ordered[:LISTED_IDS])
    if len(ordered) > LISTED_IDS:
        named += f" and {len(ordered) - LISTED_IDS} more"
    return named


@dataclass(frozen=True, slots=True)
class Listing:
    """How a report names its rows in the warning about ids the catalog does not know yet:
    ``what`` a row is, ``where`` its ids are seen, and which catalog fields (``nulls``) stay
    null."""

    what: str
    where: str
    nulls: str


AD_LISTING = Listing("ad", "events, credits or spend", "campaign, content and format")
CONTENT_LISTING = Listing("content", "events or credits", "kind, platform and account")


def _listed_ids(
    seen: set[str], catalog: Iterable[str], scope: Scope, warnings: list[str], listing: Listing
) -> set[str]:
    """The ids a report lists: those ``seen`` in its data, and every catalog id with
    ``include_inactive``. A warning names the ids the catalog read model does not know yet,
    whose catalog fields (``listing.nulls``) are null."""
    known = set(catalog)
    ids = seen | known if scope.include_inactive else seen
    unknown = sorted(i for i in ids if i not in known)
    if unknown:
        warnings.append(
            f"{len(unknown)} {listing.what}(s) seen in {listing.where} are not in the catalog "
            f"read model yet: {_name_ids(unknown)}; their {listing.nulls} are null "
            "(POST /v1/sync pulls the catalog now)."
        )
    return ids


def _totals(sums: repository.EventSums | None, credit: repository.MoneySums | None) -> Totals:
    totals = Totals()
    if sums is not None:
        counts = sums.counts
        totals.impressions = counts.get("impression", 0)
        totals.views = counts.get("view", 0)
        totals.completions = counts.get("view_complete", 0)
        totals.likes = counts.get("like", 0)
        totals.comments = counts.get("comment", 0)
        totals.shares = counts.get("share", 0)
        totals.clicks = counts.get("click", 0)
        totals.watch_seconds = sums.watch_seconds
        totals.watch_events = sums.watch_events
    if credit is not None:
        totals.orders = credit.share
        totals.gmv = credit.amount
    return totals


# --- spend and currency -------------------------------------------------------------------


def settle_spend(
    tenant_currency: str | None, spend: dict[tuple[str, str], repository.MoneySums]
) -> tuple[str | None, dict[str, Decimal], set[str], list[str]]:
    """Keep spend in the report currency; name what is left out.

    Returns (report currency, spend per ad, ads with any spend, warnings). A tenant without
    a currency yet (no order, none set) reports spend in the one currency all of it is in;
    spend in several currencies is then all left out rather than mixed.
    """
    currencies = sorted({currency for _, currency in spend})
    warnings: list[str] = []
    currency = tenant_currency
    if currency is None and currencies:
        if len(currencies) == 1:
            currency = currencies[0]
            warnings.append(
                f"The tenant has no currency yet (its first order sets it, or PUT "
                f"/v1/settings); spend is reported in {currency}, the currency all of it is in."
            )
        else:
            warnings.append(
                "The tenant has no currency yet (its first order sets it, or PUT "
                f"/v1/settings) and spend comes in {', '.join(currencies)}; none of it is "
                "counted rather than mixing currencies."
            )
    kept: dict[str, Decimal] = {}
    left_out: dict[str, list[tuple[str, repository.MoneySums]]] = {}
    for (ad_id, spend_currency), sums in spend.items():
        if spend_currency == currency:
            kept[ad_id] = kept.get(ad_id, ZERO) + sums.amount
        else:
            left_out.setdefault(spend_currency, []).append((ad_id, sums))
    for other in sorted(left_out):
        entries = left_out[other]
        total = metrics.money(sum((sums.amount for _, sums in entries), ZERO), minor_units(other))
        days = sum(sums.rows for _, sums in entries)
        where = f", which is in {currency}" if currency else ""
        warnings.append(
            f"Spend in {other} is left out of this report{where}: "
            f"{metrics.money_text(total)} {other} over {days} ad-day(s) "
            f"on {_name_ids(ad for ad, _ in entries)}."
        )
    return currency, kept, {ad for ad, _ in spend}, warnings


# --- ads ----------------------------------------------------------------------------------


def _figures(t: Totals, places: int) -> dict[str, Any]:
    """The figures every ad, ad format and content row shows, from its totals."""
    return {
        "impressions": t.impressions,
        "views": t.views,
        "completion_rate": metrics.completion_rate(t),
        "clicks": t.clicks,
        "ctr": metrics.ctr(t),
        "orders": metrics.rounded_orders(t.orders),
        "gmv": metrics.money(t.gmv, places),
    }


def _metric_row(row: type[R], t: Totals, places: int, **keys: str | None) -> R:
    """An ad's (or an ad format's) row: its ``keys`` and the figures of its totals."""
    figures: dict[str, Any] = {**keys, **_figures(t, places)}
    return row(
        **figures,
        completions=t.completions,
        cvr=metrics.cvr(t),
        spend=metrics.money(t.spend, places),
        cpm=metrics.cpm(t, places),
        cpc=metrics.cpc(t, places),
        cpa=metrics.cpa(t, places),
        roas=metrics.roas(t),
    )


async def ads_report(
    session: AsyncSession,
    tenant_id: str,
    rules: Rules,
    scope: Scope,
    query: AdsQuery,
) -> AdsReport:
    await repository.begin_snapshot(session)
    campaign_id = query.campaign_id
    only = repository.campaign_ads(tenant_id, campaign_id) if campaign_id else None
    catalog = await repository.ads_catalog(session, tenant_id, campaign_id)
    events = await _events(session, tenant_id, scope, "ad_id", types=AD_EVENT_TYPES, only=only)
    if scope.model in DATA_DRIVEN:
        parts = await _data_driven(session, tenant_id, rules, scope, "ad", only)
        credits = _summed(parts)
    else:
        credits = await repository.ad_credits(session, _credits(tenant_id, scope), only)
    days = spend_days(scope.start, scope.end, ZoneInfo(rules.timezone))
    spend = (
        await repository.ad_spend(
            session, tenant_id, first_day=days[0], last_day=days[1], only=only
        )
        if days
        else {}
    )
    currency, spend_by_ad, spent_ads, warnings = settle_spend(rules.currency, spend)
    places = _places(currency)

    ids = _listed_ids(set(events) | set(credits) | spent_ads, catalog, scope, warnings, AD_LISTING)

    rows: list[AdRow] = []
    format_totals: dict[AdFormat | None, Totals] = {fmt: Totals() for fmt in AD_FORMATS}
    for ad_id in ids:
        totals = _totals(events.get(ad_id), credits.get(ad_id))
        totals.spend = spend_by_ad.get(ad_id, ZERO)
        info = catalog.get(ad_id)
        fmt = info.format if info is not None else None
        format_totals.setdefault(fmt, Totals()).add(totals)
        rows.append(
            _metric_row(
                AdRow,
                totals,
                places,
                ad_id=ad_id,
                campaign_id=info.campaign_id if info else None,
                content_id=info.content_id if info else None,
                format=fmt,
                ad_name=info.name if info else None,
                campaign_name=info.campaign_name if info else None,
                content_title=info.content_title if info else None,
                product_id=info.product_id if info else None,
                product_title=info.product_title if info else None,
            )
        )
    by_format = [
        _metric_row(FormatRow, totals, places, format=fmt) for fmt, totals in format_totals.items()
    ]
    return AdsReport(
        **_header(currency, rules, scope),
        rows=sorted(rows, key=lambda row: (-row.gmv, row.ad_id)),
        by_format=by_format,
        warnings=warnings,
    )


# --- contents -----------------------------------------------------------------------------


async def contents_report(
    session: AsyncSession,
    tenant_id: str,
    rules: Rules,
    scope: Scope,
    query: ContentsQuery,
    *,
    viewers: ViewerCounter | None = None,
) -> ContentsReport:
    """``viewers``: where distinct viewers are counted (the database when not given)."""
    await repository.begin_snapshot(session)
    places = _places(rules.currency)
    only = repository.matching_contents(
        tenant_id, kind=query.kind, platform=query.platform, account_id=query.account_id
    )
    catalog = await repository.contents_catalog(session, tenant_id, only)
    # And each content's watch time and distinct viewers. The viewers may be counted in the
    # analytic store (caught up before it is read) while every other figure of the report
    # comes from this snapshot of the attribution database.
    extra = {"watch": True, "viewers": viewers or SqlViewers(session)}
    events = await _events(
        session, tenant_id, scope, "content_id", types=CONTENT_EVENT_TYPES, only=only, **extra
    )
    if scope.model in DATA_DRIVEN:
        parts = await _data_driven(session, tenant_id, rules, scope, "content", only)
        while_live: dict[str, Decimal] = {}
        for part in parts:
            if _live_at(catalog.get(part.channel), part.paid_at):
                while_live[part.channel] = while_live.get(part.channel, ZERO) + part.amount
        credits = {
            content_id: repository.ContentCredit(sums, while_live.get(content_id, ZERO))
            for content_id, sums in _summed(parts).items()
        }
    else:
        credits = await repository.content_credits(session, _credits(tenant_id, scope), only)
    warnings: list[str] = []
    ids = _listed_ids(set(events) | set(credits), catalog, scope, warnings, CONTENT_LISTING)

    rows: list[ContentRow] = []
    for content_id in ids:
        sums = events.get(content_id)
        credit = credits.get(content_id)
        totals = _totals(sums, credit.total if credit else None)
        direct = metrics.money(credit.direct if credit else ZERO, places)
        figures = _figures(totals, places)
        gmv = figures["gmv"]
        info = catalog.get(content_id)
        rows.append(
            ContentRow(
                content_id=content_id,
                kind=info.kind if info else None,
                platform=info.platform if info else None,
                account_id=info.account_id if info else None,
                **figures,
                unique_viewers=sums.unique_viewers if sums else 0,
                avg_watch_seconds=metrics.avg_watch_seconds(totals),
                likes=totals.likes,
                comments=totals.comments,
                shares=totals.shares,
                engagement_rate=metrics.engagement_rate(totals),
                gpm=metrics.gpm(totals, places),
                direct_gmv=direct,
                indirect_gmv=metrics.money(gmv - direct, places),
                title=info.title if info else None,
                account_handle=info.account_handle if info else None,
            )
        )
    return ContentsReport(
        **_header(rules.currency, rules, scope),
        rows=sorted(rows, key=lambda row: (-row.gmv, row.content_id)),
        warnings=warnings,
    )


# --- time series --------------------------------------------------------------------------


async def timeseries(
    session: AsyncSession,
    tenant_id: str,
    rules: Rules,
    scope: Scope,
    query: TimeseriesQuery,
) -> Timeseries:
    """One metric per local hour/day bucket; every bucket present, in order of start."""
    await repository.begin_snapshot(session)
    buckets = make_buckets(scope.start, scope.end, ZoneInfo(rules.timezone), query.interval)
    slots = repository.Slots(
        buckets.origin, buckets.slot_seconds, content_id=query.content_id, ad_id=query.ad_id
    )
    values: Sequence[int | float | Decimal]
    if query.metric in METRIC_EVENT_TYPES:
        counts = [0] * len(buckets.starts)
        per_slot = await repository.event_series(
            session,
            tenant_id,
            slots,
            event_type=METRIC_EVENT_TYPES[query.metric],
            start=scope.start,
            end=scope.end,
        )
        for slot, count in per_slot.items():
            counts[buckets.bucket_of_slot(slot)] += count
        values = counts
    else:
        amounts = [ZERO] * len(buckets.starts)
        shares: list[list[float]] = [[] for _ in buckets.starts]
        credits = await repository.credit_series(session, _credits(tenant_id, scope), slots)
        for slot, sums in credits.items():
            index = buckets.bucket_of_slot(slot)
            amounts[index] += sums.amount
            shares[index].append(sums.share)
        if query.metric == "gmv":
            places = _places(rules.currency)
            values = [metrics.money(amount, places) for amount in amounts]
        else:
            values = [metrics.rounded_orders(math.fsum(parts)) for parts in shares]
    return Timeseries(
        **_header(rules.currency, rules, scope),
        metric=query.metric,
        interval=query.interval,
        points=[
            Point(start=start, value=value)
            for start, value in zip(buckets.starts, values, strict=True)
        ],
    )
