from __future__ import annotations

from sqlalchemy import Index

from services.catalog.models.base import Base, ClientKeyed, TenantEntity
from shared.catalog_columns import ContentColumns, ContentProductColumns


class Content(ClientKeyed, ContentColumns, Base):
    __tablename__ = "contents"
    __table_args__ = (Index(None, "tenant_id", "account_id"),)


class ContentProduct(TenantEntity, ContentProductColumns, Base):
    __tablename__ = "content_products"
