"""A content's page and a live room's timeline as typed answers.

Money is a decimal string in the report currency; ``orders`` is Σ credited order shares
(fractional under multi-touch models), as in the other reports.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from services.attribution.reports.schemas import Money, _Report, _Row
from shared.schemas import UTCDatetimeOut
from shared.vocabulary import ContentKind


class PageProduct(_Row):
    product_id: str
    title: str | None = Field(description="null while the product is not in the catalog")
    placement: str
    starts_at: UTCDatetimeOut | None = Field(description="Pinned from (live rooms)")
    ends_at: UTCDatetimeOut | None = Field(description="Pinned until (live rooms)")


class CreditedOrder(_Row):
    order_id: str
    paid_at: UTCDatetimeOut
    orders: float = Field(description="This content's share of the order under the model")
    gmv: Money = Field(description="The revenue credited to this content")


class _Content(_Report):
    content_id: str
    title: str
    kind: ContentKind
    platform: str | None
    account_id: str
    account_handle: str | None
    started_at: UTCDatetimeOut | None
    ended_at: UTCDatetimeOut | None


class ContentPage(_Content):
    products: list[PageProduct] = Field(description="Placed in the content, pinned first by time")
    orders: list[CreditedOrder] = Field(description="Latest paid first, up to `max_orders`")
    orders_total: int = Field(description="Orders credited to the content in the range")


class Minute(_Row):
    start: UTCDatetimeOut
    entries: int = Field(description="live_enter events")
    clicks: int
    orders: float
    gmv: Money


class LiveTimeline(_Content):
    minutes: list[Minute] = Field(description="Every minute of the range, in order")
    pinned: list[PageProduct] = Field(description="Products with a pinned window in the range")


def utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.astimezone(dt.UTC)
