"""The interactions report: the rows from ``repository``, the figures from ``interactions``."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.reports.buckets import spend_days
from services.attribution.reports.operations import (
    activities_repository,
    repository,
    scorecard_repository,
)
from services.attribution.reports.operations.activities import (
    ACTIVITY_EVENT_TYPES,
    Figures,
    figures,
    relative_change,
    windows,
)
from services.attribution.reports.operations.interactions import (
    Comment,
    Tally,
    quantile,
    rate,
    tally,
)
from services.attribution.reports.operations.query import InteractionsQuery
from services.attribution.reports.operations.schemas import (
    AccountInteractions,
    ActivitiesReport,
    ActivityChange,
    ActivityFigures,
    ActivityRow,
    CommentMetrics,
    ContentInteractions,
    DayInteractions,
    DmMetrics,
    InteractionsReport,
    InteractionTotals,
    MoneyScore,
    RateScore,
    Scorecard,
    ScorecardItem,
    UnansweredComment,
    UnansweredPage,
    UnmatchedReply,
)
from services.attribution.reports.operations.scorecard import (
    GROUPS,
    METRICS,
    ItemSums,
    Score,
    distinct_pairs,
    scores,
    seconds_between,
)
from services.attribution.reports.operations.scorecard_repository import Level, Period
from services.attribution.reports.query import Scope
from services.attribution.reports.repository import MoneySums
from services.attribution.reports.service import NO_CURRENCY_PLACES, settle_spend
from services.attribution.settings.service import Rules
from shared.currencies import minor_units
from shared.db import from_epoch_us, to_epoch_us
from shared.errors import UnprocessableEntity
from shared.pagination import decode_cursor, encode_cursor


def _comment_metrics(t: Tally) -> dict[str, Any]:
    return CommentMetrics(
        comments=t.comments,
        replied_within_1h=t.replied_1h,
        replied_within_24h=t.replied_24h,
        reply_rate_1h=rate(t.replied_1h, t.comments),
        reply_rate_24h=rate(t.replied_24h, t.comments),
        median_reply_seconds=quantile(t.reply_seconds, 0.5),
        p90_reply_seconds=quantile(t.reply_seconds, 0.9),
        unanswered_over_24h=t.unanswered_24h,
    ).model_dump()


def _dm_metrics(t: Tally) -> dict[str, Any]:
    return DmMetrics(
        dms=t.dms,
        dms_replied=t.dms_replied,
        dm_reply_rate=rate(t.dms_replied, t.dms),
        median_dm_reply_seconds=quantile(t.dm_reply_seconds, 0.5),
    ).model_dump()


def _after(comments: list[Comment], cursor: str | None) -> list[Comment]:
    if cursor is None:
        return comments
    key = decode_cursor(cursor)
    if not (isinstance(key, list) and len(key) == 2 and isinstance(key[0], int)):
        raise UnprocessableEntity(
            "The cursor is not valid; pass back `unanswered.next_cursor` unchanged.",
            errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
        )
    after = (from_epoch_us(key[0]), str(key[1]))
    return [c for c in comments if (c.occurred_at, c.event_id) > after]


async def interactions_report(
    session: AsyncSession,
    tenant_id: str,
    rules: Rules,
    covered: Scope,
    query: InteractionsQuery,
    *,
    now: dt.datetime,
) -> InteractionsReport:
    start, end = covered.start, covered.end
    comments = await repository.comments(
        session, tenant_id, start, end, account_id=query.account_id, content_id=query.content_id
    )
    replies = await repository.first_replies(
        session, tenant_id, start, end, content_id=query.content_id
    )
    messages, dm_replies = await repository.dms(
        session, tenant_id, start, end, account_id=query.account_id
    )
    unmatched = await repository.unmatched(
        session, tenant_id, start, end, account_id=query.account_id
    )
    tz = ZoneInfo(rules.timezone)
    tallies = tally(comments, replies, messages, dm_replies, now=now, tz=tz)
    content_accounts = {c.content_id: c.account_id for c in comments}
    waiting = _after(tallies.unanswered, query.cursor)
    page = waiting[: query.limit]
    next_cursor = (
        encode_cursor([to_epoch_us(page[-1].occurred_at), page[-1].event_id])
        if len(waiting) > query.limit
        else None
    )
    return InteractionsReport.model_validate(
        {
            "from": start,
            "to": end,
            "timezone": rules.timezone,
            "totals": InteractionTotals(
                **_comment_metrics(tallies.total), **_dm_metrics(tallies.total)
            ),
            "accounts": [
                AccountInteractions(account_id=key, **_comment_metrics(t), **_dm_metrics(t))
                for key, t in sorted(tallies.accounts.items())
            ],
            "contents": [
                ContentInteractions(
                    content_id=key, account_id=content_accounts.get(key), **_comment_metrics(t)
                )
                for key, t in sorted(tallies.contents.items())
            ],
            "days": [
                DayInteractions(
                    day=day,
                    comments=t.comments,
                    replied_within_1h=t.replied_1h,
                    replied_within_24h=t.replied_24h,
                    reply_rate_24h=rate(t.replied_24h, t.comments),
                    dms=t.dms,
                    dms_replied=t.dms_replied,
                )
                for day, t in sorted(tallies.days.items())
            ],
            "unanswered": UnansweredPage(
                items=[
                    UnansweredComment(
                        event_id=c.event_id,
                        content_id=c.content_id,
                        account_id=c.account_id,
                        user_id=c.user_id,
                        occurred_at=c.occurred_at,
                        age_seconds=(now - c.occurred_at).total_seconds(),
                    )
                    for c in page
                ],
                next_cursor=next_cursor,
            ),
            "unmatched_replies": [
                UnmatchedReply(
                    event_id=row.event_id,
                    type=row.type,
                    reply_to=row.reply_to or "",
                    account_id=row.account_id,
                    occurred_at=row.occurred_at,
                )
                for row in unmatched
            ],
        }
    )


# --- the 4C scorecard -----------------------------------------------------------------------


async def _period_sums(
    session: AsyncSession, period: Period, tz: ZoneInfo
) -> tuple[dict[str, ItemSums], dict[tuple[str, str], MoneySums]]:
    """Each item's sums over the period but spend, and its spend per currency."""
    sums: defaultdict[str, ItemSums] = defaultdict(ItemSums)
    for (item, kind), count in (await scorecard_repository.event_counts(session, period)).items():
        sums[item].counts[kind] = count
    orders: defaultdict[str, list[float]] = defaultdict(list)
    card_orders: defaultdict[str, list[float]] = defaultdict(list)
    credits = await scorecard_repository.credit_sums(session, period)
    for (item, direct, card), credit in credits.items():
        totals = sums[item]
        totals.gmv += credit.amount
        orders[item].append(credit.share)
        if direct:
            totals.direct_gmv += credit.amount
        if card:
            card_orders[item].append(credit.share)
    for item, shares in orders.items():
        sums[item].orders = math.fsum(shares)
        sums[item].card_orders = math.fsum(card_orders.get(item, []))
    for item, paid, touched in await scorecard_repository.order_times(session, period):
        sums[item].seconds_to_order.append(seconds_between(paid, touched))
    carting = distinct_pairs(await scorecard_repository.carting_viewers(session, period))
    bought = distinct_pairs(await scorecard_repository.buyers(session, period))
    for item, viewers in carting.items():
        sums[item].carting_viewers = len(viewers)
        sums[item].carting_buyers = len(viewers & bought.get(item, set()))
    for item, asked, answered in await scorecard_repository.replied_comments(session, period):
        sums[item].replied_comments += 1
        sums[item].reply_seconds.append(seconds_between(answered, asked))
    days = spend_days(period.start, period.end, tz)
    spend = (
        await scorecard_repository.spend(session, period.tenant_id, period.level, *days)
        if days
        else {}
    )
    return dict(sums), spend


