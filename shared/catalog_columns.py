"""The columns of the catalog objects the attribution service mirrors.

The catalog's tables and attribution's read model (fed by the change feed) mix in the same
classes, so a mirrored column cannot drift from its source. Like ``RevokedTokenColumns``, these
define no table: each service mixes them into a model on its own base, next to its own keys.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Index, Integer, String
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from shared.db import JSONDoc, MoneyType, UTCDateTime


class AccountColumns:
    platform: Mapped[str] = mapped_column(String(32))
    handle: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str | None] = mapped_column(String(256))


class ContentColumns:
    kind: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(512))
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    topics: Mapped[list[Any] | None] = mapped_column(JSONDoc())
    format: Mapped[str | None] = mapped_column(String(64))


class ProductColumns:
    title: Mapped[str] = mapped_column(String(512))
    price: Mapped[Decimal] = mapped_column(MoneyType())
    currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str | None] = mapped_column(String(256))
    # The shops' ids of the product ({"shopify_variant": "808950810", "sku": ...}).
    external_ids: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc())


class CampaignColumns:
    name: Mapped[str] = mapped_column(String(256))
    objective: Mapped[str | None] = mapped_column(String(64))
    # qa, lucky_draw, topic or challenge: only with objective "engagement".
    activity: Mapped[str | None] = mapped_column(String(16))
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ContentProductColumns:
    """A product shown in a content: a product card, pinned in a live room, a native ad…"""

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index]:
        # The contents that show a product.
        return (Index(None, "tenant_id", "product_id"),)

    content_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    placement: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class AdColumns:
    campaign_id: Mapped[str] = mapped_column(String(128))
    content_id: Mapped[str] = mapped_column(String(128))
    product_id: Mapped[str | None] = mapped_column(String(128))
    format: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(256))


class LinkTargetColumns:
    """What a tracking link leads to (its code and destination are each service's own)."""

    content_id: Mapped[str] = mapped_column(String(128))
    product_id: Mapped[str | None] = mapped_column(String(128))
    ad_id: Mapped[str | None] = mapped_column(String(128))


class AdSpendColumns:
    """One ad's spend on one day (the day in the tenant's timezone)."""

    ad_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(MoneyType())
    currency: Mapped[str] = mapped_column(String(3))
