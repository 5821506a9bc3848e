"""Late data: events that arrive after the orders they explain.

The events ingest calls ``reattribute_after_events`` in the same transaction, before it answers,
so every later read reflects the new touches (read-your-writes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.credit import engine
from services.attribution.credit.service import attribute_order
from services.attribution.models import Order, OrderClick, OrderLine
from services.attribution.orders.service import stitch_buyer
from services.attribution.settings.service import Rules, load_rules


@dataclass(frozen=True, slots=True)
class StoredTouch:
    """The parts of a newly stored event that can change an order's attribution."""

    event_id: str
    type: str
    occurred_at: dt.datetime
    user_id: str
    click_id: str | None


async def affected_orders(
    session: AsyncSession, tenant_id: str, touches: Sequence[StoredTouch], rules: Rules
) -> list[Order]:
    """Paid orders whose windows can contain one of these touches.

    One query by buyer (the touches' users, paid within the widest window after the earliest
    touch) and one by click id (orders that name one of the new clicks).
    """
    if not touches:
        return []
    window = dt.timedelta(seconds=max(rules.click_window_seconds, rules.view_window_seconds))
    earliest = min(t.occurred_at for t in touches)
    latest = max(t.occurred_at for t in touches)
    users = sorted({t.user_id for t in touches})
    found: dict[str, Order] = {}
    for chunk_start in range(0, len(users), 500):
        chunk = users[chunk_start : chunk_start + 500]
        rows = await session.scalars(
            select(Order).where(
                Order.tenant_id == tenant_id,
                Order.buyer_id.in_(chunk),
                Order.paid_at >= earliest,
                Order.paid_at <= latest + window,
            )
        )
        for order in rows:
            found[order.order_id] = order
    click_ids = sorted({t.click_id for t in touches if t.click_id and t.type == "click"})
    if click_ids:
        order_ids = set(
            await session.scalars(
                select(OrderClick.order_id).where(
                    OrderClick.tenant_id == tenant_id, OrderClick.click_id.in_(click_ids)
                )
            )
        ) - set(found)
        if order_ids:
            rows = await session.scalars(
                select(Order).where(Order.tenant_id == tenant_id, Order.order_id.in_(order_ids))
            )
            for order in rows:
                found[order.order_id] = order
    return [found[key] for key in sorted(found)]


async def reattribute_after_events(
    session: AsyncSession, tenant_id: str, touches: Sequence[StoredTouch], *, secret: str = ""
) -> int:
    """Re-attribute every paid order these new touches can affect; returns how many."""
    if not touches:
        return 0
    rules = await load_rules(session, tenant_id, secret, with_webhook_secret=False)
    orders = await affected_orders(session, tenant_id, touches, rules)
    if not orders:
        return 0
    conn = await session.connection()
    # Every affected order's lines in one query rather than one per order.
    lines: dict[str, list[engine.Line]] = {}
    for order_id, product_id, revenue in await conn.execute(
        select(OrderLine.order_id, OrderLine.product_id, OrderLine.revenue)
        .where(
            OrderLine.tenant_id == tenant_id,
            OrderLine.order_id.in_([order.order_id for order in orders]),
        )
        .order_by(OrderLine.order_id, OrderLine.line_no)
    ):
        lines.setdefault(order_id, []).append(engine.Line(product_id, revenue))
    count = 0
    for order in orders:
        # A click can reveal the buyer of an order that only named click ids.
        if order.buyer_id is None:
            order.buyer_id = await stitch_buyer(conn, tenant_id, None, order.click_ids or [])
        if order.paid_at is None or order.status == "cancelled":
            continue
        await attribute_order(session, order, lines.get(order.order_id, []), rules)
        count += 1
    await session.flush()
    return count
