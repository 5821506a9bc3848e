"""The interactions report as typed models (CSV columns are the row models' fields)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.attribution.reports.operations.scorecard import METRICS
from services.attribution.reports.operations.scorecard_repository import Level
from services.attribution.reports.schemas import Money
from shared.schemas import UTCDatetimeOut
from shared.vocabulary import Activity


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


# --- the 4C scorecard -----------------------------------------------------------------------

_SPECS = {spec.name: spec for spec in METRICS}
_PERCENTILE = (
    "Percentile rank among the level's items of the range that have a value: "
    "100 × (items below + ½ × items equal) / items; null when the value is null"
)
_CHANGE = (
    "(value − previous) / |previous|, against the previous period of equal length; null "
    "when either is null or previous is 0"
)


class RateScore(_Row):
    value: float | None = Field(description="null when the denominator is zero")
    percentile: float | None = Field(description=_PERCENTILE)
    previous: float | None = Field(description="The value over the previous period")
    change: float | None = Field(description=_CHANGE)


class MoneyScore(_Row):
    value: Money | None = Field(description="Decimal string in the report currency, or null")
    percentile: float | None = Field(description=_PERCENTILE)
    previous: Money | None = Field(description="The value over the previous period")
    change: float | None = Field(description=_CHANGE)


class _Scores(_Row):
    """One group's scores: each field is named after its metric (``scorecard.METRICS``),
    whose formula describes it."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name, info in cls.model_fields.items():
            spec = _SPECS[name]
            unit = " (seconds)" if "seconds" in name else ""
            info.description = f"{spec.formula}{unit}"
            if info.annotation is not (MoneyScore if spec.money else RateScore):
                raise TypeError(f"{cls.__name__}.{name}: the metric's score is of another kind")
        cls.model_rebuild(force=True)


class ConsumerScores(_Scores):
    """Does it meet demand."""

    completion_rate: RateScore
    engagement_rate: RateScore
    follow_rate: RateScore
    click_rate: RateScore


class CostScores(_Scores):
    """What it costs (spend from the catalog, in the report currency)."""

    cpm: MoneyScore
    cpc: MoneyScore
    cpa: MoneyScore
    cost_per_engaged_view: MoneyScore
    roas: RateScore


class ConvenienceScores(_Scores):
    """How easy it is to buy."""

    cart_to_order_rate: RateScore
    median_seconds_to_order: RateScore
    direct_gmv_share: RateScore
    product_card_order_share: RateScore


class CommunicationScores(_Scores):
    """How it talks with viewers."""

    comment_reply_rate: RateScore
    median_reply_seconds: RateScore
    comments_per_1000_views: RateScore
    share_rate: RateScore


class ScorecardItem(BaseModel):
    id: str = Field(description="The account, content or campaign id")
    name: str | None = Field(description="Its name in the catalog (null when not in it yet)")
    consumer: ConsumerScores
    cost: CostScores
    convenience: ConvenienceScores
    communication: CommunicationScores


class Scorecard(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    level: Level
    currency: str | None = Field(description="The report currency (null before the tenant has one)")
    model: str = Field(description="The tenant's attribution model (orders, GMV)")
    timezone: str
    from_: UTCDatetimeOut = Field(alias="from")
    to: UTCDatetimeOut
    previous_from: UTCDatetimeOut = Field(description="The previous period: from − (to − from)")
    previous_to: UTCDatetimeOut = Field(description="… to `from`")
    items: list[ScorecardItem] = Field(
        description="Every item with events, credits or spend in the range, by id"
    )
    warnings: list[str]


class ScorecardCsvRow(_Row):
    id: str
    name: str | None
    group: str
    metric: str
    value: str | None
    percentile: float | None
    previous: str | None
    change: float | None


SCORECARD_COLUMNS = tuple(ScorecardCsvRow.model_fields)


# --- engagement activities --------------------------------------------------------------------


class ActivityFigures(_Row):
    views: int
    likes: int
    comments: int
    shares: int
    follows: int = Field(description="New follows: `follow` events")
    engagement_rate: float | None = Field(description="(likes + comments + shares) / views")
    comments_per_1000_views: float | None = Field(description="comments / views × 1000")


class ActivityChange(_Row):
    engagement_rate: float | None = Field(description="(during − before) / |before|")
    comments_per_1000_views: float | None = Field(description="(during − before) / |before|")
    follows: float | None = Field(description="(during − before) / |before|")


class ActivityRow(BaseModel):
    campaign_id: str
    name: str
    activity: Activity
    starts_at: UTCDatetimeOut
    ends_at: UTCDatetimeOut | None
    content_ids: list[str] = Field(description="The contents of the campaign's ads")
    during_from: UTCDatetimeOut
    during_to: UTCDatetimeOut = Field(description="`ends_at`, or now while it runs")
    before_from: UTCDatetimeOut = Field(description="starts_at − (during_to − during_from)")
    during: ActivityFigures
    before: ActivityFigures = Field(description="The same length of time before the start")
    change: ActivityChange


class ActivitiesReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: UTCDatetimeOut = Field(alias="from")
    to: UTCDatetimeOut
    activities: list[ActivityRow] = Field(description="By start, then campaign id")
    warnings: list[str]


ACTIVITY_COLUMNS = (
    "campaign_id",
    "name",
    "activity",
    "starts_at",
    "ends_at",
    "content_ids",
    "during_from",
    "during_to",
    "before_from",
    *(
        f"{period}_{name}"
        for period in ("during", "before")
        for name in ActivityFigures.model_fields
    ),
    *(f"change_{name}" for name in ActivityChange.model_fields),
)
