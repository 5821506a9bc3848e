"""Late data: events that arrive after the orders they explain.

The events ingest calls ``reattribute_after_events`` in the same transaction, before it answers,
so every later read reflects the new touches (read-your-writes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.credit.repository import (
    lines_of_orders,
    lock_touch_keys,
    orders_credited_by_clicks,
    orders_naming_clicks,
    paid_orders_of_buyers,
    stitch_buyer,
)
from services.attribution.credit.service import attribute_order
from services.attribution.models import Order
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
    found = {
        order.order_id: order
        for order in await paid_orders_of_buyers(
            session, tenant_id, users, earliest, latest + window
        )
    }
    click_ids = sorted({t.click_id for t in touches if t.click_id and t.type == "click"})
    for order in await orders_naming_clicks(session, tenant_id, click_ids, besides=set(found)):
        found[order.order_id] = order
    # A click id now reported for another user can turn a credited touch suspicious.
    for order in await orders_credited_by_clicks(session, tenant_id, click_ids, besides=set(found)):
        found[order.order_id] = order
    return [found[key] for key in sorted(found)]


async def reattribute_after_events(
    session: AsyncSession, tenant_id: str, touches: Sequence[StoredTouch], *, secret: str = ""
) -> int:
    """Re-attribute every paid order these new touches can affect; returns how many."""
    if not touches:
        return 0
    conn = await session.connection()
    # After storing the touches, before looking for their orders: see lock_touch_keys.
    await lock_touch_keys(
        conn,
        tenant_id,
        [t.user_id for t in touches] + [t.click_id for t in touches if t.type == "click"],
    )
    rules = await load_rules(session, tenant_id, secret, with_webhook_secret=False)
    orders = await affected_orders(session, tenant_id, touches, rules)
    if not orders:
        return 0
    lines = await lines_of_orders(conn, tenant_id, [order.order_id for order in orders])
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
