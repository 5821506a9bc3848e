"""The interactions report: the rows from ``repository``, the figures from ``interactions``."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.reports.operations import repository
from services.attribution.reports.operations.interactions import (
    Comment,
    Tally,
    quantile,
    rate,
    tally,
)
from services.attribution.reports.operations.query import InteractionsQuery
from services.attribution.reports.operations.schemas import (
    AccountInteractions,
    CommentMetrics,
    ContentInteractions,
    DayInteractions,
    DmMetrics,
    InteractionsReport,
    InteractionTotals,
    UnansweredComment,
    UnansweredPage,
    UnmatchedReply,
)
from services.attribution.reports.query import Scope
from services.attribution.settings.service import Rules
from shared.db import from_epoch_us, to_epoch_us
from shared.errors import UnprocessableEntity
from shared.pagination import decode_cursor, encode_cursor


def _comment_metrics(t: Tally) -> dict[str, Any]:
    return CommentMetrics(
        comments=t.comments,
        replied_within_1h=t.replied_1h,
        replied_within_24h=t.replied_24h,
        reply_rate_1h=rate(t.replied_1h, t.comments),
        reply_rate_24h=rate(t.replied_24h, t.comments),
        median_reply_seconds=quantile(t.reply_seconds, 0.5),
        p90_reply_seconds=quantile(t.reply_seconds, 0.9),
        unanswered_over_24h=t.unanswered_24h,
    ).model_dump()


def _dm_metrics(t: Tally) -> dict[str, Any]:
    return DmMetrics(
        dms=t.dms,
        dms_replied=t.dms_replied,
        dm_reply_rate=rate(t.dms_replied, t.dms),
        median_dm_reply_seconds=quantile(t.dm_reply_seconds, 0.5),
    ).model_dump()


def _after(comments: list[Comment], cursor: str | None) -> list[Comment]:
    if cursor is None:
        return comments
    key = decode_cursor(cursor)
    if not (isinstance(key, list) and len(key) == 2 and isinstance(key[0], int)):
        raise UnprocessableEntity(
            "The cursor is not valid; pass back `unanswered.next_cursor` unchanged.",
            errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
        )
    after = (from_epoch_us(key[0]), str(key[1]))
    return [c for c in comments if (c.occurred_at, c.event_id) > after]


async def interactions_report(
    session: AsyncSession,
    tenant_id: str,
    rules: Rules,
    covered: Scope,
    query: InteractionsQuery,
    *,
    now: dt.datetime,
) -> InteractionsReport:
    start, end = covered.start, covered.end
    comments = await repository.comments(
        session, tenant_id, start, end, account_id=query.account_id, content_id=query.content_id
    )
    replies = await repository.first_replies(
        session, tenant_id, start, end, content_id=query.content_id
    )
    messages, dm_replies = await repository.dms(
        session, tenant_id, start, end, account_id=query.account_id
    )
    unmatched = await repository.unmatched(
        session, tenant_id, start, end, account_id=query.account_id
    )
    tz = ZoneInfo(rules.timezone)
    tallies = tally(comments, replies, messages, dm_replies, now=now, tz=tz)
    content_accounts = {c.content_id: c.account_id for c in comments}
    waiting = _after(tallies.unanswered, query.cursor)
    page = waiting[: query.limit]
    next_cursor = (
        encode_cursor([to_epoch_us(page[-1].occurred_at), page[-1].event_id])
        if len(waiting) > query.limit
        else None
    )
    return InteractionsReport.model_validate(
        {
            "from": start,
            "to": end,
            "timezone": rules.timezone,
            "totals": InteractionTotals(
                **_comment_metrics(tallies.total), **_dm_metrics(tallies.total)
            ),
            "accounts": [
                AccountInteractions(account_id=key, **_comment_metrics(t), **_dm_metrics(t))
                for key, t in sorted(tallies.accounts.items())
            ],
            "contents": [
                ContentInteractions(
                    content_id=key, account_id=content_accounts.get(key), **_comment_metrics(t)
                )
                for key, t in sorted(tallies.contents.items())
            ],
            "days": [
                DayInteractions(
                    day=day,
                    comments=t.comments,
                    replied_within_1h=t.replied_1h,
                    replied_within_24h=t.replied_24h,
                    reply_rate_24h=rate(t.replied_24h, t.comments),
                    dms=t.dms,
                    dms_replied=t.dms_replied,
                )
                for day, t in sorted(tallies.days.items())
            ],
            "unanswered": UnansweredPage(
                items=[
                    UnansweredComment(
                        event_id=c.event_id,
                        content_id=c.content_id,
                        account_id=c.account_id,
                        user_id=c.user_id,
                        occurred_at=c.occurred_at,
                        age_seconds=(now - c.occurred_at).total_seconds(),
                    )
                    for c in page
                ],
                next_cursor=next_cursor,
            ),
            "unmatched_replies": [
                UnmatchedReply(
                    event_id=row.event_id,
                    type=row.type,
                    reply_to=row.reply_to or "",
                    account_id=row.account_id,
                    occurred_at=row.occurred_at,
                )
                for row in unmatched
            ],
        }
    )
