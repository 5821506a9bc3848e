"""Reports: gather the sums (``repository``), derive the metrics (``metrics``), shape rows.

Row rules (CONTRACT "Report ranges"): events count by ``occurred_at`` in ``[from, to)``;
orders and GMV come from the stored credits of the chosen model whose order was paid in the
range; spend comes from the catalog's per-day spend for the local days (tenant timezone)
that begin in the range. A row exists for every ad/content with events, credits or spend in
the range; ``include_inactive`` adds the rest of the catalog read model with zeros. Rows are
sorted by GMV descending, then id.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.reports import metrics, repository
from services.attribution.reports.buckets import Interval, make_buckets, spend_days
from services.attribution.reports.metrics import ZERO, Totals
from services.attribution.reports.params import Common
from services.attribution.settings.service import Rules
from shared.schemas import format_utc

AD_FORMATS = ("native", "pre_roll", "overlay", "banner")
AD_EVENT_TYPES = ("impression", "view", "view_complete", "click")
CONTENT_EVENT_TYPES = ("impression", "view", "view_complete", "like", "comment", "share", "click")
CONTENT_KINDS = ("video", "live")
METRIC_EVENT_TYPES = {"impressions": "impression", "views": "view", "clicks": "click"}
METRICS = ("impressions", "views", "clicks", "orders", "gmv")
LISTED_IDS = 10  # ids named in one warning before "and N more"

Row = dict[str, Any]


@dataclass(slots=True)
class Report:
    """A report ready to encode: ``rows`` hold ints, floats, Decimals (money) and None."""

    currency: str | None
    model: str
    timezone: str
    start: dt.datetime
    end: dt.datetime
    rows: list[Row]
    by_format: list[Row] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def header(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "model": self.model,
            "timezone": self.timezone,
            "from": format_utc(self.start),
            "to": format_utc(self.end),
        }


def _name_ids(ids: Iterable[str]) -> str:
    ordered = sorted(ids)
    named = ", ".join(ordered[:LISTED_IDS])
    if len(ordered) > LISTED_IDS:
        named += f" and {len(ordered) - LISTED_IDS} more"
    return named


def _totals_from_events(totals: Totals, sums: repository.EventSums | None) -> None:
    if sums is None:
        return
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


def _sort(rows: list[Row], key: str) -> list[Row]:
    return sorted(rows, key=lambda row: (-row["gmv"], row[key]))


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
        total = sum((sums.amount for _, sums in entries), ZERO)
        days = sum(sums.rows for _, sums in entries)
        where = f", which is in {currency}" if currency else ""
        warnings.append(
            f"Spend in {other} is left out of this report{where}: "
            f"{metrics.money_text(metrics.money(total, other))} {other} over {days} ad-day(s) "
            f"on {_name_ids(ad for ad, _ in entries)}."
        )
    return currency, kept, {ad for ad, _ in spend}, warnings


# --- ads ----------------------------------------------------------------------------------


def _metric_columns(t: Totals, currency: str | None) -> Row:
    return {
        "impressions": t.impressions,
        "views": t.views,
        "completions": t.completions,
        "completion_rate": metrics.completion_rate(t),
        "clicks": t.clicks,
        "ctr": metrics.ctr(t),
        "orders": metrics.rounded_orders(t.orders),
        "gmv": metrics.money(t.gmv, currency),
        "cvr": metrics.cvr(t),
        "spend": metrics.money(t.spend, currency),
        "cpm": metrics.cpm(t, currency),
        "cpc": metrics.cpc(t, currency),
        "cpa": metrics.cpa(t, currency),
        "roas": metrics.roas(t),
    }


async def ads_report(
    session: AsyncSession,
    tenant_id: str,
    rules: Rules,
    query: Common,
    *,
    campaign_id: str | None,
) -> Report:
    await repository.begin_snapshot(session)
    tz = ZoneInfo(rules.timezone)
    only = repository.campaign_ads(tenant_id, campaign_id) if campaign_id else None
    catalog = await repository.ads_catalog(session, tenant_id, campaign_id)
    events = await repository.event_sums(
        session,
        tenant_id,
        key="ad_id",
        start=query.start,
        end=query.end,
        types=AD_EVENT_TYPES,
        only=only,
    )
    credits = await repository.ad_credits(
        session, tenant_id, model=query.model, start=query.start, end=query.end, only=only
    )
    days = spend_days(query.start, query.end, tz)
    spend = (
        await repository.ad_spend(
            session, tenant_id, first_day=days[0], last_day=days[1], only=only
        )
        if days
        else {}
    )
    currency, spend_by_ad, spent_ads, warnings = settle_spend(rules.currency, spend)

    ids = set(events) | set(credits) | spent_ads
    if query.include_inactive:
        ids |= set(catalog)
    unknown = sorted(ad for ad in ids if ad not in catalog)
    if unknown:
        warnings.append(
            f"{len(unknown)} ad(s) seen in events, credits or spend are not in the catalog "
            f"read model yet: {_name_ids(unknown)}; their campaign, content and format are "
            "null (POST /v1/sync pulls the catalog now)."
        )

    rows: list[Row] = []
    format_totals: dict[str | None, Totals] = {fmt: Totals() for fmt in AD_FORMATS}
    for ad_id in ids:
        totals = Totals()
        _totals_from_events(totals, events.get(ad_id))
        credit = credits.get(ad_id)
        if credit is not None:
            totals.orders = credit.share
            totals.gmv = credit.amount
        totals.spend = spend_by_ad.get(ad_id, ZERO)
        info = catalog.get(ad_id)
        fmt = info.format if info is not None else None
        format_totals.setdefault(fmt, Totals()).add(totals)
        rows.append(
            {
                "ad_id": ad_id,
                "campaign_id": info.campaign_id if info else None,
                "content_id": info.content_id if info else None,
                "format": fmt,
                **_metric_columns(totals, currency),
            }
        )
    by_format = [
        {"format": fmt, **_metric_columns(totals, currency)}
        for fmt, totals in format_totals.items()
    ]
    return Report(
        currency=currency,
        model=query.model,
        timezone=rules.timezone,
        start=query.start,
        end=query.end,
        rows=_sort(rows, "ad_id"),
        by_format=by_format,
        warnings=warnings,
    )


# --- contents -----------------------------------------------------------------------------


async def contents_report(
    session: AsyncSession,
    tenant_id: str,
    rules: Rules,
    query: Common,
    *,
    kind: str | None,
    platform: str | None,
    account_id: str | None,
) -> Report:
    await repository.begin_snapshot(session)
    currency = rules.currency
    only = repository.matching_contents(
        tenant_id, kind=kind, platform=platform, account_id=account_id
    )
    catalog = await repository.contents_catalog(session, tenant_id, only)
    events = await repository.event_sums(
        session,
        tenant_id,
        key="content_id",
        start=query.start,
        end=query.end,
        types=CONTENT_EVENT_TYPES,
        only=only,
        watch=True,
        viewers=True,
    )
    credits = await repository.content_credits(
        session, tenant_id, model=query.model, start=query.start, end=query.end, only=only
    )
    ids = set(events) | set(credits)
    if query.include_inactive:
        ids |= set(catalog)
    warnings: list[str] = []
    unknown = sorted(content for content in ids if content not in catalog)
    if unknown:
        warnings.append(
            f"{len(unknown)} content(s) seen in events or credits are not in the catalog read "
            f"model yet: {_name_ids(unknown)}; their kind, platform and account are null "
            "(POST /v1/sync pulls the catalog now)."
        )

    rows: list[Row] = []
    for content_id in ids:
        totals = Totals()
        sums = events.get(content_id)
        _totals_from_events(totals, sums)
        credit = credits.get(content_id)
        if credit is not None:
            totals.orders = credit[0].share
            totals.gmv = credit[0].amount
            totals.direct_gmv = credit[1]
        info = catalog.get(content_id)
        gmv = metrics.money(totals.gmv, currency)
        direct = metrics.money(totals.direct_gmv, currency)
        rows.append(
            {
                "content_id": content_id,
                "kind": info.kind if info else None,
                "platform": info.platform if info else None,
                "account_id": info.account_id if info else None,
                "impressions": totals.impressions,
                "views": totals.views,
                "unique_viewers": sums.unique_viewers if sums else 0,
                "completion_rate": metrics.completion_rate(totals),
                "avg_watch_seconds": metrics.avg_watch_seconds(totals),
                "likes": totals.likes,
                "comments": totals.comments,
                "shares": totals.shares,
                "engagement_rate": metrics.engagement_rate(totals),
                "clicks": totals.clicks,
                "ctr": metrics.ctr(totals),
                "orders": metrics.rounded_orders(totals.orders),
                "gmv": gmv,
                "gpm": metrics.gpm(totals, currency),
                "direct_gmv": direct,
                "indirect_gmv": metrics.money(gmv - direct, currency),
            }
        )
    return Report(
        currency=currency,
        model=query.model,
        timezone=rules.timezone,
        start=query.start,
        end=query.end,
        rows=_sort(rows, "content_id"),
        warnings=warnings,
    )


# --- time series --------------------------------------------------------------------------


@dataclass(slots=True)
class Series:
    metric: str
    interval: Interval
    timezone: str
    currency: str | None
    model: str
    start: dt.datetime
    end: dt.datetime
    points: list[Row]

    def header(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "interval": self.interval,
            "timezone": self.timezone,
            "currency": self.currency,
            "model": self.model,
            "from": format_utc(self.start),
            "to": format_utc(self.end),
        }


async def timeseries(
    session: AsyncSession,
    tenant_id: str,
    rules: Rules,
    query: Common,
    *,
    metric: str,
    interval: Interval,
    content_id: str | None,
    ad_id: str | None,
) -> Series:
    """One metric per local hour/day bucket; every bucket present, in order of start."""
    await repository.begin_snapshot(session)
    tz = ZoneInfo(rules.timezone)
    buckets = make_buckets(query.start, query.end, tz, interval)
    values: list[Any]
    if metric in METRIC_EVENT_TYPES:
        counts = [0] * len(buckets.starts)
        per_slot = await repository.event_series(
            session,
            tenant_id,
            event_type=METRIC_EVENT_TYPES[metric],
            start=query.start,
            end=query.end,
            origin=buckets.origin,
            slot_seconds=buckets.slot_seconds,
            content_id=content_id,
            ad_id=ad_id,
        )
        for slot, count in per_slot.items():
            counts[buckets.bucket_of_slot(slot)] += count
        values = list(counts)
    else:
        credit_slots = await repository.credit_series(
            session,
            tenant_id,
            model=query.model,
            start=query.start,
            end=query.end,
            origin=buckets.origin,
            slot_seconds=buckets.slot_seconds,
            content_id=content_id,
            ad_id=ad_id,
        )
        amounts = [ZERO] * len(buckets.starts)
        shares: list[list[float]] = [[] for _ in buckets.starts]
        for slot, sums in credit_slots.items():
            index = buckets.bucket_of_slot(slot)
            amounts[index] += sums.amount
            shares[index].append(sums.share)
        if metric == "gmv":
            values = [metrics.money(amount, rules.currency) for amount in amounts]
        else:
            values = [metrics.rounded_orders(math.fsum(parts)) for parts in shares]
    points = [
        {"start": format_utc(start), "value": value}
        for start, value in zip(buckets.starts, values, strict=True)
    ]
    return Series(
        metric=metric,
        interval=interval,
        timezone=rules.timezone,
        currency=rules.currency,
        model=query.model,
        start=query.start,
        end=query.end,
        points=points,
    )
