"""The attribution service's local read model of the catalog, fed by the change feed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.attribution.models.base import Base, tenant_key
from shared.db import JSONDoc, MoneyType, UTCDateTime


class CatalogObject:
    """Keyed as in the catalog: the tenant, then the id its client chose."""

    tenant_id: Mapped[str] = tenant_key()
    id: Mapped[str] = mapped_column(String(128), primary_key=True)


class CatalogAccount(CatalogObject, Base):
    __tablename__ = "catalog_accounts"

    platform: Mapped[str] = mapped_column(String(32))
    handle: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str | None] = mapped_column(String(256))


class CatalogContent(CatalogObject, Base):
    __tablename__ = "catalog_contents"

    kind: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(512))
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    topics: Mapped[list[Any] | None] = mapped_column(JSONDoc())
    format: Mapped[str | None] = mapped_column(String(64))


class CatalogProduct(CatalogObject, Base):
    __tablename__ = "catalog_products"

    title: Mapped[str] = mapped_column(String(512))
    price: Mapped[Decimal] = mapped_column(MoneyType())
    currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str | None] = mapped_column(String(256))
    # The shops' ids of the product ({"shopify_variant": "808950810", "sku": ...}).
    external_ids: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc())


class CatalogContentProduct(Base):
    __tablename__ = "catalog_content_products"
    __table_args__ = (Index(None, "tenant_id", "product_id"),)

    tenant_id: Mapped[str] = tenant_key()
    content_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    placement: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class CatalogCampaign(CatalogObject, Base):
    __tablename__ = "catalog_campaigns"

    name: Mapped[str] = mapped_column(String(256))
    objective: Mapped[str | None] = mapped_column(String(64))
    # qa, lucky_draw, topic or challenge, with objective "engagement" (rows synced before the
    # catalog knew activities have none until their campaign changes again).
    activity: Mapped[str | None] = mapped_column(String(16))
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class CatalogAd(CatalogObject, Base):
    __tablename__ = "catalog_ads"

    campaign_id: Mapped[str] = mapped_column(String(128))
    content_id: Mapped[str] = mapped_column(String(128))
    product_id: Mapped[str | None] = mapped_column(String(128))
    format: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(256))


class CatalogAdSpend(Base):
    __tablename__ = "catalog_ad_spend"
    # Reports pick spend by day range across all of a tenant's ads.
    __table_args__ = (Index(None, "tenant_id", "day"),)

    tenant_id: Mapped[str] = tenant_key()
    ad_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(MoneyType())
    currency: Mapped[str] = mapped_column(String(3))


class CatalogTrackingLink(Base):
    __tablename__ = "catalog_tracking_links"
    # /r/{code} carries no tenant, so the code is looked up on its own.
    __table_args__ = (Index("uq_catalog_tracking_links_code", "code", unique=True),)

    tenant_id: Mapped[str] = tenant_key()
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    content_id: Mapped[str] = mapped_column(String(128))
    product_id: Mapped[str | None] = mapped_column(String(128))
    ad_id: Mapped[str | None] = mapped_column(String(128))
    destination_url: Mapped[str] = mapped_column(Text)


class SyncState(Base):
    """Where this service is in the catalog change feed (one row, name='catalog')."""

    __tablename__ = "sync_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    catalog_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_change_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class SkippedCatalogChange(Base):
    """A change of the catalog feed the sync could not apply, kept as received.

    The sync moves past it rather than stall every tenant behind it; this row says what was
    left out of the read model and why, so that it can be fixed at the source and re-sent.
    """

    __tablename__ = "catalog_sync_skipped"

    # The change's tenant ("" when the change did not say one).
    tenant_id: Mapped[str] = tenant_key()
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(300))
    op: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    change: Mapped[str] = mapped_column(Text)  # the feed entry as JSON text
    skipped_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