def _with_spend(
    sums: dict[str, ItemSums], spend: dict[tuple[str, str], MoneySums], currency: str | None
) -> dict[str, ItemSums]:
    """``sums`` with each item's spend in ``currency`` (an item with spend only is added)."""
    result = dict(sums)
    for (item, spend_currency), value in spend.items():
        totals = result.setdefault(item, ItemSums())
        if spend_currency == currency:
            totals.spend += value.amount
    return result


def _decimal(value: float | Decimal | None) -> Decimal | None:
    return value if value is None or isinstance(value, Decimal) else Decimal(repr(value))


def _float(value: float | Decimal | None) -> float | None:
    return None if value is None else float(value)


def _score(score: Score, money: bool) -> RateScore | MoneyScore:
    if money:
        return MoneyScore(
            value=_decimal(score.value),
            percentile=score.percentile,
            previous=_decimal(score.previous),
            change=score.change,
        )
    return RateScore(
        value=_float(score.value),
        percentile=score.percentile,
        previous=_float(score.previous),
        change=score.change,
    )


async def scorecard_report(
    session: AsyncSession, tenant_id: str, rules: Rules, covered: Scope, level: Level
) -> Scorecard:
    start, end = covered.start, covered.end
    previous_start = start - (end - start)
    tz = ZoneInfo(rules.timezone)
    model = rules.default_model
    now, now_spend = await _period_sums(session, Period(tenant_id, level, model, start, end), tz)
    before, before_spend = await _period_sums(
        session, Period(tenant_id, level, model, previous_start, start), tz
    )
    currency, _, _, warnings = settle_spend(rules.currency, now_spend)
    places = NO_CURRENCY_PLACES if currency is None else minor_units(currency)
    figures = scores(
        _with_spend(now, now_spend, currency), _with_spend(before, before_spend, currency), places
    )
    names = await scorecard_repository.names(session, tenant_id, level)
    items = []
    for item in sorted(figures):
        groups: dict[str, dict[str, RateScore | MoneyScore]] = {group: {} for group in GROUPS}
        for spec in METRICS:
            groups[spec.group][spec.name] = _score(figures[item][spec.name], spec.money)
        items.append(ScorecardItem.model_validate({"id": item, "name": names.get(item), **groups}))
    return Scorecard.model_validate(
        {
            "level": level,
            "currency": currency,
            "model": model,
            "timezone": rules.timezone,
            "from": start,
            "to": end,
            "previous_from": previous_start,
            "previous_to": start,
            "items": items,
            "warnings": warnings,
        }
    )


