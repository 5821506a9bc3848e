"""``GET /v1/reports/contents/{content_id}`` and ``GET /v1/reports/live/{content_id}/timeline``:
thin HTTP over ``service.py``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.attribution.reports.pages import service
from services.attribution.reports.pages.query import ContentId, PageQuery, TimelineQuery
from services.attribution.reports.pages.schemas import ContentPage, LiveTimeline
from services.attribution.reports.router import ERRORS, Reports, _invalid
from shared.db import utcnow
from shared.errors import validation_route

router = APIRouter(prefix="/v1/reports", tags=["reports"], route_class=validation_route(_invalid))
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such content in this tenant's catalog read model"}
}


@router.get(
    "/contents/{content_id}",
    response_model=ContentPage,
    summary="One content's page: its account, products and the orders credited to it",
    description="The content as the catalog read model has it (title, kind, account handle and "
    "platform, live window), its products with their placement and pinned windows, and the "
    "orders paid in the range that the chosen model credits to it, latest first, each with the "
    "content's share and revenue (GET /v1/orders/{id}/attribution explains one). With `ad_id`, "
    "only the credits of touches on that ad: the ad's own orders.",
    responses={**ERRORS, **NOT_FOUND},
)
async def content_page(
    reports: Reports, content_id: ContentId, query: Annotated[PageQuery, Query()]
) -> ContentPage:
    return await reports.run(
        query.as_report_query(),
        lambda db, tenant, s: service.content_page(db, tenant, s.rules, s.scope, content_id, query),
    )


@router.get(
    "/live/{content_id}/timeline",
    response_model=LiveTimeline,
    summary="A live room minute by minute: viewers entering, clicks, orders, GMV, pinned products",
    description="Per UTC minute from `from` (default: when the room went live) to `to` "
    "(default: when it ended, or now while it is live): `live_enter` events, clicks on the "
    "room, and the orders and GMV the chosen model credits to the room by paid time. `pinned` "
    "lists the products whose pinned window overlaps the range. At most one day of minutes; "
    "422 for a video or a room that has not started (unless `from` is given).",
    responses={**ERRORS, **NOT_FOUND},
)
async def live_timeline(
    reports: Reports, content_id: ContentId, query: Annotated[TimelineQuery, Query()]
) -> LiveTimeline:
    rules = await reports.rules()
    return await reports.bounded(
        service.live_timeline(
            reports.session, reports.tenant_id, rules, content_id, query, utcnow()
        )
    )
