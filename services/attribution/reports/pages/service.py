"""A content's page and a live room's minute-by-minute timeline.

The page: the content's catalog row with its account's handle, its products (pinned windows
included) and the orders paid in the range that the model credits to it. The timeline: per UTC
minute of the room's live window (or of the range asked), the viewers entering (``live_enter``),
the clicks, and the orders and GMV credited to the room by the time they were paid; the
products' pinned windows are drawn over it.
"""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.reports import metrics, repository
from services.attribution.reports.metrics import ZERO
from services.attribution.reports.pages import repository as pages
from services.attribution.reports.pages.query import (
    MAX_TIMELINE_MINUTES,
    PageQuery,
    TimelineQuery,
)
from services.attribution.reports.pages.schemas import (
    ContentPage,
    CreditedOrder,
    LiveTimeline,
    Minute,
    PageProduct,
    utc,
)
from services.attribution.reports.query import Scope, invalid_query
from services.attribution.reports.service import NO_CURRENCY_PLACES
from services.attribution.settings.service import Rules
from shared.currencies import minor_units
from shared.errors import NotFound

MINUTE = dt.timedelta(minutes=1)


def _places(rules: Rules) -> int:
    return NO_CURRENCY_PLACES if rules.currency is None else minor_units(rules.currency)


async def _content(session: AsyncSession, tenant_id: str, content_id: str) -> pages.ContentRecord:
    found = await pages.content(session, tenant_id, content_id)
    if found is None:
        raise NotFound(
            f"No content {content_id!r} in this tenant's catalog read model; check the id in "
            "GET /v1/reports/contents, or POST /v1/sync if it was just added to the catalog."
        )
    return found


def _about(
    rules: Rules, record: pages.ContentRecord, model: str, start: dt.datetime, end: dt.datetime
) -> dict[str, object]:
    return {
        "currency": rules.currency,
        "model": model,
        "timezone": rules.timezone,
        "from_": start,
        "to": end,
        "content_id": record.content_id,
        "title": record.title,
        "kind": record.kind,
        "platform": record.platform,
        "account_id": record.account_id,
        "account_handle": record.account_handle,
        "started_at": utc(record.started_at),
        "ended_at": utc(record.ended_at),
    }


def _product(p: pages.ProductRecord) -> PageProduct:
    return PageProduct(
        product_id=p.product_id,
        title=p.title,
        placement=p.placement,
        starts_at=utc(p.starts_at),
        ends_at=utc(p.ends_at),
    )


async def content_page(
    session: AsyncSession,
    tenant_id: str,
    rules: Rules,
    scope: Scope,
    content_id: str,
    query: PageQuery,
) -> ContentPage:
    await repository.begin_snapshot(session)
    record = await _content(session, tenant_id, content_id)
    places = _places(rules)
    credits = repository.CreditRange(tenant_id, scope.model, scope.start, scope.end)
    found = await pages.credited_orders(session, credits, content_id, query.ad_id)
    latest = sorted(found, key=lambda o: (o.paid_at, o.order_id), reverse=True)[: query.max_orders]
    return ContentPage.model_validate(
        {
            **_about(rules, record, scope.model, scope.start, scope.end),
            "products": [_product(p) for p in await pages.products(session, tenant_id, content_id)],
            "orders": [
                CreditedOrder(
                    order_id=o.order_id,
                    paid_at=utc(o.paid_at) or o.paid_at,
                    orders=metrics.rounded_orders(o.share),
                    gmv=metrics.money(o.amount, places),
                )
                for o in latest
            ],
            "orders_total": len(found),
        }
    )


def timeline_range(
    record: pages.ContentRecord, query: TimelineQuery, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """The minutes a timeline covers: the range asked, else the room's live window (until now
    while it is still live); 422 when there is none or it is longer than a day."""
    start = query.from_ or utc(record.started_at)
    if start is None:
        raise invalid_query(
            [("from", f"is required: live room {record.content_id!r} has not started yet")]
        )
    end = query.to or utc(record.ended_at) or min(now, start + MAX_TIMELINE_MINUTES * MINUTE)
    if start >= end:
        raise invalid_query([("from", "must be before `to` (from is inclusive, to exclusive)")])
    if end - start > MAX_TIMELINE_MINUTES * MINUTE:
        raise invalid_query(
            [("to", f"at most {MAX_TIMELINE_MINUTES} minutes after `from` per timeline")]
        )
    return start, end


async def live_timeline(
    session: AsyncSession,
    tenant_id: str,
    rules: Rules,
    content_id: str,
    query: TimelineQuery,
    now: dt.datetime,
) -> LiveTimeline:
    await repository.begin_snapshot(session)
    record = await _content(session, tenant_id, content_id)
    if record.kind != "live":
        raise invalid_query(
            [("content_id", f"{content_id!r} is a {record.kind}; timelines are for live rooms")]
        )
    start, end = timeline_range(record, query, now)
    model = query.model or rules.default_model
    origin = start.replace(second=0, microsecond=0)
    count = math.ceil((end - origin) / MINUTE)
    slots = repository.Slots(origin, 60, content_id=content_id, ad_id=None)
    series = {
        kind: await repository.event_series(
            session, tenant_id, slots, event_type=kind, start=start, end=end
        )
        for kind in ("live_enter", "click")
    }
    credits = await repository.credit_series(
        session, repository.CreditRange(tenant_id, model, start, end), slots
    )
    places = _places(rules)
    minutes = []
    for slot in range(count):
        sums = credits.get(slot)
        minutes.append(
            Minute(
                start=origin + slot * MINUTE,
                entries=series["live_enter"].get(slot, 0),
                clicks=series["click"].get(slot, 0),
                orders=metrics.rounded_orders(sums.share if sums else 0.0),
                gmv=metrics.money(sums.amount if sums else ZERO, places),
            )
        )
    products = await pages.products(session, tenant_id, content_id)
    pinned = [
        _product(p)
        for p in products
        if p.starts_at is not None
        and p.ends_at is not None
        and p.starts_at < end
        and start < p.ends_at
    ]
    return LiveTimeline.model_validate(
        {**_about(rules, record, model, start, end), "minutes": minutes, "pinned": pinned}
    )
