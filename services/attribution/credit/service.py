"""Attribution storage: feeds the pure engine from the database and stores its credits.

Credits are computed for every model at once and stored, so a report under any model is an
indexed read; an order is re-attributed whenever something it depends on changes (paid,
refunded, cancelled, or a late touch of its buyer arrives).

Order ingest is the hot path, so everything here is Core statements built once at import
(SQLAlchemy memoises their cache keys) executed on the session's connection: no ORM objects.
"""

from __future__ import annotations

import datetime as dt
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, cast

from sqlalchemy import Engine, Table, bindparam, delete, insert, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.attribution.core.metrics import ATTRIBUTION_SECONDS
from services.attribution.credit import engine
from services.attribution.models import CatalogContentProduct, Credit, Event, Order
from services.attribution.settings.service import Rules

TOUCH_TYPES = tuple(sorted(engine.CLICK_TYPES | engine.VIEW_TYPES))

_EVENTS = cast(Table, Event.__table__)
_LINKS = cast(Table, CatalogContentProduct.__table__)
_CREDITS = cast(Table, Credit.__table__)

_TOUCH_COLUMNS = (
    _EVENTS.c.event_id,
    _EVENTS.c.type,
    _EVENTS.c.occurred_at,
    _EVENTS.c.content_id,
    _EVENTS.c.ad_id,
    _EVENTS.c.product_id,
)
# The buyer's touches in the lookback: served by the (tenant_id, user_id, occurred_at, type)
# index.
_TOUCHES_BY_USER = select(*_TOUCH_COLUMNS).where(
    _EVENTS.c.tenant_id == bindparam("tenant_id"),
    _EVENTS.c.user_id == bindparam("buyer_id"),
    _EVENTS.c.type.in_(TOUCH_TYPES),
    _EVENTS.c.occurred_at >= bindparam("earliest"),
    _EVENTS.c.occurred_at <= bindparam("order_time"),
)
# A click id has a handful of events: select by it alone so the planner takes the
# (tenant_id, click_id) index, and filter type and time in Python.
_TOUCHES_BY_CLICKS = select(*_TOUCH_COLUMNS).where(
    _EVENTS.c.tenant_id == bindparam("tenant_id"),
    _EVENTS.c.click_id.in_(bindparam("click_ids", expanding=True)),
)
# Both in one round trip; UNION ALL of two indexed selects rather than one select with OR,
# which SQLite would answer by scanning the tenant's events.
_TOUCHES_BOTH = union_all(_TOUCHES_BY_USER, _TOUCHES_BY_CLICKS)

_CONTENT_PRODUCTS = select(_LINKS.c.content_id, _LINKS.c.product_id).where(
    _LINKS.c.tenant_id == bindparam("tenant_id"),
    _LINKS.c.content_id.in_(bindparam("content_ids", expanding=True)),
)

_CLEAR_CREDITS = delete(_CREDITS).where(
    _CREDITS.c.tenant_id == bindparam("tenant_id"), _CREDITS.c.order_id == bindparam("order_id")
)
_INSERT_CREDITS = insert(_CREDITS)
_STORED_CREDITS = (
    select(
        _CREDITS.c.product_id,
        _CREDITS.c.content_id,
        _CREDITS.c.ad_id,
        _CREDITS.c.event_id,
        _CREDITS.c.touch,
        _CREDITS.c.touch_at,
        _CREDITS.c.weight,
        _CREDITS.c.amount,
    )
    .where(
        _CREDITS.c.tenant_id == bindparam("tenant_id"),
        _CREDITS.c.order_id == bindparam("order_id"),
        _CREDITS.c.model == bindparam("model"),
    )
    .order_by(_CREDITS.c.position)
)


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


