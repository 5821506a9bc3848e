from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from services.catalog.models.base import Base, TenantEntity
from shared.db import MoneyType, UTCDateTime


class Campaign(TenantEntity, Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    objective: Mapped[str | None] = mapped_column(String(64))
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    budget: Mapped[Decimal | None] = mapped_column(MoneyType())
    currency: Mapped[str | None] = mapped_column(String(3))
