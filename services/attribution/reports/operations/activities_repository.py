"""The rows the activities report reads: engagement campaigns, their contents and events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.events.repository import events_in
from services.attribution.models import CatalogAd, CatalogCampaign, Event
from shared.vocabulary import ENGAGEMENT_OBJECTIVE


@dataclass(frozen=True, slots=True)
class ActivityCampaign:
    id: str
    name: str
    activity: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None


async def activity_campaigns(
    session: AsyncSession, tenant_id: str, start: dt.datetime, end: dt.datetime
) -> list[ActivityCampaign]:
    """Engagement campaigns with an activity and a start, running at some time in
    ``[start, end)``, by start then id."""
    rows = await session.execute(
        select(
            CatalogCampaign.id,
            CatalogCampaign.name,
            CatalogCampaign.activity,
            CatalogCampaign.starts_at,
            CatalogCampaign.ends_at,
        )
        .where(
            CatalogCampaign.tenant_id == tenant_id,
            CatalogCampaign.objective == ENGAGEMENT_OBJECTIVE,
            CatalogCampaign.activity.is_not(None),
            CatalogCampaign.starts_at.is_not(None),
            CatalogCampaign.starts_at < end,
            CatalogCampaign.ends_at.is_(None) | (CatalogCampaign.ends_at > start),
        )
        .order_by(CatalogCampaign.starts_at, CatalogCampaign.id)
    )
    return [
        ActivityCampaign(id_, name, str(activity), starts_at, ends_at)
        for id_, name, activity, starts_at, ends_at in rows
    ]


async def campaign_contents(
    session: AsyncSession, tenant_id: str, campaign_ids: Collection[str]
) -> dict[str, list[str]]:
    """The contents each campaign's ads run in or promote, sorted."""
    if not campaign_ids:
        return {}
    rows = await session.execute(
        select(CatalogAd.campaign_id, CatalogAd.content_id)
        .where(CatalogAd.tenant_id == tenant_id, CatalogAd.campaign_id.in_(list(campaign_ids)))
        .distinct()
        .order_by(CatalogAd.campaign_id, CatalogAd.content_id)
    )
    result: dict[str, list[str]] = {}
    for campaign_id, content_id in rows:
        result.setdefault(campaign_id, []).append(content_id)
    return result


async def content_event_counts(
    session: AsyncSession,
    tenant_id: str,
    content_ids: Sequence[str],
    start: dt.datetime,
    end: dt.datetime,
    types: Sequence[str],
) -> dict[str, int]:
    """Events per type on ``content_ids`` in ``[start, end)``."""
    if not content_ids or start >= end:
        return {}
    rows = await session.execute(
        select(Event.type, func.count())
        .where(*events_in(tenant_id, types, start, end), Event.content_id.in_(list(content_ids)))
        .group_by(Event.type)
    )
    return {str(kind): int(count) for kind, count in rows}
