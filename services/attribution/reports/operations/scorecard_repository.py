"""The rows the 4C scorecard adds up, per item of one level (account, content or campaign).

An event, credit or ad-day belongs to an item by its catalog: to a content by its
``content_id``; to an account by that content's ``account_id``; to a campaign by its ad's
``campaign_id`` (events and credits by their ``ad_id``). Spend goes from its ad to the ad's
content (and that content's account) or campaign. Rows whose item is unknown are left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy import Select, and_, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.attribution import models
from services.attribution.events.repository import events_in
from services.attribution.reports.repository import (
    Expr,
    MoneySums,
    catalog_row,
    grouped_money,
    while_live,
)
from shared.vocabulary import INTERACTION_TYPES, EventType

Level = Literal["account", "content", "campaign"]
LEVELS: tuple[Level, ...] = get_args(Level)
#: The events the scorecard counts: all but a live room's enter/exit and the interactions
#: (replies and dms, which the interactions report answers for).
SCORED_EVENT_TYPES: tuple[str, ...] = tuple(
    kind
    for kind in get_args(EventType)
    if kind not in ("live_enter", "live_exit") and kind not in INTERACTION_TYPES
)


@dataclass(frozen=True, slots=True)
class Period:
    """What the scorecard adds up over: one tenant's items of one level, in ``[start, end)``,
    with the orders credited by one attribution model."""

    tenant_id: str
    level: Level
    model: str
    start: dt.datetime
    end: dt.datetime


def _keyed(
    level: Level, query: Select[Any], tenant: Expr, content_id: Expr, ad_id: Expr
) -> tuple[Select[Any], Expr]:
    """``query`` joined to the catalog that names each row's item, and the item's column."""
    if level == "content":
        return query, content_id
    if level == "account":
        content = aliased(models.CatalogContent)
        joined = query.join(content, catalog_row(content, tenant, content_id))
        return joined, content.account_id
    ad = aliased(models.CatalogAd)
    return query.join(ad, catalog_row(ad, tenant, ad_id)), ad.campaign_id


def _events(period: Period, types: Sequence[str]) -> tuple[Select[Any], Expr]:
    query, key = _keyed(
        period.level,
        select(models.Event.event_id),
        models.Event.tenant_id,
        models.Event.content_id,
        models.Event.ad_id,
    )
    return (
        query.where(
            *events_in(period.tenant_id, types, period.start, period.end), key.is_not(None)
        ),
        key,
    )


async def event_counts(session: AsyncSession, period: Period) -> dict[tuple[str, str], int]:
    """Events per (item, type) in ``[start, end)``."""
    query, key = _events(period, SCORED_EVENT_TYPES)
    rows = await session.execute(
        query.with_only_columns(key, models.Event.type, func.count()).group_by(
            key, models.Event.type
        )
    )
    return {(str(item), str(kind)): int(count) for item, kind, count in rows}


async def carting_viewers(session: AsyncSession, period: Period) -> list[tuple[str, str]]:
    """Distinct (item, user) of the range's ``add_to_cart`` events."""
    query, key = _events(period, ["add_to_cart"])
    rows = await session.execute(query.with_only_columns(key, models.Event.user_id).distinct())
    return [(str(item), str(user)) for item, user in rows]


async def replied_comments(
    session: AsyncSession, period: Period
) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """(item, comment time, its first reply's time) of the range's replied comments."""
    query, key = _events(period, ["comment"])
    query = query.join(
        models.Interaction,
        and_(
            models.Interaction.tenant_id == models.Event.tenant_id,
            models.Interaction.reply_to == models.Event.event_id,
            models.Interaction.type == "reply",
        ),
    )
    rows = await session.execute(
        query.with_only_columns(
            key, models.Event.occurred_at, func.min(models.Interaction.occurred_at)
        ).group_by(key, models.Event.event_id, models.Event.occurred_at)
    )
    return [(str(item), asked, answered) for item, asked, answered in rows]


def _credits(period: Period) -> tuple[Select[Any], Expr]:
    query, key = _keyed(
        period.level,
        select(models.Credit.order_id).select_from(models.Credit),
        models.Credit.tenant_id,
        models.Credit.content_id,
        models.Credit.ad_id,
    )
    return (
        query.where(
            models.Credit.tenant_id == period.tenant_id,
            models.Credit.model == period.model,
            models.Credit.paid_at >= period.start,
            models.Credit.paid_at < period.end,
            key.is_not(None),
        ),
        key,
    )


