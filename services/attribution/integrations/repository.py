"""SQL for shop integrations and their deliveries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.models import CatalogProduct, Integration, IntegrationDelivery, OrderLine
from shared.db import insert_for

DELIVERIES = cast(Table, IntegrationDelivery.__table__)


async def get(session: AsyncSession, tenant_id: str, integration_id: str) -> Integration | None:
    return await session.get(Integration, (tenant_id, integration_id))


async def by_id(session: AsyncSession, integration_id: str) -> Integration | None:
    """The receiver's lookup: the id is globally unique, the tenant comes from the row."""
    found: Integration | None = await session.scalar(
        select(Integration).where(Integration.integration_id == integration_id)
    )
    return found


async def list_of(session: AsyncSession, tenant_id: str) -> Sequence[Integration]:
    return (
        await session.scalars(
            select(Integration)
            .where(Integration.tenant_id == tenant_id)
            .order_by(Integration.integration_id)
        )
    ).all()


async def add(session: AsyncSession, integration: Integration) -> None:
    session.add(integration)
    await session.flush()


def _of(tenant_id: str, integration_id: str) -> ColumnElement[bool]:
    """This integration's deliveries (the leading columns of their key and index)."""
    return and_(DELIVERIES.c.tenant_id == tenant_id, DELIVERIES.c.integration_id == integration_id)


async def claim_delivery(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Insert the delivery unless its key was seen: False means a duplicate."""
    insert = insert_for(session.get_bind().dialect.name)
    result = await session.execute(
        insert(DELIVERIES)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["tenant_id", "integration_id", "delivery_key"])
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def set_outcome(
    session: AsyncSession,
    tenant_id: str,
    integration_id: str,
    delivery_key: str,
    outcome: str,
    reason: str | None,
    order_id: str | None,
) -> None:
    await session.execute(
        update(DELIVERIES)
        .where(_of(tenant_id, integration_id), DELIVERIES.c.delivery_key == delivery_key)
        .values(outcome=outcome, reason=reason, order_id=order_id)
    )


async def prune(
    session: AsyncSession, tenant_id: str, integration_id: str, before: dt.datetime
) -> None:
    """Deliveries are kept for a while only: drop this integration's older ones."""
    await session.execute(
        delete(DELIVERIES).where(_of(tenant_id, integration_id), DELIVERIES.c.received_at < before)
    )


async def pending_of(
    session: AsyncSession, tenant_id: str, integration_id: str, order_id: str
) -> Sequence[IntegrationDelivery]:
    return (
        await session.scalars(
            select(IntegrationDelivery)
            .where(
                _of(tenant_id, integration_id),
                IntegrationDelivery.order_id == order_id,
                IntegrationDelivery.outcome == "pending",
            )
            .order_by(IntegrationDelivery.received_at)
        )
    ).all()


async def deliveries(
    session: AsyncSession,
    tenant_id: str,
    integration_id: str,
    since: dt.datetime,
    limit: int,
    before: tuple[dt.datetime, str] | None = None,
) -> Sequence[IntegrationDelivery]:
    """Newest first; ``before`` is the (received_at, delivery_key) of the previous page's last
    row, so a page starts strictly after it in that order."""
    query = select(IntegrationDelivery).where(
        _of(tenant_id, integration_id), IntegrationDelivery.received_at >= since
    )
    if before is not None:
        at, key = before
        query = query.where(
            or_(
                IntegrationDelivery.received_at < at,
                and_(IntegrationDelivery.received_at == at, IntegrationDelivery.delivery_key > key),
            )
        )
    return (
        await session.scalars(
            query.order_by(
                IntegrationDelivery.received_at.desc(), IntegrationDelivery.delivery_key
            ).limit(limit)
        )
    ).all()


async def unmatched_products(
    session: AsyncSession, tenant_id: str, integration_id: str
) -> Sequence[Row[Any]]:
    """Products on this shop's order lines that the catalog does not know."""
    prefix = integration_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ":%"
    return (
        await session.execute(
            select(
                OrderLine.product_id,
                func.count().label("lines"),
                func.sum(OrderLine.quantity).label("quantity"),
            )
            .outerjoin(
                CatalogProduct,
                (CatalogProduct.tenant_id == OrderLine.tenant_id)
                & (CatalogProduct.id == OrderLine.product_id),
            )
            .where(
                OrderLine.tenant_id == tenant_id,
                OrderLine.order_id.like(prefix, escape="\\"),
                CatalogProduct.id.is_(None),
            )
            .group_by(OrderLine.product_id)
            .order_by(OrderLine.product_id)
        )
    ).all()


async def external_ids(session: AsyncSession, tenant_id: str) -> Sequence[Row[Any]]:
    """(catalog product id, its shops' ids) of the tenant's products, by id."""
    return (
        await session.execute(
            select(CatalogProduct.id, CatalogProduct.external_ids)
            .where(CatalogProduct.tenant_id == tenant_id)
            .order_by(CatalogProduct.id)
        )
    ).all()