async def buyer_touches(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    buyer_id: str | None,
    click_ids: Sequence[str],
    order_time: dt.datetime,
    lookback_seconds: int,
) -> list[engine.Touch]:
    """The buyer's touches that can fall in a window: by user and by the order's click ids."""
    earliest = order_time - dt.timedelta(seconds=lookback_seconds)
    params: dict[str, Any] = {"tenant_id": tenant_id}
    if buyer_id is not None:
        params.update(buyer_id=buyer_id, earliest=earliest, order_time=order_time)
    if click_ids:
        params["click_ids"] = list(click_ids)
    if buyer_id is not None and click_ids:
        statement: Any = _TOUCHES_BOTH
    elif buyer_id is not None:
        statement = _TOUCHES_BY_USER
    elif click_ids:
        statement = _TOUCHES_BY_CLICKS
    else:
        return []
    seen: set[str] = set()
    touches: list[engine.Touch] = []
    for event_id, type_, occurred_at, content_id, ad_id, product_id in await conn.execute(
        statement, params
    ):
        if event_id in seen or type_ not in TOUCH_TYPES:
            continue
        if not earliest <= occurred_at <= order_time:
            continue
        seen.add(event_id)
        touches.append(engine.Touch(event_id, type_, occurred_at, content_id, ad_id, product_id))
    return touches


# --------------------------------------------------------------------------- catalog links


@dataclass
class _TenantLinks:
    generation: int
    products: dict[str, frozenset[str]] = field(default_factory=dict)


# Per engine (so two databases in one process never share entries), per tenant: content →
# linked products, as of one catalog sequence. The catalog sync writes the links and bumps
# the sequence in one transaction, so a cached entry is valid exactly while the sequence it
# was read under is still current; callers read the sequence in a statement they need anyway.
_LINK_CACHE: weakref.WeakKeyDictionary[Engine, dict[str, _TenantLinks]] = (
    weakref.WeakKeyDictionary()
)
_LINK_CACHE_MAX_CONTENTS = 100_000  # per tenant; past it, start over rather than grow


async def _query_links(
    conn: AsyncConnection, tenant_id: str, content_ids: Sequence[str]
) -> dict[str, set[str]]:
    links: dict[str, set[str]] = {}
    rows = await conn.execute(
        _CONTENT_PRODUCTS, {"tenant_id": tenant_id, "content_ids": list(content_ids)}
    )
    for content_id, product_id in rows:
        links.setdefault(content_id, set()).add(product_id)
    return links


async def content_products(
    conn: AsyncConnection,
    tenant_id: str,
    content_ids: Iterable[str],
    *,
    generation: int | None = None,
) -> dict[str, frozenset[str]]:
    """Catalog links of these contents; cached when the catalog ``generation`` is known."""
    ids = sorted(set(content_ids))
    if not ids:
        return {}
    if generation is None:
        found = await _query_links(conn, tenant_id, ids)
        return {content: frozenset(products) for content, products in found.items()}
    per_tenant = _LINK_CACHE.setdefault(conn.sync_engine, {})
    cached = per_tenant.get(tenant_id)
    if (
        cached is None
        or cached.generation != generation
        or len(cached.products) > _LINK_CACHE_MAX_CONTENTS
    ):
        cached = per_tenant[tenant_id] = _TenantLinks(generation)
    missing = [content for content in ids if content not in cached.products]
    if missing:
        found = await _query_links(conn, tenant_id, missing)
        for content in missing:
            cached.products[content] = frozenset(found.get(content, ()))
    return {content: cached.products[content] for content in ids if cached.products[content]}


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


async def insert_credits(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_INSERT_CREDITS, list(rows))


async def clear_credits(conn: AsyncConnection, tenant_id: str, order_id: str) -> None:
    await conn.execute(_CLEAR_CREDITS, {"tenant_id": tenant_id, "order_id": order_id})


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


async def stored_credits(
    conn: AsyncConnection, tenant_id: str, order_id: str, model: str
) -> list[dict[str, Any]]:
    """An order's stored credits under one model, as the API shows them."""
    rows = await conn.execute(
        _STORED_CREDITS, {"tenant_id": tenant_id, "order_id": order_id, "model": model}
    )
    return [
        {
            "product_id": product_id,
            "content_id": content_id,
            "ad_id": ad_id,
            "event_id": event_id,
            "touch": touch,
            "occurred_at": touch_at,
            "weight": weight,
            "amount": amount,
        }
        for product_id, content_id, ad_id, event_id, touch, touch_at, weight, amount in rows
    ]