async def credit_sums(
    session: AsyncSession, period: Period
) -> dict[tuple[str, bool, bool], MoneySums]:
    """Σ credited amount and Σ order_share per (item, paid while live, product-card click).

    Paid while live: the credited content is a live room that had started and not yet ended
    at the order's payment. Product-card click: the credit's touch is a click on a content
    that the catalog links to the credited product with ``placement = product_card``.
    """
    query, key = _credits(period)
    room = aliased(models.CatalogContent)
    query = query.outerjoin(
        room, catalog_row(room, models.Credit.tenant_id, models.Credit.content_id)
    )
    card = and_(
        models.Credit.touch == "click",
        exists().where(
            models.CatalogContentProduct.tenant_id == models.Credit.tenant_id,
            models.CatalogContentProduct.content_id == models.Credit.content_id,
            models.CatalogContentProduct.product_id == models.Credit.product_id,
            models.CatalogContentProduct.placement == "product_card",
        ),
    )
    direct = case((while_live(room, models.Credit.paid_at), 1), else_=0).label("direct")
    through_card = case((card, 1), else_=0).label("card")
    sums = await grouped_money(
        session, query, [key, direct, through_card], models.Credit.amount, models.Credit.order_share
    )
    return {
        (str(item), bool(is_direct), bool(is_card)): value
        for (item, is_direct, is_card), value in sums.items()
    }


async def order_times(
    session: AsyncSession, period: Period
) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """(item, paid time, the order's first touch) of each order credited to an item.

    The first touch is the earliest ``touch_at`` of the order's ``first_touch`` credits.
    """
    first = (
        select(
            models.Credit.order_id.label("order_id"),
            func.min(models.Credit.touch_at).label("touch_at"),
        )
        .where(
            models.Credit.tenant_id == period.tenant_id,
            models.Credit.model == "first_touch",
            models.Credit.paid_at >= period.start,
            models.Credit.paid_at < period.end,
        )
        .group_by(models.Credit.order_id)
        .subquery()
    )
    query, key = _credits(period)
    query = query.join(first, first.c.order_id == models.Credit.order_id)
    rows = await session.execute(
        query.with_only_columns(key, models.Credit.paid_at, first.c.touch_at)
        .group_by(key, models.Credit.order_id, models.Credit.paid_at, first.c.touch_at)
        .order_by(key, models.Credit.order_id)
    )
    return [(str(item), paid, touched) for item, paid, touched in rows]


async def buyers(session: AsyncSession, period: Period) -> list[tuple[str, str]]:
    """Distinct (item, buyer) of the orders credited to an item."""
    query, key = _credits(period)
    query = query.join(
        models.Order,
        and_(
            models.Order.tenant_id == models.Credit.tenant_id,
            models.Order.order_id == models.Credit.order_id,
        ),
    ).where(models.Order.buyer_id.is_not(None))
    rows = await session.execute(query.with_only_columns(key, models.Order.buyer_id).distinct())
    return [(str(item), str(buyer)) for item, buyer in rows]


async def spend(
    session: AsyncSession, tenant_id: str, level: Level, first_day: dt.date, last_day: dt.date
) -> dict[tuple[str, str], MoneySums]:
    """Σ spend per (item, currency) over the local days ``first_day``…``last_day``."""
    ad = aliased(models.CatalogAd)
    query = select(models.CatalogAdSpend.ad_id).join(
        ad, catalog_row(ad, models.CatalogAdSpend.tenant_id, models.CatalogAdSpend.ad_id)
    )
    key: Expr
    if level == "campaign":
        key = ad.campaign_id
    elif level == "content":
        key = ad.content_id
    else:
        content = aliased(models.CatalogContent)
        query = query.join(content, catalog_row(content, ad.tenant_id, ad.content_id))
        key = content.account_id
    query = query.where(
        models.CatalogAdSpend.tenant_id == tenant_id,
        models.CatalogAdSpend.day >= first_day,
        models.CatalogAdSpend.day <= last_day,
    )
    sums = await grouped_money(
        session, query, [key, models.CatalogAdSpend.currency], models.CatalogAdSpend.amount
    )
    return {(str(item), str(currency)): value for (item, currency), value in sums.items()}


async def names(session: AsyncSession, tenant_id: str, level: Level) -> dict[str, str | None]:
    """Each catalog item's display name: an account's name (else handle), a content's title,
    a campaign's name."""
    query: Select[Any]
    if level == "account":
        query = select(
            models.CatalogAccount.id,
            func.coalesce(models.CatalogAccount.display_name, models.CatalogAccount.handle),
        ).where(models.CatalogAccount.tenant_id == tenant_id)
    elif level == "content":
        query = select(models.CatalogContent.id, models.CatalogContent.title).where(
            models.CatalogContent.tenant_id == tenant_id
        )
    else:
        query = select(models.CatalogCampaign.id, models.CatalogCampaign.name).where(
            models.CatalogCampaign.tenant_id == tenant_id
        )
    return {str(item): name for item, name in await session.execute(query)}
