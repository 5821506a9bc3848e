"""The reports as typed models: what the service builds, FastAPI encodes and OpenAPI shows.

Money is a ``Decimal`` already rounded to the report currency's minor unit, written as a
decimal string ("129.90", "1500" for JPY); rates and ROAS are numbers; a ratio whose
denominator is zero is ``null``. The CSV columns are the row models' fields, in order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from services.attribution.reports.buckets import Interval
from services.attribution.reports.metrics import money_text
from services.attribution.reports.query import Metric
from shared.schemas import UTCDatetimeOut
from shared.vocabulary import AdFormat, ContentKind

Money = Annotated[
    Decimal,
    PlainSerializer(money_text, return_type=str, when_used="json"),
    Field(description='Decimal string in the report currency, e.g. "129.90"'),
]


class _Row(BaseModel):
    # Rows are built by the service from checked sums: no coercion to undo.
    model_config = ConfigDict(strict=True)


class _AdKey(_Row):
    ad_id: str
    campaign_id: str | None = Field(description="null when the ad is not in the catalog yet")
    content_id: str | None


class _FormatKey(_Row):
    format: AdFormat | None = Field(description="null: ads that are not in the catalog yet")


class AdMetrics(_Row):
    """The figures of an ad, or of all ads of one format."""

    impressions: int
    views: int
    completions: int = Field(description="view_complete events")
    completion_rate: float | None = Field(description="completions / views")
    clicks: int
    ctr: float | None = Field(description="clicks / impressions")
    orders: float = Field(description="Σ credited order shares (fractional under multi-touch)")
    gmv: Money
    cvr: float | None = Field(description="orders / clicks")
    spend: Money
    cpm: Money | None = Field(description="spend / impressions × 1000")
    cpc: Money | None = Field(description="spend / clicks")
    cpa: Money | None = Field(description="spend / orders")
    roas: float | None = Field(description="gmv / spend")


# Fields come base-last-first: the keys, then the format, then the figures.
class FormatRow(AdMetrics, _FormatKey):
    pass


class AdRow(AdMetrics, _FormatKey, _AdKey):
    # Names from the catalog read model, after the figures (null while it has none).
    ad_name: str | None = Field(None, description="The ad's name in the catalog")
    campaign_name: str | None = Field(None, description="The campaign's name")
    content_title: str | None = Field(None, description="The title of the ad's content")
    product_id: str | None = Field(None, description="The product the ad promotes")
    product_title: str | None = Field(None, description="That product's title")


class ContentRow(_Row):
    content_id: str
    kind: ContentKind | None
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
    gmv: Money
    gpm: Money | None = Field(description="gmv / views × 1000")
    direct_gmv: Money = Field(
        description="Live rooms: credited revenue of orders paid while the room was live "
        "(started_at ≤ paid_at ≤ ended_at). Videos: 0."
    )
    indirect_gmv: Money = Field(description="gmv − direct_gmv (all of it for a video)")
    # Names from the catalog read model, after the figures (null while it has none).
    title: str | None = Field(None, description="The content's title")
    account_handle: str | None = Field(None, description="The account's handle on its platform")


class _Report(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    currency: str | None = Field(description="The report currency (null before the tenant has one)")
    model: str
    timezone: str
    from_: UTCDatetimeOut = Field(alias="from")
    to: UTCDatetimeOut


class AdsReport(_Report):
    rows: list[AdRow]
    by_format: list[FormatRow] = Field(description="native, pre_roll, overlay, banner")
    warnings: list[str]


class ContentsReport(_Report):
    rows: list[ContentRow]
    warnings: list[str]


class Point(_Row):
    start: UTCDatetimeOut = Field(description="The bucket's start, UTC with Z")
    value: int | float | Money = Field(
        description="Count; orders as a number; gmv as a decimal string"
    )


class Timeseries(_Report):
    metric: Metric
    interval: Interval
    points: list[Point]


def columns(row: type[BaseModel]) -> tuple[str, ...]:
    return tuple(row.model_fields)


AD_COLUMNS = columns(AdRow)
FORMAT_COLUMNS = columns(FormatRow)
CONTENT_COLUMNS = columns(ContentRow)
POINT_COLUMNS = columns(Point)
