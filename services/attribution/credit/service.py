"""Attributing an order: feed the pure engine from the repository and store its credits.

Credits are computed for every model at once and stored, so a report under any model is an
indexed read; an order is re-attributed whenever something it depends on changes (paid,
refunded, cancelled, or a late touch of its buyer arrives).
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.attribution.core.metrics import ATTRIBUTION_SECONDS
from services.attribution.credit import engine
from services.attribution.credit.fraud import (
    BuyerActivity,
    SeenTouch,
    Verdict,
    ad_day,
    flags_by_touch,
    judge,
    rejected_ids,
)
from services.attribution.credit.repository import (
    ad_day_activity,
    buyer_evidence,
    buyer_evidence_on_driver,
    clear_credits,
    click_users,
    content_products,
    insert_credits,
    insert_verdicts,
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


@dataclass(slots=True)
class Attribution:
    """An order's credit rows under every model, and the fraud verdicts on its touches."""

    credits: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)


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
    flags: dict[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """The credit rows of one order under every model (pure: no database).

    ``flags``: event id -> the fraud rules (in flag mode) its touch broke for this order.
    """
    flags = flags or {}
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
                    "flags": ",".join(flags[credit.event_id]) if credit.event_id in flags else None,
                }
            )
            position += 1
    return rows


def verdict_rows(
    tenant_id: str,
    order_id: str,
    paid_at: dt.datetime,
    touches: Sequence[SeenTouch],
    verdicts: Sequence[Verdict],
) -> list[dict[str, Any]]:
    by_id = {seen.touch.event_id: seen.touch for seen in touches}
    rows = []
    for verdict in verdicts:
        touch = by_id[verdict.event_id]
        rows.append(
            {
                "tenant_id": tenant_id,
                "order_id": order_id,
                "event_id": verdict.event_id,
                "reason": verdict.reason,
                "mode": verdict.mode,
                "touch": engine.touch_kind(touch.type),
                "touch_at": touch.occurred_at,
                "content_id": touch.content_id,
                "ad_id": touch.ad_id,
                "paid_at": paid_at,
            }
        )
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
    on_driver: bool = False,
) -> Attribution:
    """Read the buyer's touches and the catalog links, judge the touches by the fraud rules,
    and run the engine for every model on those not rejected.

    ``on_driver`` (a known buyer): the touches and their clicks' users in one statement on the
    driver (the new-order hot path)."""
    lookback = max(rules.click_window_seconds, rules.view_window_seconds)
    if on_driver and buyer_id is not None:
        read_evidence = functools.partial(buyer_evidence_on_driver, buyer_id=buyer_id)
    else:
        read_evidence = functools.partial(buyer_evidence, buyer_id=buyer_id)
    evidence = await read_evidence(
        conn,
        tenant_id,
        click_ids=click_ids,
        order_time=paid_at,
        lookback_seconds=lookback,
    )
    if not evidence.touches:
        return Attribution()
    shared_clicks = evidence.click_users
    if shared_clicks is None:
        shared_clicks = await click_users(
            conn,
            tenant_id,
            (
                s.click_id
                for s in evidence.touches
                if s.click_id and s.touch.type in engine.CLICK_TYPES
            ),
        )
    ad_days = await ad_day_activity(
        conn,
        tenant_id,
        order_id,
        (
            key
            for s in evidence.touches
            if s.touch.type in engine.CLICK_TYPES and (key := ad_day(s.touch)) is not None
        ),
    )
    verdicts = judge(
        evidence.touches,
        order_time=paid_at,
        activity=BuyerActivity(
            evidence.activity.event_times, evidence.activity.click_times, shared_clicks, ad_days
        ),
        rules=rules.fraud,
    )
    rejected = rejected_ids(verdicts)
    touches = [s.touch for s in evidence.touches if s.touch.event_id not in rejected]
    links = await content_products(
        conn,
        tenant_id,
        (t.content_id for t in touches if t.content_id),
        generation=catalog_generation,
    )
    credits = credit_rows(
        tenant_id=tenant_id,
        order_id=order_id,
        paid_at=paid_at,
        currency=currency,
        lines=[engine.Line(line.product_id, Decimal(line.revenue)) for line in lines],
        touches=touches,
        links=links,
        rules=rules,
        flags=flags_by_touch(verdicts),
    )
    return Attribution(
        credits, verdict_rows(tenant_id, order_id, paid_at, evidence.touches, verdicts)
    )


async def store_attribution(conn: AsyncConnection, attribution: Attribution) -> None:
    await insert_credits(conn, attribution.credits)
    await insert_verdicts(conn, attribution.verdicts)


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
    attribution = await compute_credits(
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
    await store_attribution(conn, attribution)
    order.attributed_at = dt.datetime.now(dt.UTC)
    ATTRIBUTION_SECONDS.observe(time.perf_counter() - started)
    return attribution.credits


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
            "flags": row["flags"].split(",") if row["flags"] else [],
        }
        for row in rows
        if row["model"] == model
    ]
