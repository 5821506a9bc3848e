"""Attributing an order: feed the pure engine from the repository and store its credits.

Credits are computed for every model at once and stored, so a report under any model is an
indexed read; an order is re-attributed whenever something it depends on changes (paid,
refunded, cancelled, or a late touch of its buyer arrives).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.attribution.core.metrics import ATTRIBUTION_SECONDS
from services.attribution.credit import engine
from services.attribution.credit.repository import (
    buyer_touches,
    clear_credits,
    content_products,
    insert_credits,
)
from services.attribution.models import Order
from services.attribution.settings.service import Rules


class LineLike(Protocol):
    """An order line as attribution needs it (an ORM OrderLine or an engine Line)."""

    @property
    def product_id(self) -> str: ...

    @property
    def revenue(self) -> Decimal: ...


def engine_rules(rules: Rules) -> engine.Rules:
    return engine.Rules(
        click_window_seconds=rules.click_window_seconds,
        view_window_seconds=rules.view_window_seconds,
        match="any" if rules.match == "any" else "product",
    )


def is_attributable(status: str, paid_at: dt.datetime | None, revenue: Decimal) -> bool:
    """Orders that are not paid, were cancelled, or have no revenue left carry no credits."""
    return paid_at is not None and status != "cancelled" and revenue > 0


# --------------------------------------------------------------------------- credits


def credit_rows(
    *,
    tenant_id: str,
    order_id: str,
    paid_at: dt.datetime,
    currency: str,
    lines: Sequence[engine.Line],
    touches: Sequence[engine.Touch],
    links: dict[str, frozenset[str]],
    rules: Rules,
) -> list[dict[str, Any]]:
    """The credit rows of one order under every model (pure: no database)."""
    if not touches:
        return []
    rows: list[dict[str, Any]] = []
    model_rules = engine_rules(rules)
    fractions = engine.line_fractions(lines)
    for model in engine.MODELS:
        credits = engine.attribute(
            order_time=paid_at,
            lines=lines,
            touches=touches,
            rules=model_rules,
            model=model,
            currency=currency,
            content_products=links,
        )
        shares = engine.order_shares(lines, credits, fractions)
        position = 0
        for credit, share in zip(credits, shares, strict=True):
            # A zero-weight touch (e.g. all but the last under last_touch) earns nothing.
            if credit.weight <= 0:
                continue
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "order_id": order_id,
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
                    "paid_at": paid_at,
                    "currency": currency,
                }
            )
            position += 1
    return rows


async def compute_credits(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    order_id: str,
    buyer_id: str | None,
    click_ids: Sequence[str],
    paid_at: dt.datetime,
    currency: str,
    lines: Sequence[LineLike],
    rules: Rules,
    catalog_generation: int | None = None,
) -> list[dict[str, Any]]:
    """Read the buyer's touches and the catalog links, and run the engine for every model."""
    lookback = max(rules.click_window_seconds, rules.view_window_seconds)
    touches = await buyer_touches(
        conn,
        tenant_id,
        buyer_id=buyer_id,
        click_ids=click_ids,
        order_time=paid_at,
        lookback_seconds=lookback,
    )
    if not touches:
        return []
    links = await content_products(
        conn,
        tenant_id,
        (t.content_id for t in touches if t.content_id),
        generation=catalog_generation,
    )
    return credit_rows(
        tenant_id=tenant_id,
        order_id=order_id,
        paid_at=paid_at,
        currency=currency,
        lines=[engine.Line(line.product_id, Decimal(line.revenue)) for line in lines],
        touches=touches,
        links=links,
        rules=rules,
    )


async def attribute_order(
    session: AsyncSession, order: Order, lines: Sequence[LineLike], rules: Rules
) -> list[dict[str, Any]]:
    """(Re)compute and store an existing order's credits under every model; returns them.

    Orders that are not paid, were cancelled, or have no revenue left carry no credits.
    """
    started = time.perf_counter()
    conn = await session.connection()
    await clear_credits(conn, order.tenant_id, order.order_id)
    if not is_attributable(order.status, order.paid_at, order.revenue):
        return []
    assert order.paid_at is not None
    rows = await compute_credits(
        conn,
        tenant_id=order.tenant_id,
        order_id=order.order_id,
        buyer_id=order.buyer_id,
        click_ids=order.click_ids or [],
        paid_at=order.paid_at,
        currency=order.currency,
        lines=lines,
        rules=rules,
    )
    await insert_credits(conn, rows)
    order.attributed_at = dt.datetime.now(dt.UTC)
    ATTRIBUTION_SECONDS.observe(time.perf_counter() - started)
    return rows


def credits_of_model(rows: Iterable[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    """The answer's view of computed credit rows under one model, in position order."""
    return [
        {
            "product_id": row["product_id"],
            "content_id": row["content_id"],
            "ad_id": row["ad_id"],
            "event_id": row["event_id"],
            "touch": row["touch"],
            "occurred_at": row["touch_at"],
            "weight": row["weight"],
            "amount": row["amount"],
        }
        for row in rows
        if row["model"] == model
    ]
