"""The interactions report as typed models (CSV columns are the row models' fields)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas import UTCDatetimeOut


class _Row(BaseModel):
    model_config = ConfigDict(strict=True)


class CommentMetrics(_Row):
    comments: int = Field(description="`comment` events in the range")
    replied_within_1h: int = Field(description="comments whose first `reply` came within 1 h")
    replied_within_24h: int = Field(description="comments whose first `reply` came within 24 h")
    reply_rate_1h: float | None = Field(description="replied_within_1h / comments")
    reply_rate_24h: float | None = Field(description="replied_within_24h / comments")
    median_reply_seconds: float | None = Field(
        description="median time from a comment to its first reply, over replied comments"
    )
    p90_reply_seconds: float | None = Field(
        description="90th percentile of that time (linear between closest ranks)"
    )
    unanswered_over_24h: int = Field(
        description="comments without any reply yet, older than 24 h at the time of the answer"
    )


class DmMetrics(_Row):
    dms: int = Field(description="`dm` events in the range")
    dms_replied: int = Field(description="dms with a `dm_reply`")
    dm_reply_rate: float | None = Field(description="dms_replied / dms")
    median_dm_reply_seconds: float | None = Field(
        description="median time from a dm to its first dm_reply"
    )


class InteractionTotals(CommentMetrics, DmMetrics):
    pass


class AccountInteractions(InteractionTotals):
    account_id: str


class ContentInteractions(CommentMetrics):
    content_id: str
    account_id: str | None = Field(description="null when the content is not in the catalog yet")


class DayInteractions(_Row):
    day: dt.date = Field(description="the local day (tenant timezone)")
    comments: int
    replied_within_1h: int
    replied_within_24h: int
    reply_rate_24h: float | None
    dms: int
    dms_replied: int


class UnansweredComment(_Row):
    event_id: str
    content_id: str
    account_id: str | None
    user_id: str
    occurred_at: UTCDatetimeOut
    age_seconds: float = Field(description="how long it has waited, at the time of the answer")


class UnansweredPage(BaseModel):
    items: list[UnansweredComment]
    next_cursor: str | None


class UnmatchedReply(_Row):
    event_id: str
    type: str = Field(description="reply or dm_reply")
    reply_to: str = Field(description="the event_id it answers, not (yet) a stored comment or dm")
    account_id: str | None
    occurred_at: UTCDatetimeOut


class InteractionsReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: UTCDatetimeOut = Field(alias="from")
    to: UTCDatetimeOut
    timezone: str
    totals: InteractionTotals
    accounts: list[AccountInteractions]
    contents: list[ContentInteractions]
    days: list[DayInteractions]
    unanswered: UnansweredPage = Field(
        description="comments of the range without a reply, older than 24 h, oldest first "
        "(paged by `limit` and `cursor`)"
    )
    unmatched_replies: list[UnmatchedReply] = Field(
        description="replies in the range whose `reply_to` names no stored comment or dm of "
        "the tenant (yet): kept, and matched once the answered event arrives (at most 500)"
    )


ACCOUNT_COLUMNS = tuple(AccountInteractions.model_fields)
CONTENT_COLUMNS = tuple(ContentInteractions.model_fields)
DAY_COLUMNS = tuple(DayInteractions.model_fields)
UNANSWERED_COLUMNS = tuple(UnansweredComment.model_fields)
