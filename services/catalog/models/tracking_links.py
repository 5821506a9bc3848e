from __future__ import annotations

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from services.catalog.models.base import Base, TenantEntity
from shared.catalog_columns import LinkTargetColumns


class TrackingLink(TenantEntity, LinkTargetColumns, Base):
    __tablename__ = "tracking_links"
    __table_args__ = (Index("uq_tracking_links_code", "id", unique=True),)

    # The short code is the link's id. It is also unique on its own (the one index not led by
    # tenant_id) because the public /r/{code} redirect carries no tenant.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    destination_url: Mapped[str] = mapped_column(String(2048))
    # The public URL as minted; kept so a printed link never changes if the base URL does.
    url: Mapped[str] = mapped_column(String(2200))
