"""Wire formats of the reports (OpenAPI documentation and the CSV column order).

The handlers encode answers with orjson directly (reports can hold many rows); these models
describe that JSON. Money is a decimal string in the report's currency, rounded to its minor
unit; rates and ROAS are numbers; a ratio whose denominator is zero is ``null``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Money = str
MoneyField = Field(description='Decimal string in the report currency, e.g. "129.90"')


class _Metrics(BaseModel):
    impressions: int
    views: int
    completions: int = Field(description="view_complete events")
    completion_rate: float | None = Field(description="completions / views")
    clicks: int
    ctr: float | None = Field(description="clicks / impressions")
    orders: float = Field(description="Σ credited order shares (fractional under multi-touch)")
    gmv: Money = MoneyField
    cvr: float | None = Field(description="orders / clicks")
    spend: Money = MoneyField
    cpm: Money | None = Field(description="spend / impressions × 1000")
    cpc: Money | None = Field(description="spend / clicks")
    cpa: Money | None = Field(description="spend / orders")
    roas: float | None = Field(description="gmv / spend")


class AdRow(_Metrics):
    ad_id: str
    campaign_id: str | None = Field(description="null when the ad is not in the catalog yet")
    content_id: str | None
    format: Literal["native", "pre_roll", "overlay", "banner"] | None


class FormatRow(_Metrics):
    format: Literal["native", "pre_roll", "overlay", "banner"] | None = Field(
        description="null sums ads that are not in the catalog yet"
    )


class AdsReport(BaseModel):
    currency: str | None = Field(description="The tenant's currency (null before it has one)")
    model: str
    timezone: str
    from_: str = Field(alias="from")
    to: str
    rows: list[AdRow]
    by_format: list[FormatRow] = Field(description="native, pre_roll, overlay, banner")
    warnings: list[str]


class ContentRow(BaseModel):
    content_id: str
    kind: Literal["video", "live"] | None
    platform: str | None
    account_id: str | None
    impressions: int
    views: int
    unique_viewers: int = Field(description="Distinct user_id among view events")
    completion_rate: float | None
    avg_watch_seconds: float | None = Field(
        description="Mean properties.watch_seconds over view/view_complete events carrying a "
        "number there; null when none does"
    )
    likes: int
    comments: int
    shares: int
    engagement_rate: float | None = Field(description="(likes + comments + shares) / views")
    clicks: int
    ctr: float | None
    orders: float
    gmv: Money = MoneyField
    gpm: Money | None = Field(description="gmv / views × 1000")
    direct_gmv: Money = Field(
        description="Live rooms: credited revenue of orders paid while the room was live "
        "(started_at ≤ paid_at ≤ ended_at). Videos: 0."
    )
    indirect_gmv: Money = Field(description="gmv − direct_gmv (all of it for a video)")


class ContentsReport(BaseModel):
    currency: str | None
    model: str
    timezone: str
    from_: str = Field(alias="from")
    to: str
    rows: list[ContentRow]
    warnings: list[str]


class Point(BaseModel):
    start: str = Field(description="The bucket's start, UTC with Z")
    value: int | float | str = Field(
        description="Count; orders as a number; gmv as a decimal string"
    )


class Timeseries(BaseModel):
    metric: Literal["impressions", "views", "clicks", "orders", "gmv"]
    interval: Literal["hour", "day"]
    timezone: str
    currency: str | None
    model: str
    from_: str = Field(alias="from")
    to: str
    points: list[Point]


AD_COLUMNS: tuple[str, ...] = (
    "ad_id",
    "campaign_id",
    "content_id",
    "format",
    "impressions",
    "views",
    "completions",
    "completion_rate",
    "clicks",
    "ctr",
    "orders",
    "gmv",
    "cvr",
    "spend",
    "cpm",
    "cpc",
    "cpa",
    "roas",
)
FORMAT_COLUMNS: tuple[str, ...] = ("format", *AD_COLUMNS[4:])
CONTENT_COLUMNS: tuple[str, ...] = (
    "content_id",
    "kind",
    "platform",
    "account_id",
    "impressions",
    "views",
    "unique_viewers",
    "completion_rate",
    "avg_watch_seconds",
    "likes",
    "comments",
    "shares",
    "engagement_rate",
    "clicks",
    "ctr",
    "orders",
    "gmv",
    "gpm",
    "direct_gmv",
    "indirect_gmv",
)
POINT_COLUMNS: tuple[str, ...] = ("start", "value")
