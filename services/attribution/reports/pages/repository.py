"""Reads of a content's page: its catalog row, its products and the orders credited to it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.models import (
    CatalogAccount,
    CatalogContent,
    CatalogContentProduct,
    CatalogProduct,
    Credit,
)
from services.attribution.reports.repository import CreditRange, catalog_row, grouped_money


@dataclass(frozen=True, slots=True)
class ContentRecord:
    content_id: str
    title: str
    kind: str
    account_id: str
    platform: str | None
    account_handle: str | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ProductRecord:
    product_id: str
    title: str | None
    placement: str
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class OrderCredit:
    order_id: str
    paid_at: dt.datetime
    amount: Decimal
    share: float


async def content(session: AsyncSession, tenant_id: str, content_id: str) -> ContentRecord | None:
    query = (
        select(
            CatalogContent.id,
            CatalogContent.title,
            CatalogContent.kind,
            CatalogContent.account_id,
            CatalogAccount.platform,
            CatalogAccount.handle,
            CatalogContent.started_at,
            CatalogContent.ended_at,
        )
        .outerjoin(
            CatalogAccount,
            catalog_row(CatalogAccount, CatalogContent.tenant_id, CatalogContent.account_id),
        )
        .where(CatalogContent.tenant_id == tenant_id, CatalogContent.id == content_id)
    )
    row = (await session.execute(query)).first()
    return None if row is None else ContentRecord(*row)


async def products(session: AsyncSession, tenant_id: str, content_id: str) -> list[ProductRecord]:
    """The products placed in the content with their titles: pinned ones by start, then the
    rest by id."""
    query = (
        select(
            CatalogContentProduct.product_id,
            CatalogProduct.title,
            CatalogContentProduct.placement,
            CatalogContentProduct.starts_at,
            CatalogContentProduct.ends_at,
        )
        .outerjoin(
            CatalogProduct,
            catalog_row(
                CatalogProduct, CatalogContentProduct.tenant_id, CatalogContentProduct.product_id
            ),
        )
        .where(
            CatalogContentProduct.tenant_id == tenant_id,
            CatalogContentProduct.content_id == content_id,
        )
    )
    rows = [ProductRecord(*row) for row in await session.execute(query)]
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(rows, key=lambda p: (p.starts_at is None, p.starts_at or far, p.product_id))


async def credited_orders(
    session: AsyncSession, credits: CreditRange, content_id: str, ad_id: str | None
) -> list[OrderCredit]:
    """Per order paid in the range: the revenue and order share credited to the content (to
    its touches on ``ad_id`` only, when given)."""
    query = select(Credit.order_id).where(*credits.where(), Credit.content_id == content_id)
    if ad_id is not None:
        query = query.where(Credit.ad_id == ad_id)
    sums = await grouped_money(
        session, query, [Credit.order_id, Credit.paid_at], Credit.amount, Credit.order_share
    )
    found = []
    for (order_id, paid_at), value in sums.items():
        assert isinstance(paid_at, dt.datetime)
        found.append(OrderCredit(str(order_id), paid_at, value.amount, value.share))
    return found
