from __future__ import annotations

from sqlalchemy import Index

from services.catalog.models.base import Base, ClientKeyed, TenantEntity
from shared.catalog_columns import AdColumns, AdSpendColumns


class Ad(ClientKeyed, AdColumns, Base):
    __tablename__ = "ads"
    __table_args__ = (Index(None, "tenant_id", "campaign_id"),)


class AdSpend(TenantEntity, AdSpendColumns, Base):
    __tablename__ = "ad_spend"
