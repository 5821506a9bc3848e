from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.catalog.models.base import Base, ClientKeyed, TenantEntity
from shared.db import JSONDoc, UTCDateTime


class Content(ClientKeyed, Base):
    __tablename__ = "contents"
    __table_args__ = (Index(None, "tenant_id", "account_id"),)

    kind: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(512))
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    topics: Mapped[list[Any] | None] = mapped_column(JSONDoc())
    format: Mapped[str | None] = mapped_column(String(64))


class ContentProduct(TenantEntity, Base):
    """A product shown in a content: a product card, pinned in a live room, a native ad…"""

    __tablename__ = "content_products"
    __table_args__ = (Index(None, "tenant_id", "product_id"),)

    content_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    placement: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
