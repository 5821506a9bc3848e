"""Attribution storage: feeds the pure engine from the database and stores its credits.

Credits are computed for every model at once and stored, so a report under any model is an
indexed read; an order is re-attributed whenever something it depends on changes (paid,
refunded, cancelled, or a late touch of its buyer arrives).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.attribution import engine
from services.attribution.catalog_sync.models import CatalogContentProduct
from services.attribution.core.metrics import ATTRIBUTION_SECONDS
from services.attribution.events.models import Event
from services.attribution.orders.models import Credit, Order, OrderLine
from services.attribution.settings.service import Rules

TOUCH_TYPES = tuple(sorted(engine.CLICK_TYPES | engine.VIEW_TYPES))


def engine_rules(rules: Rules) -> engine.Rules:
    return engine.Rules(
        click_window_seconds=rules.click_window_seconds,
        view_window_seconds=rules.view_window_seconds,
        match="any" if rules.match == "any" else "product",
    )


async def buyer_touches(
    session: AsyncSession,
    tenant_id: str,
    *,
    buyer_id: str | None,
    click_ids: Sequence[str],
    order_time: dt.datetime,
    lookback_seconds: int,
) -> list[engine.Touch]:
    """The buyer's touches that can fall in a window: by user and by the order's click ids.

    Two queries rather than one with OR, so each uses its own index (SQLite would otherwise
    scan the tenant's events).
    """
    columns = (
        Event.event_id,
        Event.type,
        Event.occurred_at,
        Event.content_id,
        Event.ad_id,
        Event.product_id,
    )
    earliest = order_time - dt.timedelta(seconds=lookback_seconds)
    queries = []
    if buyer_id is not None:
        queries.append(
            select(*columns).where(
                Event.tenant_id == tenant_id,
                Event.user_id == buyer_id,
                Event.type.in_(TOUCH_TYPES),
                Event.occurred_at >= earliest,
                Event.occurred_at <= order_time,
            )
        )
    if click_ids:
        # A click id has a handful of events: select by it alone so the planner takes the
        # click_id index, and filter type and time here.
        queries.append(
            select(*columns).where(
                Event.tenant_id == tenant_id, Event.click_id.in_(list(click_ids))
            )
        )
    seen: set[str] = set()
    touches: list[engine.Touch] = []
    for query in queries:
        for event_id, type_, occurred_at, content_id, ad_id, product_id in await session.execute(
            query
        ):
            if event_id in seen or type_ not in TOUCH_TYPES:
                continue
            if not earliest <= occurred_at <= order_time:
                continue
            seen.add(event_id)
            touches.append(
                engine.Touch(event_id, type_, occurred_at, content_id, ad_id, product_id)
            )
    return touches


async def content_products(
    session: AsyncSession, tenant_id: str, content_ids: Iterable[str]
) -> dict[str, frozenset[str]]:
    ids = sorted(set(content_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(CatalogContentProduct.content_id, CatalogContentProduct.product_id).where(
            CatalogContentProduct.tenant_id == tenant_id,
            CatalogContentProduct.content_id.in_(ids),
        )
    )
    links: dict[str, set[str]] = {}
    for content_id, product_id in rows:
        links.setdefault(content_id, set()).add(product_id)
    return {content: frozenset(products) for content, products in links.items()}


def _credit_rows(
    order: Order, model: str, lines: Sequence[engine.Line], credits: Sequence[engine.Credit]
) -> list[dict[str, Any]]:
    shares = engine.order_shares(lines, credits)
    assert order.paid_at is not None
    return [
        {
            "tenant_id": order.tenant_id,
            "order_id": order.order_id,
            "model": model,
            "position": position,
            "product_id": credit.product_id,
            "content_id": credit.content_id,
            "ad_id": credit.ad_id,
            "event_id": credit.event_id,
            "touch": credit.touch,
            "touch_at": credit.occurred_at,
            "weight": credit.weight,
            "amount": credit.amount,
            "order_share": share,
            "paid_at": order.paid_at,
            "currency": order.currency,
        }
        for position, (credit, share) in enumerate(
            # A zero-weight touch (e.g. all but the last under last_touch) earns nothing.
            (c, s)
            for c, s in zip(credits, shares, strict=True)
            if c.weight > 0
        )
    ]


async def clear_credits(session: AsyncSession, order: Order) -> None:
    await session.execute(
        delete(Credit).where(Credit.tenant_id == order.tenant_id, Credit.order_id == order.order_id)
    )


async def attribute_order(
    session: AsyncSession, order: Order, lines: Sequence[OrderLine], rules: Rules
) -> None:
    """(Re)compute and store the order's credits under every model.

    Orders that are not paid, were cancelled, or have no revenue left carry no credits.
    """
    started = time.perf_counter()
    await clear_credits(session, order)
    if order.paid_at is None or order.status == "cancelled" or order.revenue <= 0:
        return
    engine_lines = [engine.Line(line.product_id, Decimal(line.revenue)) for line in lines]
    lookback = max(rules.click_window_seconds, rules.view_window_seconds)
    touches = await buyer_touches(
        session,
        order.tenant_id,
        buyer_id=order.buyer_id,
        click_ids=order.click_ids or [],
        order_time=order.paid_at,
        lookback_seconds=lookback,
    )
    links = await content_products(
        session, order.tenant_id, (t.content_id for t in touches if t.content_id)
    )
    rows: list[dict[str, Any]] = []
    if touches:
        for model in engine.MODELS:
            credits = engine.attribute(
                order_time=order.paid_at,
                lines=engine_lines,
                touches=touches,
                rules=engine_rules(rules),
                model=model,
                currency=order.currency,
                content_products=links,
            )
            rows.extend(_credit_rows(order, model, engine_lines, credits))
    if rows:
        await session.execute(insert(Credit), rows)
    order.attributed_at = dt.datetime.now(dt.UTC)
    ATTRIBUTION_SECONDS.observe(time.perf_counter() - started)


async def stored_credits(
    session: AsyncSession, tenant_id: str, order_id: str, model: str
) -> list[Credit]:
    rows = await session.scalars(
        select(Credit)
        .where(Credit.tenant_id == tenant_id, Credit.order_id == order_id, Credit.model == model)
        .order_by(Credit.position)
    )
    return list(rows)


def credit_view(credit: Credit) -> dict[str, Any]:
    return {
        "product_id": credit.product_id,
        "content_id": credit.content_id,
        "ad_id": credit.ad_id,
        "event_id": credit.event_id,
        "touch": credit.touch,
        "occurred_at": credit.touch_at,
        "weight": credit.weight,
        "amount": credit.amount,
    }