# --- engagement activities --------------------------------------------------------------------


def _activity_figures(f: Figures) -> ActivityFigures:
    """A window's figures as the report says them (the schema names the fields it takes)."""
    return ActivityFigures.model_validate(f, from_attributes=True)


async def activities_report(
    session: AsyncSession, tenant_id: str, covered: Scope, *, now: dt.datetime
) -> ActivitiesReport:
    campaigns = await activities_repository.activity_campaigns(
        session, tenant_id, covered.start, covered.end
    )
    contents = await activities_repository.campaign_contents(
        session, tenant_id, [c.id for c in campaigns]
    )
    rows: list[ActivityRow] = []
    warnings: list[str] = []
    for campaign in campaigns:
        ids = contents.get(campaign.id, [])
        if not ids:
            warnings.append(
                f"Campaign {campaign.id} has no ads, so no contents to measure: add an ad "
                "naming the content the activity runs in (PUT /v1/ads/{ad_id} in the catalog)."
            )
        during, before = windows(campaign.starts_at, campaign.ends_at, now)
        counted = [
            figures(
                await activities_repository.content_event_counts(
                    session, tenant_id, ids, window.start, window.end, ACTIVITY_EVENT_TYPES
                )
            )
            for window in (during, before)
        ]
        now_figures, before_figures = counted
        rows.append(
            ActivityRow.model_validate(
                {
                    "campaign_id": campaign.id,
                    "name": campaign.name,
                    "activity": campaign.activity,
                    "starts_at": campaign.starts_at,
                    "ends_at": campaign.ends_at,
                    "content_ids": ids,
                    "during_from": during.start,
                    "during_to": during.end,
                    "before_from": before.start,
                    "during": _activity_figures(now_figures),
                    "before": _activity_figures(before_figures),
                    "change": ActivityChange(
                        engagement_rate=relative_change(
                            now_figures.engagement_rate, before_figures.engagement_rate
                        ),
                        comments_per_1000_views=relative_change(
                            now_figures.comments_per_1000_views,
                            before_figures.comments_per_1000_views,
                        ),
                        follows=relative_change(now_figures.follows, before_figures.follows),
                    ),
                }
            )
        )
    return ActivitiesReport.model_validate(
        {"from": covered.start, "to": covered.end, "activities": rows, "warnings": warnings}
    )
