from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Date, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from services.catalog.models.base import Base, ClientKeyed, TenantEntity
from shared.db import MoneyType


class Ad(ClientKeyed, Base):
    __tablename__ = "ads"
    __table_args__ = (Index(None, "tenant_id", "campaign_id"),)

    campaign_id: Mapped[str] = mapped_column(String(128))
    content_id: Mapped[str] = mapped_column(String(128))
    product_id: Mapped[str | None] = mapped_column(String(128))
    format: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(256))


class AdSpend(TenantEntity, Base):
    """One ad's spend on one day (the day in the tenant's timezone)."""

    __tablename__ = "ad_spend"

    ad_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(MoneyType())
    currency: Mapped[str] = mapped_column(String(3))
