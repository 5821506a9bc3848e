"""The attribution service's local read model of the catalog, fed by the change feed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.attribution.models.base import Base, tenant_key
from shared.catalog_columns import (
    AccountColumns,
    AdColumns,
    AdSpendColumns,
    CampaignColumns,
    ContentColumns,
    ContentProductColumns,
    LinkTargetColumns,
    ProductColumns,
)
from shared.db import UTCDateTime


class CatalogRow:
    """A tenant's row: the tenant leads its key, as in the catalog."""

    tenant_id: Mapped[str] = tenant_key()

    def __init_subclass__(cls, *, table: str | None = None, **kw: Any) -> None:
        """``class X(CatalogRow, …, Base, table="name")``: X's table, named in its one line
        (set before ``Base`` maps the class)."""
        if table is not None:
            setattr(cls, "__tablename__", table)  # noqa: B010 (CatalogRow declares no table)
        super().__init_subclass__(**kw)


class CatalogObject(CatalogRow):
    """Keyed as in the catalog: the tenant, then the id its client chose."""

    id: Mapped[str] = mapped_column(String(128), primary_key=True)


class CatalogAccount(CatalogObject, AccountColumns, Base, table="catalog_accounts"): ...


class CatalogContent(CatalogObject, ContentColumns, Base, table="catalog_contents"): ...


class CatalogProduct(CatalogObject, ProductColumns, Base, table="catalog_products"): ...


class CatalogCampaign(CatalogObject, CampaignColumns, Base, table="catalog_campaigns"):
    """A campaign as the feed last sent it (rows synced before the catalog knew activities
    have none until their campaign changes again)."""


class CatalogAd(CatalogObject, AdColumns, Base, table="catalog_ads"): ...


class CatalogContentProduct(
    CatalogRow, ContentProductColumns, Base, table="catalog_content_products"
): ...


class CatalogAdSpend(CatalogRow, AdSpendColumns, Base, table="catalog_ad_spend"):
    # Reports pick spend by day range across all of a tenant's ads.
    __table_args__ = (Index(None, "tenant_id", "day"),)


class CatalogTrackingLink(CatalogRow, LinkTargetColumns, Base, table="catalog_tracking_links"):
    # /r/{code} carries no tenant, so the code is looked up on its own.
    __table_args__ = (Index("uq_catalog_tracking_links_code", "code", unique=True),)

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
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
