"""The rows the interactions report counts: comments, dms and the times of their answers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.attribution.models import CatalogContent, Event, Interaction
from services.attribution.reports.operations.interactions import Comment, Message
from services.attribution.reports.repository import catalog_row

UNMATCHED_LIMIT = 500


async def comments(
    session: AsyncSession,
    tenant_id: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    account_id: str | None,
    content_id: str | None,
) -> list[Comment]:
    """The range's comments, each with its content's account from the catalog read model."""
    query = (
        select(
            Event.event_id,
            Event.content_id,
            CatalogContent.account_id,
            Event.user_id,
            Event.occurred_at,
        )
        .outerjoin(
            CatalogContent,
            catalog_row(CatalogContent, Event.tenant_id, Event.content_id),
        )
        .where(
            Event.tenant_id == tenant_id,
            Event.type == "comment",
            Event.occurred_at >= start,
            Event.occurred_at < end,
        )
    )
    if content_id is not None:
        query = query.where(Event.content_id == content_id)
    if account_id is not None:
        query = query.where(CatalogContent.account_id == account_id)
    rows = await session.execute(query)
    return [
        Comment(event_id, content, account, user, occurred)
        for event_id, content, account, user, occurred in rows
        if content is not None
    ]


async def first_replies(
    session: AsyncSession,
    tenant_id: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    content_id: str | None,
) -> dict[str, dt.datetime]:
    """The earliest ``reply`` to each comment of the range (replies at any time)."""
    query = (
        select(Interaction.reply_to, func.min(Interaction.occurred_at))
        .join(
            Event,
            and_(Event.tenant_id == Interaction.tenant_id, Event.event_id == Interaction.reply_to),
        )
        .where(
            Interaction.tenant_id == tenant_id,
            Interaction.type == "reply",
            Event.type == "comment",
            Event.occurred_at >= start,
            Event.occurred_at < end,
        )
        .group_by(Interaction.reply_to)
    )
    if content_id is not None:
        query = query.where(Event.content_id == content_id)
    rows = await session.execute(query)
    return {reply_to: first for reply_to, first in rows if reply_to is not None}


async def dms(
    session: AsyncSession,
    tenant_id: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    account_id: str | None,
) -> tuple[list[Message], dict[str, dt.datetime]]:
    """The range's dms, and the earliest ``dm_reply`` to each (at any time)."""
    dm = aliased(Interaction)
    answer = aliased(Interaction)
    in_range = [
        dm.tenant_id == tenant_id,
        dm.type == "dm",
        dm.occurred_at >= start,
        dm.occurred_at < end,
    ]
    if account_id is not None:
        in_range.append(dm.account_id == account_id)
    messages = await session.execute(
        select(dm.event_id, dm.account_id, Event.user_id, dm.occurred_at)
        .join(Event, and_(Event.tenant_id == dm.tenant_id, Event.event_id == dm.event_id))
        .where(*in_range)
    )
    answers = await session.execute(
        select(answer.reply_to, func.min(answer.occurred_at))
        .join(dm, and_(dm.tenant_id == answer.tenant_id, dm.event_id == answer.reply_to))
        .where(answer.tenant_id == tenant_id, answer.type == "dm_reply", *in_range)
        .group_by(answer.reply_to)
    )
    return (
        [
            Message(event_id, account, user, occurred)
            for event_id, account, user, occurred in messages
            if account is not None
        ],
        {reply_to: first for reply_to, first in answers if reply_to is not None},
    )


async def unmatched(
    session: AsyncSession,
    tenant_id: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    account_id: str | None,
) -> list[Interaction]:
    """Replies of the range whose ``reply_to`` names none of the tenant's comments or dms."""
    answered = aliased(Event)
    query = (
        select(Interaction)
        .where(
            Interaction.tenant_id == tenant_id,
            Interaction.type.in_(("reply", "dm_reply")),
            Interaction.occurred_at >= start,
            Interaction.occurred_at < end,
            ~exists().where(
                answered.tenant_id == Interaction.tenant_id,
                answered.event_id == Interaction.reply_to,
                or_(
                    and_(Interaction.type == "reply", answered.type == "comment"),
                    and_(Interaction.type == "dm_reply", answered.type == "dm"),
                ),
            ),
        )
        .order_by(Interaction.occurred_at, Interaction.event_id)
        .limit(UNMATCHED_LIMIT)
    )
    if account_id is not None:
        query = query.where(Interaction.account_id == account_id)
    return list((await session.scalars(query)).all())
