from __future__ import annotations

from decimal import Decimal

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from services.catalog.models.base import Base, ClientKeyed
from shared.catalog_columns import CampaignColumns
from shared.db import MoneyType


class Campaign(ClientKeyed, CampaignColumns, Base):
    __tablename__ = "campaigns"

    # Attribution needs no budget: these columns are the catalog's own.
    budget: Mapped[Decimal | None] = mapped_column(MoneyType())
    currency: Mapped[str | None] = mapped_column(String(3))
