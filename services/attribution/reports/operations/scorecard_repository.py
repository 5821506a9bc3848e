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

from services.attribution.events.repository import events_in
from services.attribution.models import (
    CatalogAccount,
    CatalogAd,
    CatalogAdSpend,
    CatalogCampaign,
    CatalogContent,
    CatalogContentProduct,
    Credit,
    Event,
    Interaction,
    Order,
)
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
        content = aliased(CatalogContent)
        joined = query.join(content, catalog_row(content, tenant, content_id))
        return joined, content.account_id
    ad = aliased(CatalogAd)
    return query.join(ad, catalog_row(ad, tenant, ad_id)), ad.campaign_id


def _events(period: Period, types: Sequence[str]) -> tuple[Select[Any], Expr]:
    query, key = _keyed(
        period.level, select(Event.event_id), Event.tenant_id, Event.content_id, Event.ad_id
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
        query.with_only_columns(key, Event.type, func.count()).group_by(key, Event.type)
    )
    return {(str(item), str(kind)): int(count) for item, kind, count in rows}


async def carting_viewers(session: AsyncSession, period: Period) -> list[tuple[str, str]]:
    """Distinct (item, user) of the range's ``add_to_cart`` events."""
    query, key = _events(period, ["add_to_cart"])
    rows = await session.execute(query.with_only_columns(key, Event.user_id).distinct())
    return [(str(item), str(user)) for item, user in rows]


async def replied_comments(
    session: AsyncSession, period: Period
) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """(item, comment time, its first reply's time) of the range's replied comments."""
    query, key = _events(period, ["comment"])
    query = query.join(
        Interaction,
        and_(
            Interaction.tenant_id == Event.tenant_id,
            Interaction.reply_to == Event.event_id,
            Interaction.type == "reply",
        ),
    )
    rows = await session.execute(
        query.with_only_columns(key, Event.occurred_at, func.min(Interaction.occurred_at)).group_by(
            key, Event.event_id, Event.occurred_at
        )
    )
    return [(str(item), asked, answered) for item, asked, answered in rows]


def _credits(period: Period) -> tuple[Select[Any], Expr]:
    query, key = _keyed(
        period.level,
        select(Credit.order_id).select_from(Credit),
        Credit.tenant_id,
        Credit.content_id,
        Credit.ad_id,
    )
    return (
        query.where(
            Credit.tenant_id == period.tenant_id,
            Credit.model == period.model,
            Credit.paid_at >= period.start,
            Credit.paid_at < period.end,
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
    room = aliased(CatalogContent)
    query = query.outerjoin(room, catalog_row(room, Credit.tenant_id, Credit.content_id))
    card = and_(
        Credit.touch == "click",
        exists().where(
            CatalogContentProduct.tenant_id == Credit.tenant_id,
            CatalogContentProduct.content_id == Credit.content_id,
            CatalogContentProduct.product_id == Credit.product_id,
            CatalogContentProduct.placement == "product_card",
        ),
    )
    direct = case((while_live(room, Credit.paid_at), 1), else_=0).label("direct")
    through_card = case((card, 1), else_=0).label("card")
    sums = await grouped_money(
        session, query, [key, direct, through_card], Credit.amount, Credit.order_share
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
        select(Credit.order_id.label("order_id"), func.min(Credit.touch_at).label("touch_at"))
        .where(
            Credit.tenant_id == period.tenant_id,
            Credit.model == "first_touch",
            Credit.paid_at >= period.start,
            Credit.paid_at < period.end,
        )
        .group_by(Credit.order_id)
        .subquery()
    )
    query, key = _credits(period)
    query = query.join(first, first.c.order_id == Credit.order_id)
    rows = await session.execute(
        query.with_only_columns(key, Credit.paid_at, first.c.touch_at)
        .group_by(key, Credit.order_id, Credit.paid_at, first.c.touch_at)
        .order_by(key, Credit.order_id)
    )
    return [(str(item), paid, touched) for item, paid, touched in rows]


async def buyers(session: AsyncSession, period: Period) -> list[tuple[str, str]]:
    """Distinct (item, buyer) of the orders credited to an item."""
    query, key = _credits(period)
    query = query.join(
        Order, and_(Order.tenant_id == Credit.tenant_id, Order.order_id == Credit.order_id)
    ).where(Order.buyer_id.is_not(None))
    rows = await session.execute(query.with_only_columns(key, Order.buyer_id).distinct())
    return [(str(item), str(buyer)) for item, buyer in rows]


async def spend(
    session: AsyncSession, tenant_id: str, level: Level, first_day: dt.date, last_day: dt.date
) -> dict[tuple[str, str], MoneySums]:
    """Σ spend per (item, currency) over the local days ``first_day``…``last_day``."""
    ad = aliased(CatalogAd)
    query = select(CatalogAdSpend.ad_id).join(
        ad, catalog_row(ad, CatalogAdSpend.tenant_id, CatalogAdSpend.ad_id)
    )
    key: Expr
    if level == "campaign":
        key = ad.campaign_id
    elif level == "content":
        key = ad.content_id
    else:
        content = aliased(CatalogContent)
        query = query.join(content, catalog_row(content, ad.tenant_id, ad.content_id))
        key = content.account_id
    query = query.where(
        CatalogAdSpend.tenant_id == tenant_id,
        CatalogAdSpend.day >= first_day,
        CatalogAdSpend.day <= last_day,
    )
    sums = await grouped_money(
        session, query, [key, CatalogAdSpend.currency], CatalogAdSpend.amount
    )
    return {(str(item), str(currency)): value for (item, currency), value in sums.items()}


async def names(session: AsyncSession, tenant_id: str, level: Level) -> dict[str, str | None]:
    """Each catalog item's display name: an account's name (else handle), a content's title,
    a campaign's name."""
    query: Select[Any]
    if level == "account":
        query = select(
            CatalogAccount.id, func.coalesce(CatalogAccount.display_name, CatalogAccount.handle)
        ).where(CatalogAccount.tenant_id == tenant_id)
    elif level == "content":
        query = select(CatalogContent.id, CatalogContent.title).where(
            CatalogContent.tenant_id == tenant_id
        )
    else:
        query = select(CatalogCampaign.id, CatalogCampaign.name).where(
            CatalogCampaign.tenant_id == tenant_id
        )
    return {str(item): name for item, name in await session.execute(query)}
